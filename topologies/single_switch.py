"""All nodes on one switch: a flat L2 underlay, like one rack, or kind's docker network."""

from __future__ import annotations

from typing import Any

from mininet.topo import Topo

from kemu.node import UNDERLAY_INTF, UnderlaySwitch


class SingleSwitchTopo(Topo):
    def build(self, nodes: list[tuple[str, str]], link: dict[str, Any]) -> None:
        switch = self.addSwitch("s1", cls=UnderlaySwitch)
        self.uplink = switch  # where the edge switch (external hosts, load balancer) attaches
        for name, address in nodes:
            host = self.addHost(name, ip=address)
            self.addLink(host, switch, intfName1=UNDERLAY_INTF, **link)
