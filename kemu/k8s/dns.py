"""Cluster DNS records, as CoreDNS's kubernetes plugin answers them. Pure.

  <svc>.<ns>.svc.<domain>                A     ClusterIP; for a headless service every ready
                                               endpoint's pod IP
  <a-b-c-d>.<svc>.<ns>.svc.<domain>      A     each endpoint of a headless service
  _<port>._<proto>.<svc>.<ns>.svc.<dom>  SRV   named ports: (0, weight, port, target)
  <svc>.<ns>.svc.<domain>                CNAME an ExternalName service's externalName
  <a-b-c-d>.<ns>.pod.<domain>            A     every pod
Anything else under <domain> is NXDOMAIN (or NODATA for a name that exists with other types).
"""

from __future__ import annotations

import json
from collections import defaultdict
from collections.abc import Callable
from typing import Any

from kemu.k8s.controllers import View
from kemu.k8s.endpoints import Endpoint, ready
from kemu.k8s.store import PodStatus
from kemu.scenario.objects import Service

DEFAULT_DOMAIN = "cluster.local"


def dashed(ip: str) -> str:
    return ip.replace(".", "-")


def records(services: list[Service], endpoints: dict[tuple[str, str], list[Endpoint]],
            pods: list[PodStatus], domain: str = DEFAULT_DOMAIN) -> dict[str, Any]:
    a: dict[str, list[str]] = defaultdict(list)
    srv: dict[str, list[list[Any]]] = defaultdict(list)
    cname: dict[str, str] = {}
    for svc in services:
        base = f"{svc.name}.{svc.namespace}.svc.{domain}."
        if svc.type == "ExternalName":
            cname[base] = svc.external_name.rstrip(".") + "."
            continue
        # CoreDNS answers with the ready endpoints (publishNotReadyAddresses makes all so).
        ready_ips = {ep.ip for port in svc.ports
                     for ep in ready(endpoints.get((svc.key, port.name), []))}
        if svc.headless:
            for ip in sorted(ready_ips):
                a[base].append(ip)
                a[f"{dashed(ip)}.{base}"].append(ip)
        else:
            a[base].append(svc.cluster_ip)
        for port in svc.ports:
            if not port.name:
                continue
            name = f"_{port.name}._{port.protocol.lower()}.{base}"
            if svc.headless:
                eps = ready(endpoints.get((svc.key, port.name), []))
                weight = 100 // max(1, len(eps))
                srv[name] += [[0, weight, ep.port, f"{dashed(ep.ip)}.{base}"] for ep in eps]
            else:
                srv[name].append([0, 100, port.port, base])
    for pod in pods:
        if pod.ip:
            a[f"{dashed(pod.ip)}.{pod.spec.namespace}.pod.{domain}."].append(pod.ip)
    return {"domain": domain + ".", "A": dict(a), "SRV": dict(srv), "CNAME": cname}


class DNSRecords:
    """The cluster DNS's records from the view, as JSON to `write` (the server's file)."""

    def __init__(self, domain: str, write: Callable[[str], None]):
        self.domain, self.write = domain, write

    def sync(self, view: View) -> None:
        self.write(json.dumps(records(view.services, view.endpoints, view.pods, self.domain),
                              indent=1, sort_keys=True))
