"""Cluster DNS records, as CoreDNS's kubernetes plugin answers them (coredns/coredns
plugin/kubernetes; the Kubernetes DNS specification). Pure.

  <svc>.<ns>.svc.<domain>                A     ClusterIP; for a headless service every ready
                                               endpoint's pod IP
  <ep>.<svc>.<ns>.svc.<domain>           A     each ready endpoint of a headless service, <ep>
                                               its pod's hostname when the pod's subdomain is
                                               the service (the EndpointSlice's hostname), else
                                               the dashed IP (a-b-c-d)
  _<port>._<proto>.<svc>.<ns>.svc.<dom>  SRV   named ports: (0, weight, port, target)
  <svc>.<ns>.svc.<domain>                CNAME an ExternalName service's externalName
  <d.c.b.a>.in-addr.arpa                 PTR   a ClusterIP → its service; a ready endpoint's
                                               IP → its endpoint name (services first)
`<a-b-c-d>.<ns>.pod.<domain>` (`pods insecure`) is answered by the server from the name for
any namespace in `namespaces`. Anything else under <domain> is NXDOMAIN (or NODATA for a name
that exists with other types).
"""

from __future__ import annotations

import ipaddress
import json
from collections import defaultdict
from collections.abc import Callable
from typing import Any

from kemu.k8s.controllers import View
from kemu.k8s.endpoints import Endpoint, ready
from kemu.k8s.store import PodStatus
from kemu.scenario.model import DNSConfig
from kemu.scenario.objects import Service

DEFAULT_DOMAIN = "cluster.local"


def dashed(ip: str) -> str:
    return ip.replace(".", "-")


def reverse(ip: str) -> str:
    return ipaddress.ip_address(ip).reverse_pointer + "."


def records(services: list[Service], endpoints: dict[tuple[str, str], list[Endpoint]],
            pods: list[PodStatus], domain: str = DEFAULT_DOMAIN,
            namespaces: list[str] | None = None) -> dict[str, Any]:
    a: dict[str, list[str]] = defaultdict(list)
    srv: dict[str, list[list[Any]]] = defaultdict(list)
    cname: dict[str, str] = {}
    ptr: dict[str, str] = {}
    by_key = {pod.spec.key: pod for pod in pods}

    def endpoint_name(svc: Service, ep: Endpoint) -> str:
        """The endpoint controller sets an endpoint's hostname from its pod's when the pod's
        subdomain names the service (pkg/controller/endpointslice utils)."""
        pod = by_key.get(ep.pod)
        if pod and pod.spec.hostname and pod.spec.subdomain == svc.name \
                and pod.spec.namespace == svc.namespace:
            return pod.spec.hostname
        return dashed(ep.ip)

    endpoint_ptrs: dict[str, str] = {}
    for svc in sorted(services, key=lambda s: s.key):
        base = f"{svc.name}.{svc.namespace}.svc.{domain}."
        if svc.type == "ExternalName":
            cname[base] = svc.external_name.rstrip(".") + "."
            continue
        # CoreDNS answers with the ready endpoints (publishNotReadyAddresses makes all so).
        eps = {ep.ip: ep for port in svc.ports
               for ep in ready(endpoints.get((svc.key, port.name), []))}
        for ip, ep in sorted(eps.items()):
            endpoint_ptrs.setdefault(reverse(ip), f"{endpoint_name(svc, ep)}.{base}")
        if svc.headless:
            for ip, ep in sorted(eps.items()):
                a[base].append(ip)
                a[f"{endpoint_name(svc, ep)}.{base}"].append(ip)
        else:
            a[base].append(svc.cluster_ip)
            ptr[reverse(svc.cluster_ip)] = base
        for port in svc.ports:
            if not port.name:
                continue
            name = f"_{port.name}._{port.protocol.lower()}.{base}"
            if svc.headless:
                port_eps = ready(endpoints.get((svc.key, port.name), []))
                weight = 100 // max(1, len(port_eps))
                srv[name] += [[0, weight, ep.port, f"{endpoint_name(svc, ep)}.{base}"]
                              for ep in port_eps]
            else:
                srv[name].append([0, 100, port.port, base])
    ptr = {**endpoint_ptrs, **ptr}  # a ClusterIP's own name wins
    known = set(namespaces or ()) | {s.namespace for s in services} | \
        {p.spec.namespace for p in pods}
    return {"domain": domain + ".", "namespaces": sorted(known), "A": dict(a),
            "SRV": dict(srv), "CNAME": cname, "PTR": dict(sorted(ptr.items()))}


class DNSRecords:
    """The cluster DNS's records from the view, as JSON to `write` (the server's file), with
    the Corefile settings the server follows (ttl, cache)."""

    def __init__(self, config: DNSConfig, write: Callable[[str], None]):
        self.config, self.write = config, write

    def sync(self, view: View) -> None:
        data = records(view.services, view.endpoints, view.pods, self.config.domain,
                       list(view.namespaces))
        data |= {"ttl": self.config.ttl, "cache": self.config.cache}
        self.write(json.dumps(data, indent=1, sort_keys=True))
