"""What the cloud's controller tells its load balancer (the app reads it as lb.json). Pure."""

from __future__ import annotations

from typing import Any

from kemu.k8s.kube_proxy.health import HEALTHZ_PORT
from kemu.scenario.model import ExternalSpec
from kemu.scenario.objects import Service


def lb_config(external: ExternalSpec, services: list[Service],
              nodes: list[tuple[str, str, str]]) -> dict[str, Any]:
    """Per LoadBalancer Service port (TCP or UDP): its VIP, every node (name, underlay IP, MAC) as a
    backend on the port's node port with the port its health is checked on, and the health
    check of the preset for the Service's traffic policy; and the health checker's address."""
    lb = external.load_balancer
    entries = []
    for svc in services:
        if svc.type != "LoadBalancer" or not svc.load_balancer_ip:
            continue
        health = lb.health(svc.external_traffic_policy)
        for port in svc.ports:
            if port.protocol not in ("TCP", "UDP"):
                continue  # SCTP: not balanced
            checked = {"traffic": port.node_port, "healthz": HEALTHZ_PORT,
                       "health-check-node-port": svc.health_check_node_port}[health["port"]]
            entries.append({
                "service": svc.key, "ip": svc.load_balancer_ip, "port": port.port,
                "protocol": port.protocol,
                "mode": lb.mode, "health": health,
                "backends": [{"node": name, "ip": ip, "mac": mac, "port": port.node_port,
                              "check_port": checked} for name, ip, mac in nodes],
            })
    return {"checker": {"ip": external.checker_ip}, "vips": entries}
