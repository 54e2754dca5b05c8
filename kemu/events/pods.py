"""kubectl delete pod (its Deployment replaces it under a new name), kubectl scale
deployment and kubectl rollout restart, with the ReplicaSet controller's naming
(kemu/scenario/objects.py: scale)."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from kemu.events.base import Event, named
from kemu.events.objects import gone_pod
from kemu.scenario.model import EventSpec
from kemu.scenario.objects import qualified, replicas_of, scale

if TYPE_CHECKING:
    from kemu.cluster.cluster import Cluster
    from kemu.scenario.check_events import World


class DeletePod(Event):
    action = "delete-pod"
    keys = ("pod", "namespace")
    args = "POD"
    help = "delete-pod POD — kubectl delete pod (its Deployment replaces it)"

    @classmethod
    def check(cls, doc: dict[str, Any], where: str, index: int,
              world: World) -> EventSpec | None:
        key = qualified(doc, "pod")
        if key not in world.pods:
            world.checks.error(f"{where}.pod", f"no pod {key} at that time")
            return None
        gone_pod(world, key)
        return EventSpec(float(doc["at"]), cls.action, key)

    @classmethod
    def from_words(cls, args: list[str]) -> list[dict[str, Any]]:
        if len(args) != 1:
            raise cls.usage()
        return [{"action": cls.action, **named("pod", args[0])}]

    @staticmethod
    def apply(cluster: Cluster, event: EventSpec) -> dict[str, Any]:
        new = cluster.delete_pod(event.target)
        return {"replacement": new} if new else {}


def _deployment(doc: dict[str, Any], where: str, world: World) -> str | None:
    """The Deployment an event names, if the scenario has it by then (else said)."""
    key = qualified(doc, "deployment")
    if key not in world.templates:
        known = ", ".join(sorted(world.templates)) or "none"
        world.checks.error(f"{where}.deployment", f"no Deployment {key} (Deployments: {known})")
        return None
    return key


class Scale(Event):
    action = "scale"
    keys = ("deployment", "namespace", "replicas")
    args = "DEPLOYMENT REPLICAS"
    help = "scale DEPLOYMENT REPLICAS — kubectl scale"

    @classmethod
    def check(cls, doc: dict[str, Any], where: str, index: int,
              world: World) -> EventSpec | None:
        key = _deployment(doc, where, world)
        if key is None:
            return None
        if "replicas" not in doc:
            world.checks.error(f"{where}.replicas", "scale needs the number of replicas")
            return None
        add, remove = scale(world.templates[key], world.pods, doc["replicas"], world.used)
        world.pods |= set(add)
        world.pods -= set(remove)
        world.used.update(add)
        return EventSpec(float(doc["at"]), cls.action, key, replicas=doc["replicas"])

    @classmethod
    def from_words(cls, args: list[str]) -> list[dict[str, Any]]:
        if len(args) != 2 or not args[1].isdigit():
            raise cls.usage()
        return [{"action": cls.action, **named("deployment", args[0]),
                 "replicas": int(args[1])}]

    @staticmethod
    def apply(cluster: Cluster, event: EventSpec) -> dict[str, Any]:
        made, deleted = cluster.scale(event.target, event.replicas)
        return {"created": made, "deleted": deleted}

    @staticmethod
    def describe(event: EventSpec) -> str:
        return f"{event.action} {event.target.removeprefix('default/')} to {event.replicas}"


class RolloutRestart(Event):
    action = "rollout"
    keys = ("deployment", "namespace")
    args = "DEPLOYMENT"
    help = "rollout DEPLOYMENT — kubectl rollout restart: new pods replace the old ones, " \
           "as the Deployment's strategy says"

    @classmethod
    def check(cls, doc: dict[str, Any], where: str, index: int,
              world: World) -> EventSpec | None:
        key = _deployment(doc, where, world)
        if key is None:
            return None
        old = replicas_of(world.templates[key], world.pods)
        new, _ = scale(world.templates[key], set(), len(old), world.used | world.pods)
        world.pods = (world.pods - set(old)) | set(new)
        world.used.update(new)
        return EventSpec(float(doc["at"]), cls.action, key, pods=tuple(new))

    @classmethod
    def from_words(cls, args: list[str]) -> list[dict[str, Any]]:
        if len(args) != 1:
            raise cls.usage()
        return [{"action": cls.action, **named("deployment", args[0].removeprefix(
            "deployment/").removeprefix("deploy/"))}]

    @staticmethod
    def apply(cluster: Cluster, event: EventSpec) -> dict[str, Any]:
        cluster.rollout(event.target, list(event.pods))
        return {"new": list(event.pods)}
