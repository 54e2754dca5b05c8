"""Ingress (networking.k8s.io/v1, and the older v1beta1 forms the seeds use), IngressClass,
and the kubernetes.io/tls Secrets their TLS sections name. Pure.

An Ingress's `nginx.ingress.kubernetes.io/*` annotations are read as ingress-nginx reads them
(strings; a value it cannot parse is ignored, leaving the default); those kemu does not
follow are named in a warning. Exact and Prefix paths are checked as ingress-nginx's admission
webhook checks them (strict-validate-path-type, on by default since v1.12)."""

from __future__ import annotations

import base64
import re
from collections.abc import Callable
from dataclasses import fields, replace
from typing import Any

from kemu.scenario.manifests.checker import Checker, metadata, strings
from kemu.scenario.objects import (
    Ingress,
    IngressBackend,
    IngressClass,
    IngressPath,
    IngressRule,
    NginxAnnotations,
    Secret,
)

PATH_TYPES = ("Prefix", "Exact", "ImplementationSpecific")
NGINX = "nginx.ingress.kubernetes.io/"
CLASS_ANNOTATION = "kubernetes.io/ingress.class"  # before spec.ingressClassName
DEFAULT_CLASS = "ingressclass.kubernetes.io/is-default-class"
# ingress-nginx's webhook: Exact and Prefix paths of these characters only (internal/ingress/
# inspector/rules.go, validPathType).
STRICT_PATH = re.compile(r"^/[A-Za-z0-9/_.-]*$")


BackendParser = Callable[[Any, str], "IngressBackend | None"]


def parse_ingress(doc: dict[str, Any], check: Checker) -> None:
    """networking.k8s.io/v1 Ingress: backend.service.{name, port.{number|name}}."""

    def backend(value: Any, path: str) -> IngressBackend | None:
        b = check.mapping(value, path)
        check.fields(b, path, {"service"})
        svc = check.mapping(b.get("service"), f"{path}.service")
        check.fields(svc, f"{path}.service", {"name", "port"})
        port = check.mapping(svc.get("port"), f"{path}.service.port")
        check.fields(port, f"{path}.service.port", {"number", "name"})
        number = check.port_ref(port.get("number", port.get("name")), f"{path}.service.port")
        service = check.name(svc.get("name"), f"{path}.service.name")
        return IngressBackend(service, number) if service and number is not None else None

    _parse_any_ingress(doc, check, backend, "defaultBackend", path_type_required=True)


def parse_ingress_v1beta1(doc: dict[str, Any], check: Checker) -> None:
    """The older form the seeds use: serviceName/servicePort, `backend` as the default."""

    def backend(value: Any, path: str) -> IngressBackend | None:
        b = check.mapping(value, path)
        check.fields(b, path, {"serviceName", "servicePort"})
        service = check.name(b.get("serviceName"), f"{path}.serviceName")
        port = check.port_ref(b.get("servicePort"), f"{path}.servicePort")
        return IngressBackend(service, port) if service and port is not None else None

    _parse_any_ingress(doc, check, backend, "backend", path_type_required=False)


def _parse_any_ingress(doc: dict[str, Any], check: Checker, backend: BackendParser,
                       default_key: str, path_type_required: bool) -> None:
    """What both Ingress versions share: hosts, paths, the default backend, TLS."""
    check.fields(doc, "", {"apiVersion", "kind", "metadata", "spec", "status"})
    name, namespace, _ = metadata(doc, check)
    annotations = _annotations(doc, check)
    nginx = nginx_annotations(annotations, check)
    spec = check.mapping(doc.get("spec"), "spec")
    check.fields(spec, "spec", {"ingressClassName", default_key, "rules", "tls"})
    class_name = str(spec.get("ingressClassName") or annotations.get(CLASS_ANNOTATION, ""))
    rules = []
    for i, r in enumerate(check.sequence(spec.get("rules"), "spec.rules")):
        rule = check.mapping(r, f"spec.rules[{i}]")
        check.fields(rule, f"spec.rules[{i}]", {"host", "http"})
        http = check.mapping(rule.get("http"), f"spec.rules[{i}].http")
        check.fields(http, f"spec.rules[{i}].http", {"paths"})
        paths = []
        for k, p in enumerate(check.sequence(http.get("paths"), f"spec.rules[{i}].http.paths")):
            where = f"spec.rules[{i}].http.paths[{k}]"
            entry = check.mapping(p, where)
            check.fields(entry, where, {"path", "pathType", "backend"})
            path_type = entry.get("pathType", "" if path_type_required
                                  else "ImplementationSpecific")
            if path_type not in PATH_TYPES:
                check.error(f"{where}.pathType", f"must be one of {', '.join(PATH_TYPES)}, "
                                                 f"got {path_type!r}")
            target = backend(entry.get("backend"), f"{where}.backend")
            path = _ingress_path(entry.get("path", "/"), path_type, nginx, check,
                                 f"{where}.path", strict=class_name in ("", "nginx"))
            if target:
                paths.append(IngressPath(path, path_type, target))
        rules.append(IngressRule(_host(rule.get("host", ""), check, f"spec.rules[{i}].host"),
                                 tuple(paths)))
    default = backend(spec[default_key], f"spec.{default_key}") if default_key in spec \
        else None
    _finish_ingress(Ingress(name, namespace, tuple(rules), default, class_name=class_name,
                            nginx=nginx), spec, check)


