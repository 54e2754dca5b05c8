"""The UDP conntrack entries kube-proxy deletes after a sync (kubernetes
pkg/proxy/conntrack/cleanup.go; the filters of its `conntrack` tool era, conntrack.go). Pure.

UDP has no connection to end: a client sending from a fixed source port keeps its conntrack
entry, and with it the endpoint it was first NATed to, for as long as it keeps sending. So:
- an endpoint a UDP service port no longer uses loses its entries, for each address the port
  is reached at (`--orig-dst <address> --dst-nat <endpoint>`) and its node port
  (`--dport <node port> --dst-nat <endpoint>`);
- a UDP service port that gets its first endpoint loses the entries of the time it had none
  (they would hold the client to a rejection): `--orig-dst <address>`, `--dport <node port>`.
"""

from __future__ import annotations

from kemu.k8s.endpoints import Endpoint
from kemu.scenario.objects import Service

Endpoints = dict[tuple[str, str], list[Endpoint]]


def _serving(endpoints: Endpoints, key: tuple[str, str]) -> set[str]:
    return {ep.ip for ep in endpoints.get(key, []) if ep.serving}


def stale_entries(services: list[Service], before: Endpoints, after: Endpoints) -> list[list[str]]:
    """`conntrack -D` filters (argv after -D) for the entries to delete when the endpoints
    went from `before` to `after`."""
    filters = []
    for svc in services:
        if svc.type == "ExternalName" or svc.cluster_ip in ("", "None"):
            continue
        addresses = [svc.cluster_ip, *svc.external_ips,
                     *([svc.load_balancer_ip] if svc.load_balancer_ip else [])]
        for port in svc.ports:
            if port.protocol != "UDP":
                continue
            old, new = _serving(before, (svc.key, port.name)), _serving(after, (svc.key, port.name))
            for ip in sorted(old - new):
                filters += [["-p", "udp", "--orig-dst", address, "--dst-nat", ip]
                            for address in addresses]
                if port.node_port:
                    filters.append(["-p", "udp", "--dport", str(port.node_port), "--dst-nat", ip])
            if new and not old:
                filters += [["-p", "udp", "--orig-dst", address] for address in addresses]
                if port.node_port:
                    filters.append(["-p", "udp", "--dport", str(port.node_port)])
    return filters
