"""flannel's host-gw backend: no encapsulation, each node routes the other nodes' subnets via
their underlay address. It needs all nodes on one L2 segment, as the real one does.

Per peer: `ip route replace <peer subnet> via <peer underlay IP> dev eth0`. Pods attach to
`cni0` through the `bridge` plugin, as with every flannel backend.
"""

from __future__ import annotations

from typing import Any

from kemu.backend import UNDERLAY_INTF, Backend, K8sNode, Lease, PodNetwork
from kemu_plugins.flannel import bridge_conflist


class FlannelHostGW(Backend):
    name = "host-gw"
    description = "flannel host-gw: direct routes via each node's underlay IP, cni0 bridge"

    def __init__(self, network: PodNetwork, options: dict[str, Any]):
        super().__init__(network, options)
        self.routes: dict[str, dict[str, Lease]] = {}  # node → peer → lease routed to

    def join(self, node: K8sNode, lease: Lease) -> None:
        self.routes[node.name] = {}  # no device of its own: the routing table is the data plane

    def add_peers(self, node: K8sNode, peers: list[Lease]) -> None:
        node.ip_batch([f"route replace {p.subnet} via {p.public_ip} dev {UNDERLAY_INTF}"
                       for p in peers])
        self.routes.setdefault(node.name, {}).update({p.node: p for p in peers})

    def remove_peers(self, node: K8sNode, peers: list[Lease]) -> None:
        node.ip_batch([f"route del {p.subnet} via {p.public_ip} dev {UNDERLAY_INTF}"
                       for p in peers], force=True)
        for p in peers:
            self.routes.get(node.name, {}).pop(p.node, None)

    def leave(self, node: K8sNode, lease: Lease) -> None:
        self.remove_peers(node, list(self.routes.pop(node.name, {}).values()))

    def cni_config(self, node: K8sNode, lease: Lease) -> dict[str, Any]:
        return bridge_conflist(self, node, lease)

    def node_state(self, node: K8sNode) -> dict[str, Any]:
        return {"routes": node.run("ip", "-o", "route", "show", "dev", UNDERLAY_INTF)
                .splitlines()}
