"""Kubernetes manifests → kemu objects: v1 Pod, Service, Endpoints, Namespace, Secret
(kubernetes.io/tls), apps/v1 Deployment, discovery.k8s.io/v1 EndpointSlice, networking.k8s.io/v1
NetworkPolicy, Ingress (and its older v1beta1 forms) and IngressClass.

Pure: parses and checks plain dicts. Every problem names the field path within the document;
the caller prefixes the document's place (`workloads[2]` or `web.yaml#1`). Fields that do
nothing in a network emulation (resources, probes for liveness, volumes…) are accepted with a
warning naming them; fields kemu does not know are errors, never silently ignored.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from kemu.scenario.manifests.checker import Checker, Parsed
from kemu.scenario.manifests.endpoints import parse_endpoint_slice, parse_endpoints
from kemu.scenario.manifests.ingresses import (
    parse_ingress,
    parse_ingress_class,
    parse_ingress_v1beta1,
    parse_secret,
)
from kemu.scenario.manifests.policies import parse_policy
from kemu.scenario.manifests.services import parse_service
from kemu.scenario.manifests.workloads import parse_deployment, parse_namespace, parse_pod

__all__ = ["PARSERS", "Parsed", "SUPPORTED_KINDS", "parse_manifest"]

PARSERS: dict[str, Callable[[dict[str, Any], Checker], None]] = {
    "v1/Pod": parse_pod, "apps/v1/Deployment": parse_deployment,
    "v1/Service": parse_service, "v1/Namespace": parse_namespace, "v1/Secret": parse_secret,
    "v1/Endpoints": parse_endpoints, "discovery.k8s.io/v1/EndpointSlice": parse_endpoint_slice,
    "networking.k8s.io/v1/NetworkPolicy": parse_policy,
    "networking.k8s.io/v1/Ingress": parse_ingress,
    "networking.k8s.io/v1/IngressClass": parse_ingress_class,
    "extensions/v1beta1/Ingress": parse_ingress_v1beta1,
    "networking.k8s.io/v1beta1/Ingress": parse_ingress_v1beta1,
}
SUPPORTED_KINDS = tuple(PARSERS)


def parse_manifest(doc: Any, file: str = "", where: str = "",
                   room: tuple[int, str] | None = None) -> Parsed:
    """Parse one manifest document (any supported kind) into `Parsed`. `room`: how many more
    pods the cluster holds, and why (a Deployment asking for more is refused before its pods
    are made)."""
    out = Parsed()
    check = Checker(out, file, where, room)
    if not isinstance(doc, dict):
        check.error("", "a manifest must be a mapping with apiVersion and kind")
        return out
    if doc.get("apiVersion") == "v1" and doc.get("kind") == "List":  # as kubectl get prints
        check.fields(doc, "", {"apiVersion", "kind", "metadata", "items"})
        for i, item in enumerate(check.sequence(doc.get("items"), "items")):
            left = (room[0] - len(out.pods), room[1]) if room else None
            out.merge(parse_manifest(item, file, f"{where}.items[{i}]" if where
                                     else f"items[{i}]", left))
        return out
    parser = PARSERS.get(f"{doc.get('apiVersion')}/{doc.get('kind')}")
    if parser:
        parser(doc, check)
    else:
        check.error("kind", f"{doc.get('kind')!r} of apiVersion {doc.get('apiVersion')!r} is "
                            f"not supported here (supported: {', '.join(SUPPORTED_KINDS)})")
    return out
