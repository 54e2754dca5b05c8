"""EndpointSlices: what the EndpointSlice controller makes of a Service's pods
(kubernetes pkg/controller/endpointslice), and what the readers of slices — kube-proxy, cluster
DNS, the ingress controller, the load balancer — make of them: each Service port's endpoints
with their conditions. Pure.

The controller takes every pod the Service's selector picks that has an address, ready or not,
terminating or not, with its conditions as the controller sets them: `serving` is the pod's
readiness, `terminating` its deletion, `ready` serving and not terminating (always true with
publishNotReadyAddresses). Endpoints whose ports resolve alike share slices of at most 100
(--max-endpoints-per-slice). A Service without a selector gets no slices from it: its slices
come from manifests (kemu/scenario/manifests/endpoints.py).
"""

from __future__ import annotations

import hashlib
import ipaddress
from collections.abc import Iterable

from kemu.k8s.endpoints import Endpoint
from kemu.k8s.store import EndpointMap, PodStatus
from kemu.scenario.objects import EndpointSlice, Service, SliceEndpoint, matches

MAX_ENDPOINTS = 100
_NAME_CHARS = "bcdfghjklmnpqrstvwxz2456789"  # generateName's alphabet (no vowels, no 0/1/3)


def controller_slices(service: Service, pods: Iterable[PodStatus],
                      zones: dict[str, str] | None = None) -> list[EndpointSlice]:
    """The slices the controller keeps for `service`. `zones`: node → its zone label."""
    if not service.selector or service.type == "ExternalName":
        return []
    zones = zones or {}
    groups: dict[tuple[tuple[str, int, str], ...], list[SliceEndpoint]] = {}
    for pod in pods:
        if not pod.ip or pod.spec.namespace != service.namespace or \
                not matches(service.selector, pod.spec.labels):
            continue
        ports = tuple((p.name, number, p.protocol) for p in service.ports
                      if (number := pod.spec.port_number(p.target_port, p.protocol)) is not None)
        ready = service.publish_not_ready or (pod.ready and not pod.terminating)
        groups.setdefault(ports, []).append(SliceEndpoint(
            pod.ip, ready, pod.ready, pod.terminating, pod.node, zones.get(pod.node, ""),
            pod.spec.key))
    out = []
    for ports, endpoints in sorted(groups.items()):
        endpoints.sort(key=lambda e: ipaddress.IPv4Address(e.ip))
        for start in range(0, len(endpoints), MAX_ENDPOINTS):
            out.append(EndpointSlice(_name(service, ports, start), service.namespace,
                                     service.name, ports,
                                     tuple(endpoints[start:start + MAX_ENDPOINTS])))
    return out


def _name(service: Service, ports: tuple[tuple[str, int, str], ...], start: int) -> str:
    """`<service>-<5 characters>`, as generateName makes it, but the same every run."""
    digest = hashlib.sha256(f"{service.key}{ports}{start}".encode()).digest()
    return f"{service.name}-" + "".join(_NAME_CHARS[b % len(_NAME_CHARS)] for b in digest[:5])


def endpoint_map(services: Iterable[Service], slices: Iterable[EndpointSlice]) -> EndpointMap:
    """(service key, port name) → the port's endpoints, from the Service's slices: a slice
    port serves the Service port of the same name and protocol."""
    by_service: dict[str, list[EndpointSlice]] = {}
    for s in slices:
        by_service.setdefault(f"{s.namespace}/{s.service}", []).append(s)
    out: EndpointMap = {}
    for svc in services:
        for port in svc.ports:
            eps = [Endpoint(e.pod, e.ip, e.node, number, e.ready, e.serving, e.terminating,
                            e.zone)
                   for s in by_service.get(svc.key, [])
                   for name, number, protocol in s.ports
                   if name == port.name and protocol == port.protocol
                   for e in s.endpoints]
            out[(svc.key, port.name)] = sorted(eps, key=lambda e: ipaddress.IPv4Address(e.ip))
    return out
