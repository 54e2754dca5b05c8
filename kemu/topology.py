"""The topology plugin surface: an underlay between the nodes, as a Mininet Topo.

A topology is registered by name in the `kemu.topologies` entry-point group (the shipped
ones live in topologies/). Its build() is called with `nodes`, a list of (node name, underlay
address with prefix), `link`, the Mininet link options every node link gets (its shaping),
and, for topologies with a link between zones, `wan` and the nodes' `labels`. It adds one host
per node and whatever switches join them — `UnderlaySwitch`es, so that nothing lands in the
host's root namespace — and sets `uplink` (the switch the edge attaches to) and
`named_links` (the links a scenario's events can name: name → (end, end)).
"""

from __future__ import annotations

from typing import ClassVar

from mininet.topo import Topo

from kemu.kernel.node import UNDERLAY_INTF, UnderlaySwitch
from kemu.scenario.objects import NodeSpec

__all__ = ["UNDERLAY_INTF", "NodeSpec", "Topology", "UnderlaySwitch"]


class Topology(Topo):
    has_wan: ClassVar[bool] = False  # it has a link between zones (`topology.wan`)
    uplink: str
    named_links: dict[str, tuple[str, str]]

    @staticmethod
    def link_names(nodes: list[str]) -> list[str]:
        """The links a scenario's events can name: by default each node's, by its name."""
        return list(nodes)

    @staticmethod
    def lay_out(nodes: list[NodeSpec]) -> tuple[list[NodeSpec], list[str]]:
        """The nodes as the topology places them (it may label them, e.g. with zones), and
        the problems that stop it laying them out."""
        return nodes, []
