"""kubectl apply and kubectl delete, of every kind a scenario holds: Pods, Deployments,
Services, NetworkPolicies, Namespaces, Secrets, Ingresses."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import yaml

from kemu.events.base import Event, named
from kemu.scenario.model import EventSpec
from kemu.scenario.objects import (
    Deployment,
    PodSpec,
    key_of,
    kind_of,
    owner_template,
    qualified,
    replacement,
    replicas_of,
    scale,
)

if TYPE_CHECKING:
    from kemu.cluster.cluster import Cluster
    from kemu.scenario.check_events import World

# kubectl's names for the kinds (and their short names) → the kind
KINDS = {"service": "Service", "svc": "Service", "networkpolicy": "NetworkPolicy",
         "netpol": "NetworkPolicy", "pod": "Pod", "po": "Pod", "deployment": "Deployment",
         "deploy": "Deployment", "namespace": "Namespace", "ns": "Namespace",
         "secret": "Secret", "ingress": "Ingress", "ing": "Ingress",
         "ingressclass": "IngressClass",
         "endpointslice": "EndpointSlice"}
CLUSTER_SCOPED = ("Namespace", "IngressClass")  # named without a namespace


class Apply(Event):
    action = "apply"
    keys = ("manifest", "file")
    args = "FILE"
    help = "apply FILE — kubectl apply: create or update what FILE declares"

    @classmethod
    def check(cls, doc: dict[str, Any], where: str, index: int,
              world: World) -> EventSpec | None:
        """Each object created, or updated if it exists: a Service keeps its addresses, a
        Deployment is scaled to its replicas (a changed pod template would be a rollout); a
        Pod's spec cannot change, as the API server has it."""
        resolved: list[Any] = []
        for obj in world.applied.get(index, []):  # parsed with the scenario's manifests
            kind, key = kind_of(obj), key_of(obj)
            if getattr(obj, "namespace", ""):  # a new namespace is made with it (Cluster.apply)
                world.objects.add(("Namespace", obj.namespace))
            if isinstance(obj, PodSpec):
                if key in world.pods:
                    world.checks.error(where, f"Pod {key} exists at that time: a pod's spec "
                                              f"cannot change (delete it first)")
                    continue
                world.pods.add(key)
                world.used.add(key)
            elif isinstance(obj, Deployment):
                old = world.templates.get(key)
                if old and old != obj.template:
                    world.checks.error(where, f"Deployment {key}: a changed pod template is a "
                                              f"rollout, not an update kemu makes yet")
                    continue
                world.templates[key] = obj.template
                add, remove = scale(obj.template, world.pods, obj.replicas, world.used)
                world.pods = (world.pods | set(add)) - set(remove)
                world.used.update(add)
            else:
                if kind == "Service":
                    obj = world.allocated[(index, key)]
                if kind == "Ingress" and not world.ingress_controller:
                    world.checks.error(where, f"Ingress {key}: the cluster has no ingress "
                                              f"controller (a scenario gets one by declaring "
                                              f"an Ingress in its workloads)")
                    continue
                world.objects.add((kind, key))
            resolved.append(obj)
        if not resolved:
            return None
        return EventSpec(float(doc["at"]), cls.action,
                         ", ".join(f"{kind_of(o)} {key_of(o)}" for o in resolved),
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
    args = "KIND NAME"
    help = "delete KIND NAME — kubectl delete (pod, deployment, service, networkpolicy, " \
           "namespace, secret, ingress, ingressclass, endpointslice)"

    @classmethod
    def check(cls, doc: dict[str, Any], where: str, index: int,
              world: World) -> EventSpec | None:
        kind = doc.get("kind", "")
        key = str(doc.get("name", "")) if kind in CLUSTER_SCOPED else qualified(doc, "name")
        if kind not in set(KINDS.values()):
            world.checks.error(f"{where}.kind", f"delete takes kind "
                                                f"{', '.join(sorted(set(KINDS.values())))}")
            return None
        exists = key in world.pods if kind == "Pod" else key in world.templates \
            if kind == "Deployment" else (kind, key) in world.objects
        if not exists:
            world.checks.error(f"{where}.name", f"no {kind} {key} at that time")
            return None
        if kind == "Pod":
            gone_pod(world, key)
        elif kind == "Deployment":
            world.pods -= set(replicas_of(world.templates.pop(key), world.pods))
        else:
            world.objects.discard((kind, key))
        if kind == "Namespace":  # everything in it goes too
            for deployment in [k for k in world.templates if k.startswith(f"{key}/")]:
                del world.templates[deployment]
            world.pods = {k for k in world.pods if not k.startswith(f"{key}/")}
            world.objects = {(k, name) for k, name in world.objects
                             if not name.startswith(f"{key}/")}
        return EventSpec(float(doc["at"]), cls.action, key, kind=kind)

    @classmethod
    def from_words(cls, args: list[str]) -> list[dict[str, Any]]:
        if len(args) != 2 or args[0].lower() not in KINDS:
            raise cls.usage()
        kind = KINDS[args[0].lower()]
        return [{"action": cls.action, "kind": kind,
                 **({"name": args[1]} if kind in CLUSTER_SCOPED else named("name", args[1]))}]

    @staticmethod
    def apply(cluster: Cluster, event: EventSpec) -> dict[str, Any]:
        cluster.delete(event.kind, event.target)
        return {}

    @staticmethod
    def describe(event: EventSpec) -> str:
        return f"{event.action} {event.kind} {event.target.removeprefix('default/')}"


def gone_pod(world: World, key: str) -> None:
    """A pod deleted: its Deployment, if any, replaces it under a new name."""
    template = owner_template(world.templates, key)
    if template:
        new = replacement(template, world.pods, world.used)
        world.pods.add(new)
        world.used.add(new)
    world.pods.discard(key)
