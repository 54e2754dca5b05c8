"""What the cloud's controller tells its load balancer (the app reads it as lb.json), and the
readiness gate GKE's webhook gives the pods of container-native load balancers. Pure."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import replace
from typing import Any

from kemu.k8s.kube_proxy.health import HEALTHZ_PORT
from kemu.k8s.store import PodStatus
from kemu.scenario.model import NEG_READINESS_GATE, ExternalSpec
from kemu.scenario.objects import PodSpec, Service, ServicePort, matches

Node = tuple[str, str, str]  # name, underlay IP, MAC


def lb_config(external: ExternalSpec, services: list[Service], nodes: list[Node],
              pods: Iterable[PodStatus] = ()) -> dict[str, Any]:
    """Per LoadBalancer Service port (TCP or UDP): its VIP, its backends with the port each is
    checked on, and the health check of the preset for the Service's traffic policy; and the
    health checker's address and the outside network. Backends are every node on the port's
    node port, or — container-native (mode `pods`) — the selected pods whose containers are
    ready, on their target port (a network endpoint group holds pods that are not Ready yet
    only for their readiness gate)."""
    lb = external.load_balancer
    pods = list(pods)
    entries = []
    for svc in services:
        if svc.type != "LoadBalancer" or not svc.load_balancer_ip:
            continue
        health = lb.health(svc.external_traffic_policy)
        for port in svc.ports:
            if port.protocol not in ("TCP", "UDP"):
                continue  # SCTP: not balanced
            if lb.mode == "bgp":
                backends = []  # routed by the BGP router, not by the switch (bgp.py)
            elif lb.mode == "pods":
                backends = _pod_backends(svc, port, health, nodes, pods)
            else:
                checked = {"traffic": port.node_port, "healthz": HEALTHZ_PORT,
                           "health-check-node-port": svc.health_check_node_port}[health["port"]]
                backends = [{"node": name, "ip": ip, "mac": mac, "port": port.node_port,
                             "check_port": checked} for name, ip, mac in nodes]
            entries.append({
                "service": svc.key, "ip": svc.load_balancer_ip, "port": port.port,
                "protocol": port.protocol, "mode": lb.mode, "health": health,
                "backends": backends,
            })
    return {"checker": {"ip": external.checker_ip}, "network": str(external.cidr),
            "vips": entries}


def _pod_backends(svc: Service, port: ServicePort, health: dict[str, Any], nodes: list[Node],
                  pods: list[PodStatus]) -> list[dict[str, Any]]:
    """A network endpoint group's endpoints: pod IP and target port, reached through the
    pod's node, checked on that port (USE_SERVING_PORT) at the path of the pod's HTTP
    readiness probe on it, else `/` (ingress-gce's health check defaults)."""
    macs = {name: mac for name, _, mac in nodes}
    backends = []
    for pod in sorted(pods, key=lambda p: p.spec.key):
        number = pod.spec.port_number(port.target_port, port.protocol)
        if not pod.ip or pod.terminating or not pod.containers_ready or number is None or \
                pod.node not in macs or pod.spec.namespace != svc.namespace or \
                not svc.selector or not matches(svc.selector, pod.spec.labels):
            continue
        backend = {"node": pod.node, "pod": pod.spec.key, "ip": pod.ip, "mac": macs[pod.node],
                   "port": number, "check_port": number,
                   "path": health["path"] or _probe_path(pod.spec, number)}
        if "https" in (port.name, port.target_port) or number == 443:
            backend["check"] = "tcp"  # a TLS port: a connection stands in for an HTTPS check
        backends.append(backend)
    return backends


def _probe_path(spec: PodSpec, number: int) -> str:
    for container in spec.containers:
        probe = container.readiness
        if probe and probe.kind == "httpGet" and spec.port_number(probe.port) == number:
            return probe.path
    return "/"


def with_neg_gate(spec: PodSpec, services: list[Service], external: ExternalSpec | None) -> PodSpec:
    """The pod as GKE's webhook admits it: with the network endpoint group's readiness gate
    when a container-native LoadBalancer Service with a VIP and a TCP port selects it (the
    load balancer checks pods over TCP, so a UDP-only one could never pass the gate)."""
    if external is None or external.load_balancer.mode != "pods" or \
            NEG_READINESS_GATE in spec.readiness_gates:
        return spec
    if any(svc.type == "LoadBalancer" and svc.load_balancer_ip and svc.namespace == spec.namespace
           and svc.selector and matches(svc.selector, spec.labels)
           and any(p.protocol == "TCP" for p in svc.ports) for svc in services):
        return replace(spec, readiness_gates=(*spec.readiness_gates, NEG_READINESS_GATE))
    return spec
