"""The world outside the cluster, as a scenario describes it: external hosts, the cloud load
balancer's preset and health check, and the VIPs it hands LoadBalancer Services. Pure."""

from __future__ import annotations

import ipaddress
from dataclasses import dataclass, field, replace
from typing import Any

from kemu.objects import Service

DEFAULT_CIDR = "192.168.100.0/24"

# What users meet in practice (shared/reference/published-cni-figures.csv):
#   gce        nodeport mode; Cluster: every 8 s, 3 failures (≈24 s); Local: every 3 s, 2 (≈6 s)
#   aws-nlb    nodeport mode; every 30 s, 2 failures; with no healthy target it fails open
#   metallb-l2 one node answers ARP for the VIP; failover by gratuitous ARP in a few seconds
PRESETS: dict[str, dict[str, Any]] = {
    "gce": {"mode": "nodeport",
            "Cluster": {"interval": 8, "timeout": 1, "healthy_threshold": 1,
                        "unhealthy_threshold": 3, "fail_open": False},
            "Local": {"interval": 3, "timeout": 1, "healthy_threshold": 1,
                      "unhealthy_threshold": 2, "fail_open": False}},
    "aws-nlb": {"mode": "nodeport",
                "Cluster": {"interval": 30, "timeout": 10, "healthy_threshold": 5,
                            "unhealthy_threshold": 2, "fail_open": True}},
    "metallb-l2": {"mode": "l2",
                   "Cluster": {"interval": 1, "timeout": 1, "healthy_threshold": 1,
                               "unhealthy_threshold": 3, "fail_open": False}},
    "custom": {"mode": "nodeport",
               "Cluster": {"interval": 1, "timeout": 0.5, "healthy_threshold": 1,
                           "unhealthy_threshold": 2, "fail_open": False}},
}
HEALTH_KEYS = {"interval": "interval", "timeout": "timeout",
               "healthyThreshold": "healthy_threshold",
               "unhealthyThreshold": "unhealthy_threshold", "failOpen": "fail_open"}


@dataclass(frozen=True)
class ExternalHostSpec:
    name: str
    argv: tuple[str, ...] = ()  # what runs on it (an image's command, or `command`)
    port: int = 0


@dataclass(frozen=True)
class LoadBalancerSpec:
    preset: str = "custom"
    pool: ipaddress.IPv4Network = ipaddress.IPv4Network("192.168.100.192/27")
    overrides: dict[str, Any] = field(default_factory=dict)

    @property
    def mode(self) -> str:
        return str(PRESETS[self.preset]["mode"])

    def health(self, traffic_policy: str) -> dict[str, Any]:
        preset = PRESETS[self.preset]
        return {**preset.get(traffic_policy, preset["Cluster"]), **self.overrides}


@dataclass(frozen=True)
class ExternalSpec:
    cidr: ipaddress.IPv4Network
    hosts: tuple[ExternalHostSpec, ...]
    load_balancer: LoadBalancerSpec

    def host_addresses(self) -> dict[str, str]:
        """External hosts from .10 up (.1 is the load balancer's health checker)."""
        return {h.name: str(self.cidr.network_address + 10 + i) for i, h in enumerate(self.hosts)}

    @property
    def checker_ip(self) -> str:
        return str(self.cidr.network_address + 1)


def allocate_vips(services: list[Service], pool: ipaddress.IPv4Network,
                  taken: set[str]) -> tuple[list[Service], list[tuple[str, str]]]:
    """Give each LoadBalancer service its external IP: spec.loadBalancerIP if set, else the
    next free pool address (what the cloud's controller does). Returns (service, problem)s."""
    problems = []
    used = set(taken)
    for svc in services:
        if svc.type == "LoadBalancer" and svc.load_balancer_ip:
            if svc.load_balancer_ip in used:
                problems.append((svc.key, f"spec.loadBalancerIP {svc.load_balancer_ip} is "
                                          f"already taken"))
            used.add(svc.load_balancer_ip)
    free = (str(ip) for ip in pool.hosts() if str(ip) not in used)
    out = []
    for svc in services:
        if svc.type == "LoadBalancer" and not svc.load_balancer_ip:
            address = next(free, None)
            if address is None:
                problems.append((svc.key, f"the load balancer pool {pool} is exhausted"))
            else:
                svc = replace(svc, load_balancer_ip=address)
        out.append(svc)
    return out, problems
