"""The checks of a scenario's `events`: in time order, each checked by its kind (kemu/events/)
against the cluster as the events before it leave it — a node taken down is down until an
event brings it up, a deleted pod is gone and its replacement has a new name, an applied
Service exists from then on. Pure."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from kemu import registry
from kemu.scenario.check_workloads import decide_programs
from kemu.scenario.images import Program
from kemu.scenario.manifests import parse_manifest
from kemu.scenario.model import ClusterSpec, EventSpec, LinkParams, TopologySpec
from kemu.scenario.objects import Deployment, PodSpec, Service, key_of, kind_of
from kemu.scenario.problems import Checks


@dataclass
class World:
    """The cluster as the events so far leave it (what an event is checked against)."""

    checks: Checks
    nodes: list[str]
    links: dict[str, LinkParams]  # each named link's parameters, as events change them
    pods: set[str]  # the pods that exist
    used: set[str]  # every pod the run will have had, for new pods' names
    templates: dict[str, PodSpec]  # Deployment key → its pods' template
    objects: set[tuple[str, str]]  # (kind, key) of the Services, NetworkPolicies, Namespaces,
    #                                Ingresses and Secrets
    applied: dict[int, list[Any]]  # apply events' objects, by event index
    allocated: dict[tuple[int, str], Service]  # (event index, key) → with its addresses
    down: set[str] = field(default_factory=set)  # nodes down
    ingress_controller: bool = False  # the cluster has one (its workloads have Ingresses)


def applied(docs: list[dict[str, Any]], checks: Checks,
            images: Mapping[str, Program] | None = None) -> dict[int, list[Any]]:
    """What `apply` events will create or change, parsed now, by event index: Namespaces,
    Secrets, Services, NetworkPolicies, Ingresses, Pods, Deployments (their pods' programs
    decided as the scenario's are)."""
    objects_of: dict[int, list[Any]] = {}
    for i, doc in enumerate(docs):
        if doc["action"] != "apply":
            continue
        where = f"events[{i}]"
        if ("manifest" in doc) == ("file" in doc):
            checks.error(where, "apply takes one of `manifest` (inline) or `file`")
            continue
        if "file" in doc:
            path = Path(checks.file).parent / doc["file"]
            try:
                sources = [(d, str(path), f"document {k}") for k, d in enumerate(
                    yaml.safe_load_all(path.read_text())) if d is not None]
            except (OSError, yaml.YAMLError) as e:
                checks.error(f"{where}.file", f"cannot read {path}: {e}")
                continue
        else:
            sources = [(doc["manifest"], checks.file, f"{where}.manifest")]
        objects: list[Any] = []
        for manifest, file, place in sources:
            parsed = parse_manifest(manifest, file, place)
            decide_programs(parsed, images or {}, file, place)
            checks.problems += parsed.problems
            checks.warnings += parsed.warnings
            made = [*parsed.namespaces, *parsed.secrets, *parsed.services, *parsed.policies,
                    *parsed.ingresses, *parsed.slices, *(p for p in parsed.pods if not p.owner),
                    *(Deployment(t, sum(p.owner == t.owner and p.namespace == t.namespace
                                        for p in parsed.pods), parsed.rollouts[key])
                      for key, t in parsed.templates.items())]
            for obj in made:
                checks.places[key_of(obj)] = (file, place)
            objects += made
        objects_of[i] = objects
    return objects_of


def events(docs: list[dict[str, Any]], cluster: ClusterSpec, topology: TopologySpec,
           pods: list[PodSpec], templates: dict[str, PodSpec], objects: list[Any],
           objects_of: dict[int, list[Any]], allocated: dict[tuple[int, str], Service],
           checks: Checks) -> tuple[list[EventSpec], set[str]]:
    """Each event checked against the cluster as the events before it leave it; and the
    pods the events make."""
    nodes = [n.name for n in cluster.nodes]
    topology_cls = registry.topologies().get(topology.name)
    if topology_cls is None:
        return [], set()  # reported with the topology
    links = {name: topology.link if name in nodes else topology.wan or LinkParams()
             for name in topology_cls.link_names(nodes)}
    keys = {p.key for p in pods}
    world = World(checks, nodes, links, set(keys), set(keys), dict(templates),
                  {(kind_of(o), key_of(o)) for o in objects}, objects_of, allocated,
                  ingress_controller=any(kind_of(o) == "Ingress" for o in objects))
    kinds = registry.events()
    out: list[EventSpec] = []
    for i in sorted(range(len(docs)), key=lambda k: docs[k]["at"]):
        doc, where = docs[i], f"events[{i}]"
        kind = kinds[doc["action"]]
        for key in doc:
            if key not in ("at", "action", *kind.keys):
                checks.error(f"{where}.{key}", f"not a key of {kind.action} (it takes: "
                                               f"{', '.join(kind.keys)})")
        event = kind.check(doc, where, i, world)
        if event is not None:
            out.append(event)
    return out, world.used - keys
