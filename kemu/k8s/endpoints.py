"""A Service port's endpoint, as the readers of EndpointSlices see it (endpointslices.py
makes them). (A Service's endpoints, not a measurement's ends: see kemu/scenario/model.py.)"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Endpoint:
    """One endpoint of a Service port, with its EndpointSlice conditions: `ready` — may take
    new connections; `serving` — answering, terminating or not; `terminating` — being
    deleted."""

    pod: str  # namespace/name ("" for an address that is not a pod's)
    ip: str
    node: str
    port: int  # the target port on the pod
    ready: bool = True
    serving: bool = True
    terminating: bool = False
    zone: str = ""

    def __str__(self) -> str:
        """"IP:port", as kube-proxy names an endpoint (its chains hash this)."""
        return f"{self.ip}:{self.port}"


def ready(endpoints: list[Endpoint]) -> list[Endpoint]:
    """Those that take new connections: what DNS, the ingress controller and the load
    balancer use."""
    return [ep for ep in endpoints if ep.ready]
