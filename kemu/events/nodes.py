"""A node stops answering on the network, and comes back (its processes and state stay)."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from kemu.events.base import Event
from kemu.scenario.model import EventSpec

if TYPE_CHECKING:
    from kemu.cluster.cluster import Cluster
    from kemu.scenario.check_events import World


class NodeDown(Event):
    action = "node-down"
    keys = ("node",)
    args = "NODE"
    help = "node-down NODE — the node stops answering (node-up NODE: back)"

    @classmethod
    def check(cls, doc: dict[str, Any], where: str, index: int,
              world: World) -> EventSpec | None:
        node = doc.get("node")
        if node not in world.nodes:
            world.checks.error(f"{where}.node", f"name the node (nodes: "
                                                f"{', '.join(world.nodes)})")
            return None
        down = cls.action == "node-down"
        if (node in world.down) == down:
            world.checks.error(f"{where}.node", f"node {node} is already "
                                                f"{'down' if node in world.down else 'up'} then")
            return None
        (world.down.add if down else world.down.discard)(node)
        return EventSpec(float(doc["at"]), cls.action, node)

    @staticmethod
    def apply(cluster: Cluster, event: EventSpec) -> dict[str, Any]:
        cluster.node_down(event.target)
        return {}


class NodeUp(NodeDown):
    action = "node-up"
    help = ""

    @staticmethod
    def apply(cluster: Cluster, event: EventSpec) -> dict[str, Any]:
        cluster.node_up(event.target)
        return {}
