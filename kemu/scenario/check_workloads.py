"""The checks of a scenario's `workloads`: each manifest (inline, or the documents of a file),
what runs for each container (images.py: a warning where a stand-in does), names unique per
kind, and the add-ons the cluster gets with them (cluster DNS, and the ingress controller when
there are Ingresses, with what ingress-nginx would say of them). Pure."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import replace
from pathlib import Path
from typing import Any

import yaml

from kemu.errors import Problem
from kemu.scenario import addons
from kemu.scenario.images import Program, resolve, stand_in_note
from kemu.scenario.manifests import Parsed, parse_manifest
from kemu.scenario.model import DNSConfig
from kemu.scenario.objects import ingress_class
from kemu.scenario.problems import Checks


def read_documents(path: Path) -> list[Any]:
    """The YAML documents of a manifest file (empty ones left out); OSError, YAMLError."""
    return [d for d in yaml.safe_load_all(path.read_text()) if d is not None]


def workloads(docs: list[Any], checks: Checks, room: tuple[int, str] | None = None,
              images: Mapping[str, Program] | None = None) -> Parsed:
    """Every object the manifests declare, in the order they declare them (their problems
    and warnings go to `checks`). `room`: how many pods the cluster holds at most, and why;
    `images`: the scenario's `images:` map."""
    out = Parsed()
    base = Path(checks.file).parent
    for i, doc in enumerate(docs):
        where = f"workloads[{i}]"
        if "file" in doc:
            path = base / doc["file"]
            try:
                documents = read_documents(path)
            except OSError as e:
                checks.error(f"{where}.file", f"cannot read {path}: {e.strerror}")
                continue
            except yaml.YAMLError as e:
                checks.error(f"{where}.file", f"{path} is not valid YAML: {e}")
                continue
            sources = [(d, str(path), f"document {k}") for k, d in enumerate(documents)]
        else:
            sources = [(doc, checks.file, where)]
        for manifest, file, place in sources:
            left = (room[0] - len(out.pods), room[1]) if room else None
            parsed = parse_manifest(manifest, file, place, left)
            decide_programs(parsed, images or {}, file, place)
            checks.problems += parsed.problems
            checks.warnings += parsed.warnings
            parsed.problems, parsed.warnings = [], []
            out.merge(parsed)
            for key in [*(o.key for o in parsed.services), *(o.key for o in parsed.policies),
                        *(o.key for o in parsed.ingresses)]:
                checks.places[key] = (file, place)
    for kind, objects in (("pods", out.pods), ("services", out.services),
                          ("network policies", out.policies),
                          ("namespaces", out.namespaces)):
        keys = [getattr(o, "key", getattr(o, "name", "")) for o in objects]
        for dup in sorted({k for k in keys if keys.count(k) > 1}):
            checks.error("workloads", f"two {kind} are named {dup}")
    return out


def decide_programs(parsed: Parsed, images: Mapping[str, Program], file: str,
                    place: str) -> None:
    """Each container's program decided (images.py); a warning where a stand-in runs."""
    parsed.pods = [resolve(p, images) for p in parsed.pods]
    parsed.templates = {key: resolve(t, images) for key, t in parsed.templates.items()}
    for spec in [*parsed.templates.values(), *(p for p in parsed.pods if not p.owner)]:
        parsed.warnings += [Problem(place, f"{spec.key}: container {c.name}: "
                                           f"{stand_in_note(c)}", file)
                            for c in spec.containers if c.stand_in]


def add_ons(objects: Parsed, dns: DNSConfig, has_edge: bool, checks: Checks,
            api_server: tuple[str, str] | None = None) -> None:
    """The `kubernetes` Service (`api_server`: its ClusterIP and its endpoint's address),
    cluster DNS, and the ingress controller (exposed as it is in practice: by a
    LoadBalancer where there is an edge, else a NodePort). Add-on pods go last, so the
    user's pods keep the placement they would have without them."""
    if api_server:
        service, endpoints = addons.kubernetes_service(*api_server)
        objects.services.insert(0, service)
        objects.slices.insert(0, endpoints)
        checks.places.setdefault(service.key, (checks.file, "cluster.serviceCIDR"))
    if dns.enabled:
        objects.pods.append(addons.DNS_POD)
        objects.services.insert(1 if api_server else 0,
                                replace(addons.DNS_SERVICE, cluster_ip=dns.cluster_ip))
        checks.places[addons.DNS_SERVICE.key] = (checks.file, "cluster.dns")
    if objects.ingresses:
        objects.pods.append(addons.INGRESS_POD)
        objects.services.append(replace(addons.INGRESS_SERVICE,
                                        type="LoadBalancer" if has_edge else "NodePort"))
        if all(c.name != addons.INGRESS_CLASS.name for c in objects.ingress_classes):
            # The cluster's default class, unless the manifests mark one of their own.
            default = not any(c.default for c in objects.ingress_classes)
            objects.ingress_classes.insert(0, replace(addons.INGRESS_CLASS, default=default))
        ingresses(objects, checks)


def ingresses(objects: Parsed, checks: Checks) -> None:
    """What ingress-nginx would say of the Ingresses: those of a class it does not serve are
    not routed, a backend naming no Service port answers 503 (warnings, as a cluster accepts
    them)."""
    if sum(c.default for c in objects.ingress_classes) > 1:
        for ing in objects.ingresses:
            if not ing.class_name:
                checks.error_at(ing.key, f"Ingress {ing.key} names no IngressClass, and more "
                                         f"than one is marked default: the API server refuses "
                                         f"it")
    for ing in objects.ingresses:
        cls = ingress_class(ing, objects.ingress_classes)
        if cls is None or cls.controller != addons.INGRESS_CONTROLLER_CLASS:
            checks.warn_at(ing.key, f"Ingress {ing.key}: "
                           + (f"class {ing.class_name!r} is not ingress-nginx's"
                              if ing.class_name else "it names no IngressClass and ingress-nginx's "
                                                     "is not the default")
                           + ": no controller in kemu serves it, so it routes nothing")
            continue
        backends = [ing.default_backend] if ing.default_backend else []
        backends += [p.backend for rule in ing.rules for p in rule.paths]
        for backend in backends:
            svc = next((s for s in objects.services if s.name == backend.service and
                        s.namespace == ing.namespace), None)
            if svc is None:
                checks.warn_at(ing.key, f"Ingress {ing.key}: no service {backend.service!r} "
                                        f"(ingress-nginx answers 503 for it)")
            elif not any(backend.port in (p.port, p.name) for p in svc.ports):
                checks.warn_at(ing.key, f"Ingress {ing.key}: service {backend.service!r} has "
                                        f"no port {backend.port!r} (ingress-nginx answers 503 "
                                        f"for it)")
