"""The checks of a scenario's `events`: in time order, each checked by its kind (kemu/events/)
against the cluster as the events before it leave it — a node taken down is down until an
event brings it up, a deleted pod is gone and its replacement has a new name, an applied
Service exists from then on. Pure."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from kemu import registry
from kemu.scenario.manifests import parse_manifest
from kemu.scenario.model import ClusterSpec, EventSpec, LinkParams, TopologySpec
from kemu.scenario.objects import NetworkPolicy, PodSpec, Service
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
    objects: set[tuple[str, str]]  # (kind, key) of the Services and NetworkPolicies
    applied: dict[int, list[Service | NetworkPolicy]]  # apply events' objects, by index
    allocated: Iterator[Service]  # the applied Services, with their addresses, in order
    down: set[str] = field(default_factory=set)  # nodes down


def applied(docs: list[dict[str, Any]],
            checks: Checks) -> tuple[list[Service], dict[int, list[Service | NetworkPolicy]]]:
    """What `apply` events will create, parsed now (their Services need addresses now):
    (the Services, every event's objects by index)."""
    objects_of: dict[int, list[Service | NetworkPolicy]] = {}
    services: list[Service] = []
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
        objects: list[Service | NetworkPolicy] = []
        for manifest, file, place in sources:
            parsed = parse_manifest(manifest, file, place)
            checks.problems += parsed.problems
            if parsed.pods or parsed.namespaces or parsed.ingresses or parsed.secrets:
                checks.error(place, "events apply Services and NetworkPolicies only")
            objects += [*parsed.services, *parsed.policies]
            services += parsed.services
            for key in [o.key for o in objects]:
                checks.places[key] = (file, place)
        objects_of[i] = objects
    return services, objects_of


def events(docs: list[dict[str, Any]], cluster: ClusterSpec, topology: TopologySpec,
           pods: list[PodSpec], templates: dict[str, PodSpec], services: list[Service],
           policies: list[NetworkPolicy],
           objects_of: dict[int, list[Service | NetworkPolicy]],
           allocated: list[Service], checks: Checks) -> tuple[list[EventSpec], set[str]]:
    """Each event checked against the cluster as the events before it leave it; and the
    pods the events make."""
    nodes = [n.name for n in cluster.nodes]
    topology_cls = registry.topologies().get(topology.name)
    if topology_cls is None:
        return [], set()  # reported with the topology
    links = {name: topology.link if name in nodes else topology.wan or LinkParams()
             for name in topology_cls.link_names(nodes)}
    keys = {p.key for p in pods}
    world = World(checks, nodes, links, set(keys), set(keys), templates,
                  {("Service", s.key) for s in services} |
                  {("NetworkPolicy", p.key) for p in policies},
                  objects_of, iter(allocated))
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
