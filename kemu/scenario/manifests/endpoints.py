"""EndpointSlices and Endpoints given in manifests: the endpoints of a Service without a
selector (an external database, a server outside the cluster, an address kemu's emulated world
has). Pure.

An EndpointSlice belongs to the Service its `kubernetes.io/service-name` label names; missing
conditions mean what kube-proxy takes them to mean (ready and serving unless false; not
terminating). An Endpoints object is mirrored into an EndpointSlice, as the
EndpointSliceMirroring controller does (one per subset; notReadyAddresses not ready). Only
IPv4 addresses are emulated; an FQDN slice is accepted and, as kube-proxy does, not used.
"""

from __future__ import annotations

import hashlib
import ipaddress
from typing import Any

from kemu.scenario.manifests.checker import Checker, metadata
from kemu.scenario.objects import EndpointSlice, SliceEndpoint

SERVICE_NAME = "kubernetes.io/service-name"
MIRRORED = "endpointslicemirroring-controller.k8s.io"


def parse_endpoint_slice(doc: dict[str, Any], check: Checker) -> None:
    check.fields(doc, "", {"apiVersion", "kind", "metadata", "addressType", "endpoints",
                           "ports"})
    name, namespace, labels = metadata(doc, check)
    service = labels.get(SERVICE_NAME, "")
    if not service:
        check.warn("metadata.labels", f"no {SERVICE_NAME} label: the slice belongs to no "
                                      f"Service and kube-proxy ignores it")
    kind = doc.get("addressType")
    if kind not in ("IPv4", "IPv6", "FQDN"):
        check.error("addressType", f"Unsupported value: {kind!r}: supported values: FQDN, "
                                   f"IPv4, IPv6")
        return
    if kind == "IPv6":
        check.error("addressType", "IPv6 is not emulated (kemu's clusters are IPv4)")
        return
    ports = _ports(doc.get("ports"), check, "ports")
    endpoints = []
    for i, item in enumerate(check.sequence(doc.get("endpoints"), "endpoints")):
        where = f"endpoints[{i}]"
        entry = check.mapping(item, where)
        check.fields(entry, where, {"addresses", "conditions", "nodeName", "zone", "targetRef",
                                    "hostname", "hints", "deprecatedTopology"})
        addresses = check.sequence(entry.get("addresses"), f"{where}.addresses")
        if not addresses:
            check.error(f"{where}.addresses", "Required value: an endpoint needs an address")
            continue
        conditions = check.mapping(entry.get("conditions"), f"{where}.conditions")
        check.fields(conditions, f"{where}.conditions", {"ready", "serving", "terminating"})
        ready = conditions.get("ready") is not False
        serving = conditions.get("serving") is not False
        ip = addresses[0] if kind == "FQDN" else \
            _address(addresses[0], check, f"{where}.addresses[0]")
        target = check.mapping(entry.get("targetRef"), f"{where}.targetRef")
        pod = f"{target.get('namespace', namespace)}/{target['name']}" \
            if target.get("kind") == "Pod" and isinstance(target.get("name"), str) else ""
        if ip and kind == "IPv4":
            endpoints.append(SliceEndpoint(ip, ready, serving,
                                           conditions.get("terminating") is True,
                                           str(entry.get("nodeName", "")),
                                           str(entry.get("zone", "")), pod))
    if name and kind == "IPv4":
        check.out.slices.append(EndpointSlice(name, namespace, service, ports,
                                              tuple(endpoints), "user"))


def parse_endpoints(doc: dict[str, Any], check: Checker) -> None:
    check.fields(doc, "", {"apiVersion", "kind", "metadata", "subsets"})
    name, namespace, _ = metadata(doc, check)
    for i, item in enumerate(check.sequence(doc.get("subsets"), "subsets")):
        where = f"subsets[{i}]"
        subset = check.mapping(item, where)
        check.fields(subset, where, {"addresses", "notReadyAddresses", "ports"})
        ports = _ports(subset.get("ports"), check, f"{where}.ports")
        endpoints = []
        for field, ready in (("addresses", True), ("notReadyAddresses", False)):
            for j, value in enumerate(check.sequence(subset.get(field), f"{where}.{field}")):
                address = check.mapping(value, f"{where}.{field}[{j}]")
                check.fields(address, f"{where}.{field}[{j}]", {"ip", "nodeName", "hostname",
                                                                 "targetRef"})
                ip = _address(address.get("ip"), check, f"{where}.{field}[{j}].ip")
                if ip:  # mirrored with only `ready` set: serving is nil, which reads as true
                    endpoints.append(SliceEndpoint(ip, ready, True, False,
                                                   str(address.get("nodeName", ""))))
        if name:
            digest = hashlib.sha256(f"{namespace}/{name}/{i}".encode()).hexdigest()[:5]
            check.out.slices.append(EndpointSlice(f"{name}-{digest}", namespace, name, ports,
                                                  tuple(endpoints), MIRRORED))


def _ports(value: Any, check: Checker, path: str) -> tuple[tuple[str, int, str], ...]:
    out = []
    for i, item in enumerate(check.sequence(value, path)):
        port = check.mapping(item, f"{path}[{i}]")
        check.fields(port, f"{path}[{i}]", {"name", "port", "protocol", "appProtocol"})
        number = check.integer(port.get("port"), f"{path}[{i}].port", 1, 65535)
        protocol = port.get("protocol", "TCP")
        if protocol not in ("TCP", "UDP", "SCTP"):
            check.error(f"{path}[{i}].protocol", f"must be TCP, UDP or SCTP, got {protocol!r}")
        name = port.get("name") or ""
        if number is not None and isinstance(name, str):
            out.append((name, number, str(protocol)))
    return tuple(out)


def _address(value: Any, check: Checker, path: str) -> str:
    """An endpoint's IPv4 address, as the API server checks it: not loopback, not
    link-local."""
    try:
        address = ipaddress.IPv4Address(value if isinstance(value, str) else "")
    except ValueError:
        check.error(path, f"must be a valid IPv4 address, got {value!r}")
        return ""
    if address.is_loopback or address.is_link_local:
        check.error(path, f"{address}: may not be in the loopback or link-local range")
        return ""
    return str(address)
