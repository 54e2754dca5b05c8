"""The UDP conntrack entries kube-proxy deletes after a sync (kubernetes
pkg/proxy/conntrack/cleanup.go; the filters of its `conntrack` tool era, conntrack.go). Pure.

UDP has no connection to end: a client sending from a fixed source port keeps its conntrack
entry, and with it the endpoint it was first NATed to, for as long as it keeps sending. So:
- an endpoint a UDP service port no longer uses loses its entries, for each address the port
  is reached at (`--orig-dst <address> --dst-nat <endpoint>`) and its node port
  (`--dport <node port> --dst-nat <endpoint>`);
- a UDP service port that gets its first endpoint loses the entries of the time it had none
  (they would hold the client to a rejection): `--orig-dst <address>`, `--dport <node port>`;
- a UDP Service that is deleted loses the entries to its ClusterIP.
"""

from __future__ import annotations

from kemu.k8s.endpoints import Endpoint
from kemu.scenario.objects import Service

Endpoints = dict[tuple[str, str], list[Endpoint]]


def _serving(endpoints: Endpoints, key: tuple[str, str]) -> dict[str, str]:
    """"IP:port" → IP of the port's serving endpoints (kube-proxy compares endpoints whole)."""
    return {str(ep): ep.ip for ep in endpoints.get(key, []) if ep.serving}


def _proxied(svc: Service) -> bool:
    return svc.type != "ExternalName" and svc.cluster_ip not in ("", "None")


def stale_entries(services: list[Service], before: Endpoints, after: Endpoints,
                  services_before: list[Service] | None = None) -> list[list[str]]:
    """`conntrack -D` filters (argv after -D) for the entries to delete when the Services went
    from `services_before` to `services` and their endpoints from `before` to `after`."""
    filters = []
    now = {svc.key for svc in services}
    for svc in services_before or []:
        if svc.key not in now and _proxied(svc) and any(p.protocol == "UDP" for p in svc.ports):
            filters.append(["-p", "udp", "--orig-dst", svc.cluster_ip])
    for svc in services:
        if not _proxied(svc):
            continue
        addresses = [svc.cluster_ip, *svc.external_ips,
                     *([svc.load_balancer_ip] if svc.load_balancer_ip else [])]
        for port in svc.ports:
            if port.protocol != "UDP":
                continue
            old, new = _serving(before, (svc.key, port.name)), _serving(after, (svc.key, port.name))
            for ip in sorted({old[ep] for ep in old.keys() - new.keys()}):
                filters += [["-p", "udp", "--orig-dst", address, "--dst-nat", ip]
                            for address in addresses]
                if port.node_port:
                    filters.append(["-p", "udp", "--dport", str(port.node_port), "--dst-nat", ip])
            if new and not old:
                filters += [["-p", "udp", "--orig-dst", address] for address in addresses]
                if port.node_port:
                    filters.append(["-p", "udp", "--dport", str(port.node_port)])
    return filters
