"""Ingress (networking.k8s.io/v1, and the older v1beta1 forms the seeds use) and the
kubernetes.io/tls Secrets their TLS sections name. Pure."""

from __future__ import annotations

import base64
from collections.abc import Callable
from typing import Any

from kemu.scenario.manifests.checker import Checker, metadata, strings
from kemu.scenario.objects import Ingress, IngressBackend, IngressPath, IngressRule, Secret

PATH_TYPES = ("Prefix", "Exact", "ImplementationSpecific")


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
    spec = check.mapping(doc.get("spec"), "spec")
    check.fields(spec, "spec", {"ingressClassName", default_key, "rules", "tls"})
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
            if target:
                paths.append(IngressPath(_ingress_path(entry.get("path", "/"), check,
                                                       f"{where}.path"), path_type, target))
        rules.append(IngressRule(str(rule.get("host", "")), tuple(paths)))
    default = backend(spec[default_key], f"spec.{default_key}") if default_key in spec \
        else None
    _finish_ingress(name, namespace, rules, default, spec, check)


def _ingress_path(value: Any, check: Checker, where: str) -> str:
    if not isinstance(value, str) or not value.startswith("/"):
        check.error(where, f"must be an absolute path, got {value!r}")
        return "/"
    return value


def _finish_ingress(name: str, namespace: str, rules: list[IngressRule],
                    default: IngressBackend | None, spec: dict[str, Any],
                    check: Checker) -> None:
    tls = []
    for i, t in enumerate(check.sequence(spec.get("tls"), "spec.tls")):
        entry = check.mapping(t, f"spec.tls[{i}]")
        check.fields(entry, f"spec.tls[{i}]", {"hosts", "secretName"})
        hosts = strings(entry.get("hosts"), check, f"spec.tls[{i}].hosts")
        tls.append((hosts, str(entry.get("secretName", ""))))
    if not rules and default is None:
        check.error("spec", "an Ingress needs rules or a default backend")
    if name:
        check.out.ingresses.append(Ingress(name, namespace, tuple(rules), default, tuple(tls)))


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
