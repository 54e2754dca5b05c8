"""Endpoints: what the endpoints controller derives from ready pods — for each port of a
Service, the ready pods its selector picks, with the port its targetPort names on each. Pure.
(A Service's endpoints, not a measurement's ends: see kemu/scenario/model.py.)"""

from __future__ import annotations

import ipaddress
from dataclasses import dataclass

from kemu.k8s.store import EndpointMap, PodStatus
from kemu.scenario.objects import Service, ServicePort, matches


@dataclass(frozen=True)
class Endpoint:
    """One address of an EndpointSlice, with its conditions (discovery/v1): `ready` — may take
    new connections; `serving` — answering, terminating or not; `terminating` — being deleted."""

    pod: str  # namespace/name
    ip: str
    node: str
    port: int  # the target port on the pod
    ready: bool = True
    serving: bool = True
    terminating: bool = False

    def __str__(self) -> str:
        """"IP:port", as kube-proxy names an endpoint (its chains hash this)."""
        return f"{self.ip}:{self.port}"


def endpoints(service: Service, port: ServicePort, pods: list[PodStatus]) -> list[Endpoint]:
    """Ready pods selected by the service (every selected pod with publishNotReadyAddresses),
    with the port this service port targets on each (a named targetPort may differ from pod
    to pod; pods without it are left out)."""
    if service.selector is None or service.type == "ExternalName":
        return []
    found = []
    for pod in pods:
        if not (pod.ready or service.publish_not_ready) or \
                pod.spec.namespace != service.namespace or \
                not matches(service.selector, pod.spec.labels) or not service.selector:
            continue
        number = pod.spec.port_number(port.target_port, port.protocol)
        if number is not None:
            found.append(Endpoint(pod.spec.key, pod.ip, pod.node, number))
    return sorted(found, key=lambda e: ipaddress.IPv4Address(e.ip))


def all_endpoints(services: list[Service], pods: list[PodStatus]) -> EndpointMap:
    """(service key, port name) → its endpoints, for every port of every Service."""
    return {(svc.key, port.name): endpoints(svc, port, pods)
            for svc in services for port in svc.ports}
