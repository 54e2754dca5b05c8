"""Underlay topologies shipped with kemu (imported as `kemu_topologies`).

A topology is a Mininet Topo whose build() takes `nodes`, a list of (node name, underlay
address with prefix), and `link`, the Mininet link options every node link gets (bandwidth
shaping). It places one host per node and whatever switches join them; switches should be
`kemu.node.UnderlaySwitch` so that nothing lands in the host's root namespace, and it sets
`self.uplink` to the switch the edge (external hosts, load balancer) attaches to. Register one
under the `kemu.topologies` entry-point group.
"""
