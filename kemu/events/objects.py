"""kubectl apply of new Services and NetworkPolicies, and kubectl delete of them."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import yaml

from kemu.events.base import Event, named
from kemu.scenario.model import EventSpec
from kemu.scenario.objects import NetworkPolicy, Service, qualified

if TYPE_CHECKING:
    from kemu.cluster.cluster import Cluster
    from kemu.scenario.check_events import World

KINDS = {"service": "Service", "svc": "Service", "networkpolicy": "NetworkPolicy",
         "netpol": "NetworkPolicy"}


class Apply(Event):
    action = "apply"
    keys = ("manifest", "file")
    args = "FILE"
    help = "apply FILE — kubectl apply of the Services and NetworkPolicies in FILE"

    @classmethod
    def check(cls, doc: dict[str, Any], where: str, index: int,
              world: World) -> EventSpec | None:
        objects = world.applied.get(index, [])  # parsed with the scenario's manifests
        resolved: list[Service | NetworkPolicy] = []
        for obj in objects:
            kind = "Service" if isinstance(obj, Service) else "NetworkPolicy"
            if (kind, obj.key) in world.objects:
                world.checks.error(where, f"{kind} {obj.key} exists at that time (an update "
                                          f"is not an event kemu has yet)")
            world.objects.add((kind, obj.key))
            resolved.append(next(world.allocated) if kind == "Service" else obj)
        if not objects:
            return None
        return EventSpec(float(doc["at"]), cls.action, ", ".join(o.key for o in resolved),
                         objects=tuple(resolved))

    @classmethod
    def from_words(cls, args: list[str]) -> list[dict[str, Any]]:
        if len(args) != 1:
            raise cls.usage()
        with open(args[0]) as f:
            return [{"action": cls.action, "manifest": d} for d in yaml.safe_load_all(f) if d]

    @staticmethod
    def apply(cluster: Cluster, event: EventSpec) -> dict[str, Any]:
        cluster.apply(event.objects)
        return {}


class Delete(Event):
    action = "delete"
    keys = ("kind", "name", "namespace")
    args = "service|networkpolicy NAME"
    help = "delete service|networkpolicy NAME — kubectl delete"

    @classmethod
    def check(cls, doc: dict[str, Any], where: str, index: int,
              world: World) -> EventSpec | None:
        kind = doc.get("kind", "")
        key = qualified(doc, "name")
        if kind not in ("Service", "NetworkPolicy"):
            world.checks.error(f"{where}.kind", "delete takes kind Service or NetworkPolicy")
            return None
        if (kind, key) not in world.objects:
            world.checks.error(f"{where}.name", f"no {kind} {key} at that time")
            return None
        world.objects.discard((kind, key))
        return EventSpec(float(doc["at"]), cls.action, key, kind=kind)

    @classmethod
    def from_words(cls, args: list[str]) -> list[dict[str, Any]]:
        if len(args) != 2 or args[0].lower() not in KINDS:
            raise cls.usage()
        return [{"action": cls.action, "kind": KINDS[args[0].lower()],
                 **named("name", args[1])}]

    @staticmethod
    def apply(cluster: Cluster, event: EventSpec) -> dict[str, Any]:
        cluster.delete(event.kind, event.target)
        return {}

    @staticmethod
    def describe(event: EventSpec) -> str:
        return f"{event.action} {event.target.removeprefix('default/')} {event.kind}"
