"""Two zones joined by one WAN link: a cluster stretched over two availability zones or
datacenters. Each zone is a switch with its nodes (one L2 segment, as a stretched VLAN), and
`topology.wan` sets the link between the switches: inter-zone traffic crosses it, traffic
within a zone does not.

Nodes go to zones by Kubernetes' own label, topology.kubernetes.io/zone, so nodeSelectors and
results can use it; unlabelled nodes are split in order, the first half in zone-a.
"""

from __future__ import annotations

from dataclasses import replace
from typing import Any

from kemu.topology import UNDERLAY_INTF, NodeSpec, Topology, UnderlaySwitch

ZONE_LABEL = "topology.kubernetes.io/zone"


class ZonesTopo(Topology):
    has_wan = True

    @staticmethod
    def link_names(nodes: list[str]) -> list[str]:
        """Each node's link by the node's name, and `wan` between the zones."""
        return [*nodes, "wan"]

    @staticmethod
    def lay_out(nodes: list[NodeSpec]) -> tuple[list[NodeSpec], list[str]]:
        """The nodes with their zone labels, and the problems that stop the lay-out."""
        labelled = [n for n in nodes if ZONE_LABEL in n.labels]
        if not labelled:
            half = (len(nodes) + 1) // 2
            nodes = [replace(n, labels={**n.labels, ZONE_LABEL: "zone-a" if i < half
                                        else "zone-b"}) for i, n in enumerate(nodes)]
        elif len(labelled) < len(nodes):
            return nodes, [f"label every node with {ZONE_LABEL}, or none (then the first half "
                           f"goes to zone-a, the rest to zone-b)"]
        zones = list(dict.fromkeys(n.labels[ZONE_LABEL] for n in nodes))
        if len(zones) != 2:
            return nodes, [f"the zones topology has two zones; the nodes are in {len(zones)}: "
                           f"{', '.join(zones)}"]
        return nodes, []

    def build(self, nodes: list[tuple[str, str]], link: dict[str, Any],
              labels: dict[str, dict[str, str]] | None = None,
              wan: dict[str, Any] | None = None, **_: Any) -> None:
        labels = labels or {}
        zones = list(dict.fromkeys(labels.get(name, {}).get(ZONE_LABEL, "zone-a")
                                   for name, _ in nodes))
        switches = {zone: self.addSwitch(f"s{i + 1}", cls=UnderlaySwitch)
                    for i, zone in enumerate(zones)}
        self.uplink = switches[zones[0]]  # the edge (external hosts) attaches in the first zone
        self.named_links = {}
        for name, address in nodes:
            switch = switches[labels.get(name, {}).get(ZONE_LABEL, "zone-a")]
            host = self.addHost(name, ip=address)
            self.addLink(host, switch, intfName1=UNDERLAY_INTF, **link)
            self.named_links[name] = (host, switch)
        if len(switches) == 2:
            a, b = switches.values()
            self.addLink(a, b, **(wan or {}))
            self.named_links["wan"] = (a, b)
