"""Walking a manifest document: problems and warnings with their field paths, and the checks
every kind shares (mappings, lists, labels, names, ports, selectors, metadata). Pure."""

from __future__ import annotations

import ipaddress
import re
from dataclasses import dataclass, field
from typing import Any

from kemu.errors import Problem
from kemu.scenario.objects import (
    EndpointSlice,
    Ingress,
    IngressClass,
    Namespace,
    NetworkPolicy,
    PodSpec,
    Rollout,
    Secret,
    Service,
)

DNS_LABEL = re.compile(r"^[a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?$")
DNS_SUBDOMAIN = re.compile(r"^[a-z0-9]([-a-z0-9.]{0,251}[a-z0-9])?$")
# What the API server sets and `kubectl get -o yaml` prints, and annotations: no network
# meaning, accepted as they are.
SERVER_METADATA = {"annotations", "uid", "resourceVersion", "generation", "creationTimestamp",
                   "managedFields", "selfLink", "ownerReferences", "finalizers"}


@dataclass
class Parsed:
    """What manifests declare, in their order, and what is wrong with them."""

    pods: list[PodSpec] = field(default_factory=list)
    services: list[Service] = field(default_factory=list)
    policies: list[NetworkPolicy] = field(default_factory=list)
    namespaces: list[Namespace] = field(default_factory=list)
    ingresses: list[Ingress] = field(default_factory=list)
    ingress_classes: list[IngressClass] = field(default_factory=list)
    secrets: list[Secret] = field(default_factory=list)
    slices: list[EndpointSlice] = field(default_factory=list)  # selectorless Services'
    templates: dict[str, PodSpec] = field(default_factory=dict)  # Deployment key → its pods'
    rollouts: dict[str, Rollout] = field(default_factory=dict)  # Deployment key → strategy
    problems: list[Problem] = field(default_factory=list)
    warnings: list[Problem] = field(default_factory=list)

    def merge(self, other: Parsed) -> None:
        """Add what `other` declares after what this one does."""
        for name in ("pods", "services", "policies", "namespaces", "ingresses",
                     "ingress_classes", "secrets", "slices", "problems", "warnings"):
            getattr(self, name).extend(getattr(other, name))
        self.templates.update(other.templates)
        self.rollouts.update(other.rollouts)


class Checker:
    """Collects problems and warnings with field paths while walking a document."""

    def __init__(self, out: Parsed, file: str, base: str,
                 room: tuple[int, str] | None = None):
        self.out, self.file, self.base = out, file, base
        self.room = room  # (pods the cluster has room for, why): None when not known

    def _path(self, path: str) -> str:
        return f"{self.base}.{path}" if path else self.base

    def error(self, path: str, what: str) -> None:
        self.out.problems.append(Problem(self._path(path), what, self.file))

    def warn(self, path: str, what: str) -> None:
        self.out.warnings.append(Problem(self._path(path), what, self.file))

    def mapping(self, value: Any, path: str) -> dict[str, Any]:
        if value is None:
            return {}
        if not isinstance(value, dict):
            self.error(path, f"expected a mapping, got {type(value).__name__}")
            return {}
        return value

    def sequence(self, value: Any, path: str) -> list[Any]:
        if value is None:
            return []
        if not isinstance(value, list):
            self.error(path, f"expected a list, got {type(value).__name__}")
            return []
        return value

    def fields(self, doc: dict[str, Any], path: str, known: set[str],
               ignored: frozenset[str] | set[str] = frozenset()) -> None:
        for key in doc:
            sub = f"{path}.{key}" if path else key
            if key in ignored:
                self.warn(sub, "has no effect in kemu and is ignored")
            elif key not in known:
                self.error(sub, f"unknown field (kemu supports: {', '.join(sorted(known))})")

    def labels(self, value: Any, path: str) -> dict[str, str]:
        labels = self.mapping(value, path)
        for k, v in labels.items():
            if not isinstance(v, str | int | float | bool) or isinstance(v, bool):
                self.error(f"{path}.{k}", "label values must be strings")
        return {str(k): str(v) for k, v in labels.items()}

    def integer(self, value: Any, path: str, low: int, high: int) -> int | None:
        if not isinstance(value, int) or isinstance(value, bool) or not low <= value <= high:
            self.error(path, f"must be a whole number {low}..{high}, got {value!r}")
            return None
        return value

    def port_ref(self, value: Any, path: str) -> int | str | None:
        """A port given by number or by container port name (IANA_SVC_NAME)."""
        if isinstance(value, str) and re.match(r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?$", value) \
                and len(value) <= 15 and not value.isdigit():
            return value
        return self.integer(value, path, 1, 65535)

    def selector(self, value: Any, path: str) -> dict[str, str]:
        """A LabelSelector: matchLabels only (matchExpressions is refused, not ignored)."""
        doc = self.mapping(value, path)
        self.fields(doc, path, {"matchLabels"})
        return self.labels(doc.get("matchLabels"), f"{path}.matchLabels")

    def name(self, value: Any, path: str) -> str:
        if not isinstance(value, str) or not DNS_LABEL.match(value):
            self.error(path, f"must be a DNS label (lower-case letters, digits, '-'; at most 63), "
                             f"got {value!r}")
            return ""
        return value


def metadata(doc: dict[str, Any], check: Checker) -> tuple[str, str, dict[str, str]]:
    path = "metadata"
    meta = check.mapping(doc.get(path), path)
    check.fields(meta, path, {"name", "namespace", "labels", *SERVER_METADATA})
    name = check.name(meta.get("name"), f"{path}.name")
    namespace = meta.get("namespace", "default")
    if not isinstance(namespace, str) or not DNS_LABEL.match(namespace):
        check.error(f"{path}.namespace", f"must be a DNS label, got {namespace!r}")
        namespace = "default"
    return name, namespace, check.labels(meta.get("labels"), f"{path}.labels")


def ipv4(value: Any, check: Checker, path: str) -> str:
    """An IPv4 address as written ("" and a problem if it is not one)."""
    try:
        return str(ipaddress.IPv4Address(value if isinstance(value, str) else ""))
    except ValueError:
        check.error(path, f"must be an IPv4 address, got {value!r}")
        return ""


def cidr(value: Any, check: Checker, path: str) -> str:
    try:
        return str(ipaddress.IPv4Network(str(value), strict=False))
    except ValueError:
        check.error(path, f"not an IPv4 CIDR: {value!r}")
        return ""


def strings(value: Any, check: Checker, path: str) -> tuple[str, ...]:
    items = check.sequence(value, path)
    if not all(isinstance(x, str | int | float) for x in items):
        check.error(path, "must be a list of strings")
        return ()
    return tuple(str(x) for x in items)
