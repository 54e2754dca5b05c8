"""All nodes on one switch: a flat L2 underlay, like one rack, or kind's docker network."""

from __future__ import annotations

from typing import Any

from mininet.topo import Topo

from kemu.node import UNDERLAY_INTF, UnderlaySwitch


class SingleSwitchTopo(Topo):
    has_wan = False

    @staticmethod
    def link_names(nodes: list[str]) -> list[str]:
        """The links a scenario's events can name: each node's, by the node's name."""
        return list(nodes)

    def build(self, nodes: list[tuple[str, str]], link: dict[str, Any],
              **_: Any) -> None:
        switch = self.addSwitch("s1", cls=UnderlaySwitch)
        self.uplink = switch  # where the edge switch (external hosts, load balancer) attaches
        self.named_links: dict[str, tuple[str, str]] = {}  # name → (node end, switch end)
        for name, address in nodes:
            host = self.addHost(name, ip=address)
            self.addLink(host, switch, intfName1=UNDERLAY_INTF, **link)
            self.named_links[name] = (host, switch)