def _ingress_path(value: Any, path_type: str, nginx: NginxAnnotations, check: Checker,
                  where: str, strict: bool) -> str:
    """The path; `strict`: checked as ingress-nginx's webhook checks its class's Ingresses."""
    if not isinstance(value, str) or not value.startswith("/"):
        check.error(where, f"must be an absolute path, got {value!r}")
        return "/"
    if strict and path_type in ("Exact", "Prefix") and not STRICT_PATH.match(value):
        check.error(where, f"ingress-nginx's admission webhook refuses it: path {value} cannot "
                           f"be used with pathType {path_type} (letters, digits and "
                           f"'/_.-' only; a regular expression needs ImplementationSpecific)")
    elif "*" in value and not (nginx.use_regex or nginx.rewrite_target):
        check.warn(where, f"{value!r}: ingress-nginx matches ImplementationSpecific paths as "
                          f"nginx prefixes, so '*' is a literal character here, not a "
                          f"wildcard (GCE's glob); use pathType Prefix with "
                          f"{value.rstrip('*') or '/'!r}")
    return value


def _host(value: Any, check: Checker, where: str) -> str:
    """A rule's host: a DNS name, or a wildcard `*.` and a DNS name (one label matched)."""
    host = str(value or "")
    name = host[2:] if host.startswith("*.") else host
    if host and not re.match(r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*"
                             r"[a-z0-9])?)*$", name):
        check.error(where, f"must be a DNS name, optionally starting with '*.', got {host!r}")
    return host


def _annotations(doc: dict[str, Any], check: Checker) -> dict[str, str]:
    meta = doc.get("metadata")
    values = check.mapping(meta.get("annotations") if isinstance(meta, dict) else None,
                           "metadata.annotations")
    return {str(k): str(v) for k, v in values.items()}


# annotation (without the prefix) → NginxAnnotations field
FOLLOWED = {f.name.replace("_", "-"): f.name for f in fields(NginxAnnotations)}


def nginx_annotations(annotations: dict[str, str], check: Checker) -> NginxAnnotations:
    """The ingress-nginx annotations kemu follows, parsed as ingress-nginx parses them (a
    value it cannot read is ignored with a warning); a warning for each one kemu does not."""
    out = NginxAnnotations()
    for key, value in annotations.items():
        if not key.startswith(NGINX):
            continue
        where = f"metadata.annotations.{key}"
        name = FOLLOWED.get(key[len(NGINX):])
        if name is None:
            check.warn(where, "kemu does not emulate this ingress-nginx annotation: ignored")
            continue
        default = getattr(out, name)
        parsed: Any = value
        if isinstance(default, bool):
            parsed = {"true": True, "1": True, "t": True, "false": False, "0": False,
                      "f": False}.get(value.lower())
        elif isinstance(default, int):
            parsed = int(value) if re.fullmatch(r"\d+", value.strip()) else None
        if parsed is None:
            check.warn(where, f"{value!r} cannot be read (ingress-nginx ignores it: "
                              f"{default!r})")
            continue
        out = replace(out, **{name: parsed})
    if out.affinity not in ("", "cookie"):
        check.warn(f"metadata.annotations.{NGINX}affinity",
                   f"{out.affinity!r}: ingress-nginx knows only 'cookie' (ignored)")
        out = replace(out, affinity="")
    return out


def _finish_ingress(ingress: Ingress, spec: dict[str, Any], check: Checker) -> None:
    tls = []
    for i, t in enumerate(check.sequence(spec.get("tls"), "spec.tls")):
        entry = check.mapping(t, f"spec.tls[{i}]")
        check.fields(entry, f"spec.tls[{i}]", {"hosts", "secretName"})
        hosts = strings(entry.get("hosts"), check, f"spec.tls[{i}].hosts")
        tls.append((hosts, str(entry.get("secretName", ""))))
    if not ingress.rules and ingress.default_backend is None:
        check.error("spec", "an Ingress needs rules or a default backend")
    if ingress.name:
        check.out.ingresses.append(replace(ingress, tls=tuple(tls)))


def parse_ingress_class(doc: dict[str, Any], check: Checker) -> None:
    """networking.k8s.io/v1 IngressClass: its controller, and whether it is the default."""
    check.fields(doc, "", {"apiVersion", "kind", "metadata", "spec"})
    name, _, _ = metadata(doc, check)
    spec = check.mapping(doc.get("spec"), "spec")
    check.fields(spec, "spec", {"controller"}, ignored={"parameters"})
    controller = spec.get("controller")
    if not isinstance(controller, str) or not controller:
        check.error("spec.controller", "name the controller (ingress-nginx's is "
                                       "k8s.io/ingress-nginx)")
        return
    default = _annotations(doc, check).get(DEFAULT_CLASS, "") == "true"
    if name:
        check.out.ingress_classes.append(IngressClass(name, controller, default))


def parse_secret(doc: dict[str, Any], check: Checker) -> None:
    check.fields(doc, "", {"apiVersion", "kind", "metadata", "type", "data", "stringData",
                           "immutable"})
    name, namespace, _ = metadata(doc, check)
    if doc.get("type") != "kubernetes.io/tls":
        check.error("type", f"only kubernetes.io/tls Secrets are used by kemu, got "
                            f"{doc.get('type')!r}")
        return
    data = {**{k: base64.b64decode(str(v)).decode(errors="replace")
               for k, v in check.mapping(doc.get("data"), "data").items()},
            **{k: str(v) for k, v in check.mapping(doc.get("stringData"), "stringData").items()}}
    for field_name in ("tls.crt", "tls.key"):
        if "-----BEGIN" not in data.get(field_name, ""):
            check.error(f"data.{field_name}", "a PEM block is required")
    if name and not check.out.problems:
        check.out.secrets.append(Secret(name, namespace, data["tls.crt"], data["tls.key"]))
