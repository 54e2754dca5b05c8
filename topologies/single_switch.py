"""All nodes on one switch: a flat L2 underlay, like one rack, or kind's docker network."""

from __future__ import annotations

from typing import Any

from kemu.topology import UNDERLAY_INTF, Topology, UnderlaySwitch


class SingleSwitchTopo(Topology):
    def build(self, nodes: list[tuple[str, str]], link: dict[str, Any],
              **_: Any) -> None:
        switch = self.addSwitch("s1", cls=UnderlaySwitch)
        self.uplink = switch  # where the edge switch (external hosts, load balancer) attaches
        self.named_links = {}  # name → (node end, switch end)
        for name, address in nodes:
            host = self.addHost(name, ip=address)
            self.addLink(host, switch, intfName1=UNDERLAY_INTF, **link)
            self.named_links[name] = (host, switch)
