"""A link of the underlay loses its carrier and gets it back, or gets new parameters (rate,
delay, jitter, loss) in the middle of a run. Links are named as the topology names them: a
node's own link by the node's name, `wan` between zones."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, ClassVar

from kemu.events.base import Event
from kemu.scenario.check_cluster import link_changes, link_params
from kemu.scenario.model import EventSpec

if TYPE_CHECKING:
    from kemu.cluster.cluster import Cluster
    from kemu.scenario.check_events import World

PARAMETERS = ("bw", "delay", "jitter", "loss")
UNITS = {"bw_mbit": ("bw", "mbit"), "delay_ms": ("delay", "ms"), "jitter_ms": ("jitter", "ms"),
         "loss_pct": ("loss", "%")}


class LinkDown(Event):
    action = "link-down"
    keys: ClassVar[tuple[str, ...]] = ("link",)
    args = "LINK"
    help = "link-down LINK — carrier lost on a node's link or `wan` (link-up LINK: back)"

    @classmethod
    def check(cls, doc: dict[str, Any], where: str, index: int,
              world: World) -> EventSpec | None:
        if doc.get("link") not in world.links:
            world.checks.error(f"{where}.link", f"name the link: a node's own link by the "
                                                f"node's name, or {', '.join(world.links)}")
            return None
        given = {k: v for k, v in doc.items() if k in PARAMETERS}
        if cls.action == "link-set" and not given:
            world.checks.error(where, "link-set needs at least one of bw, delay, jitter, loss")
            return None
        changes = link_changes(given, where, world.checks)
        # Checked as the link will be: its parameters so far, changed.
        world.links[doc["link"]] = link_params(world.links[doc["link"]], given, where,
                                               world.checks)
        return EventSpec(float(doc["at"]), cls.action, doc["link"], link=changes)

    @staticmethod
    def apply(cluster: Cluster, event: EventSpec) -> dict[str, Any]:
        cluster.set_link(event.target, up=event.action == "link-up")
        return {}


class LinkUp(LinkDown):
    action = "link-up"
    help = ""


class LinkSet(LinkDown):
    action = "link-set"
    keys = ("link", *PARAMETERS)
    args = "LINK key=value…"
    help = "link-set LINK bw=10mbit delay=20ms jitter=2ms loss=1% — new parameters"

    @classmethod
    def from_words(cls, args: list[str]) -> list[dict[str, Any]]:
        if len(args) < 2 or not all("=" in a for a in args[1:]):
            raise cls.usage()
        return [{"action": cls.action, "link": args[0],
                 **dict(a.split("=", 1) for a in args[1:])}]

    @staticmethod
    def apply(cluster: Cluster, event: EventSpec) -> dict[str, Any]:
        cluster.change_link(event.target, event.link)
        return {"link": cluster.links[event.target].describe()}

    @staticmethod
    def describe(event: EventSpec) -> str:
        changes = " ".join(f"{UNITS[k][0]}={v:g}{UNITS[k][1]}" for k, v in event.link.items())
        return f"{event.action} {event.target} {changes}"
