"""Kubernetes manifests → kemu objects (Pod and apps/v1 Deployment for now).

Pure: parses and checks plain dicts. Every problem names the field path within the document;
the caller prefixes the document's place (`workloads[2]` or `web.yaml#1`). Fields that do
nothing in a network emulation (resources, probes for liveness, volumes…) are accepted with a
warning naming them; fields kemu does not know are errors, never silently ignored.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field, replace
from typing import Any

from kemu.errors import Problem
from kemu.objects import Container, ContainerPort, PodSpec
from kemu.workloads import IMAGES, known_images

DNS_LABEL = re.compile(r"^[a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?$")
DNS_SUBDOMAIN = re.compile(r"^[a-z0-9]([-a-z0-9.]{0,251}[a-z0-9])?$")

# Fields with no network meaning: accepted, reported as ignored.
IGNORED_POD_FIELDS = {
    "restartPolicy", "terminationGracePeriodSeconds", "volumes", "serviceAccountName",
    "serviceAccount", "securityContext", "affinity", "tolerations", "imagePullSecrets",
    "priorityClassName", "schedulerName", "dnsPolicy", "enableServiceLinks",
}
IGNORED_CONTAINER_FIELDS = {
    "resources", "imagePullPolicy", "livenessProbe", "startupProbe", "volumeMounts",
    "securityContext", "terminationMessagePath", "terminationMessagePolicy", "workingDir",
    "readinessProbe",  # kemu treats a started container as ready (readiness comes with Services)
}
IGNORED_DEPLOYMENT_FIELDS = {
    "strategy", "revisionHistoryLimit", "minReadySeconds", "progressDeadlineSeconds", "paused",
}
IGNORED_METADATA_FIELDS = {"annotations", "uid", "resourceVersion", "generation",
                           "creationTimestamp", "managedFields"}

SUPPORTED_KINDS = ("v1/Pod", "apps/v1/Deployment")


@dataclass
class Parsed:
    pods: list[PodSpec] = field(default_factory=list)
    problems: list[Problem] = field(default_factory=list)
    warnings: list[Problem] = field(default_factory=list)


class _Checker:
    """Collects problems and warnings with field paths while walking a document."""

    def __init__(self, out: Parsed, file: str, base: str):
        self.out, self.file, self.base = out, file, base

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

    def name(self, value: Any, path: str) -> str:
        if not isinstance(value, str) or not DNS_LABEL.match(value):
            self.error(path, f"must be a DNS label (lower-case letters, digits, '-'; at most 63), "
                             f"got {value!r}")
            return ""
        return value


def parse_manifest(doc: Any, file: str = "", where: str = "") -> Parsed:
    """Parse one manifest document (a Pod or a Deployment) into pod specs."""
    out = Parsed()
    check = _Checker(out, file, where)
    if not isinstance(doc, dict):
        check.error("", "a manifest must be a mapping with apiVersion and kind")
        return out
    kind_key = f"{doc.get('apiVersion')}/{doc.get('kind')}"
    if kind_key == "v1/Pod":
        _parse_pod(doc, check)
    elif kind_key == "apps/v1/Deployment":
        _parse_deployment(doc, check)
    else:
        check.error("kind", f"{doc.get('kind')!r} of apiVersion {doc.get('apiVersion')!r} is "
                            f"not supported here (supported: {', '.join(SUPPORTED_KINDS)})")
    return out


def _metadata(doc: dict[str, Any], check: _Checker) -> tuple[str, str, dict[str, str]]:
    path = "metadata"
    meta = check.mapping(doc.get(path), path)
    check.fields(meta, path, {"name", "namespace", "labels"}, IGNORED_METADATA_FIELDS)
    name = check.name(meta.get("name"), f"{path}.name")
    namespace = meta.get("namespace", "default")
    if not isinstance(namespace, str) or not DNS_LABEL.match(namespace):
        check.error(f"{path}.namespace", f"must be a DNS label, got {namespace!r}")
        namespace = "default"
    return name, namespace, check.labels(meta.get("labels"), f"{path}.labels")


def _parse_pod(doc: dict[str, Any], check: _Checker) -> None:
    check.fields(doc, "", {"apiVersion", "kind", "metadata", "spec", "status"})
    name, namespace, labels = _metadata(doc, check)
    pod = _pod_spec(doc.get("spec"), check, "spec", name, namespace, labels, owner="")
    if pod:
        check.out.pods.append(pod)


def _parse_deployment(doc: dict[str, Any], check: _Checker) -> None:
    check.fields(doc, "", {"apiVersion", "kind", "metadata", "spec", "status"})
    name, namespace, _ = _metadata(doc, check)
    spec = check.mapping(doc.get("spec"), "spec")
    check.fields(spec, "spec", {"replicas", "selector", "template"}, IGNORED_DEPLOYMENT_FIELDS)
    replicas = spec.get("replicas", 1)
    if not isinstance(replicas, int) or isinstance(replicas, bool) or replicas < 0:
        check.error("spec.replicas", f"must be a whole number >= 0, got {replicas!r}")
        replicas = 0
    selector = check.mapping(spec.get("selector"), "spec.selector")
    check.fields(selector, "spec.selector", {"matchLabels"})
    match_labels = check.labels(selector.get("matchLabels"), "spec.selector.matchLabels")
    if not match_labels:
        check.error("spec.selector.matchLabels", "a Deployment needs a selector")
    template = check.mapping(spec.get("template"), "spec.template")
    check.fields(template, "spec.template", {"metadata", "spec"})
    tmeta = check.mapping(template.get("metadata"), "spec.template.metadata")
    check.fields(tmeta, "spec.template.metadata", {"labels", "name"}, IGNORED_METADATA_FIELDS)
    tlabels = check.labels(tmeta.get("labels"), "spec.template.metadata.labels")
    if match_labels and any(tlabels.get(k) != v for k, v in match_labels.items()):
        check.error("spec.template.metadata.labels",
                    f"selector {match_labels} does not match template labels {tlabels}")
    template_pod = _pod_spec(template.get("spec"), check, "spec.template.spec", name,
                             namespace, tlabels, owner=f"Deployment/{name}")
    if template_pod:
        # Deterministic names (web-0, web-1, …) instead of Kubernetes' random hashes, so that
        # scenarios and results can name pods.
        check.out.pods += [replace(template_pod, name=f"{name}-{i}") for i in range(replicas)]


def _pod_spec(value: Any, check: _Checker, path: str, name: str, namespace: str,
              labels: dict[str, str], owner: str) -> PodSpec | None:
    spec = check.mapping(value, path)
    check.fields(spec, path, {"containers", "nodeName", "nodeSelector", "hostname"},
                 IGNORED_POD_FIELDS)
    containers = check.sequence(spec.get("containers"), f"{path}.containers")
    if not containers:
        check.error(f"{path}.containers", "a pod needs at least one container")
    parsed = [_container(c, check, f"{path}.containers[{i}]") for i, c in enumerate(containers)]
    names = [c.name for c in parsed if c]
    for dup in sorted({n for n in names if names.count(n) > 1}):
        check.error(f"{path}.containers", f"container name {dup!r} is used twice")
    node_name = spec.get("nodeName", "")
    if not isinstance(node_name, str):
        check.error(f"{path}.nodeName", "must be a node name")
        node_name = ""
    node_selector = check.labels(spec.get("nodeSelector"), f"{path}.nodeSelector")
    if not name or any(c is None for c in parsed):
        return None
    return PodSpec(name=name, namespace=namespace, labels=labels,
                   containers=tuple(c for c in parsed if c), node_name=node_name,
                   node_selector=node_selector, owner=owner)


def _container(value: Any, check: _Checker, path: str) -> Container | None:
    doc = check.mapping(value, path)
    check.fields(doc, path, {"name", "image", "command", "args", "ports", "env"},
                 IGNORED_CONTAINER_FIELDS)
    name = check.name(doc.get("name"), f"{path}.name")
    image = doc.get("image", "")
    command = _strings(doc.get("command"), check, f"{path}.command")
    args = _strings(doc.get("args"), check, f"{path}.args")
    if not command and image not in IMAGES:
        check.error(f"{path}.image", f"unknown image {image!r}: use a built-in image "
                                     f"({', '.join(known_images())}) or give `command`")
    ports = []
    for i, p in enumerate(check.sequence(doc.get("ports"), f"{path}.ports")):
        ppath = f"{path}.ports[{i}]"
        port = check.mapping(p, ppath)
        check.fields(port, ppath, {"containerPort", "name", "protocol"}, {"hostPort", "hostIP"})
        number = port.get("containerPort")
        if not isinstance(number, int) or not 0 < number < 65536:
            check.error(f"{ppath}.containerPort", f"must be a port number 1-65535, got {number!r}")
            continue
        protocol = port.get("protocol", "TCP")
        if protocol not in ("TCP", "UDP", "SCTP"):
            check.error(f"{ppath}.protocol", f"must be TCP, UDP or SCTP, got {protocol!r}")
        ports.append(ContainerPort(number, str(port.get("name", "")), str(protocol)))
    env = []
    for i, e in enumerate(check.sequence(doc.get("env"), f"{path}.env")):
        item = check.mapping(e, f"{path}.env[{i}]")
        check.fields(item, f"{path}.env[{i}]", {"name", "value"})
        if not isinstance(item.get("name"), str):
            check.error(f"{path}.env[{i}].name", "must be a string")
            continue
        env.append((item["name"], str(item.get("value", ""))))
    if not name:
        return None
    return Container(name=name, image=str(image), command=command, args=args,
                     ports=tuple(ports), env=tuple(env))


def _strings(value: Any, check: _Checker, path: str) -> tuple[str, ...]:
    items = check.sequence(value, path)
    if not all(isinstance(x, str | int | float) for x in items):
        check.error(path, "must be a list of strings")
        return ()
    return tuple(str(x) for x in items)
