"""kube-proxy's health answers (kubernetes pkg/proxy/healthcheck/): what its health server
(:10256, /healthz and /livez) and the health check node port of each Local LoadBalancer
Service answer, as (status, headers, body). Pure; kemu/cluster/kube_proxy.py serves them.

- /healthz and /livez: 200 while kube-proxy keeps up — no change waits longer than the
  health timeout (2 × syncPeriod, as kube-proxy's server sets it) to reach the rules — else
  503; the body gives the last update and the current time (`lastUpdated` is the current
  time while healthy, as kube-proxy reports it) and, for /healthz, whether the node is
  eligible (not being deleted).
- a health check node port: 200 when this node has ready endpoints of the Service, else 503,
  with their count (distinct addresses, over all the Service's ports).
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import UTC, datetime

from kemu.k8s.endpoints import Endpoint

HEALTHZ_PORT = 10256  # kube-proxy's healthzBindAddress default (0.0.0.0:10256)
Answer = tuple[int, dict[str, str], str]
_JSON = {"Content-Type": "application/json", "X-Content-Type-Options": "nosniff"}


@dataclass
class ProxierHealth:
    """Whether the proxier keeps up. Times are wall-clock seconds (time.time())."""

    timeout_s: float
    last_updated: float | None = None
    oldest_pending: float | None = None

    def queued(self, now: float) -> None:
        """A change came in that the rules do not have yet."""
        if self.oldest_pending is None:
            self.oldest_pending = now

    def updated(self, now: float) -> None:
        """The rules now have every change."""
        self.oldest_pending, self.last_updated = None, now

    def healthy(self, now: float) -> bool:
        return self.oldest_pending is None or now - self.oldest_pending < self.timeout_s


def go_time(t: float | None) -> str:
    """A time as Go prints a time.Time (the zero time when there is none)."""
    if t is None:
        return "0001-01-01 00:00:00 +0000 UTC"
    stamp = datetime.fromtimestamp(t, UTC)
    fraction = f"{t % 1:.9f}"[1:].rstrip("0").rstrip(".")
    return stamp.strftime("%Y-%m-%d %H:%M:%S") + fraction + " +0000 UTC"


def proxier(path: str, health: ProxierHealth, now: float, node_eligible: bool = True) -> Answer:
    """The answer of kube-proxy's health server to GET `path`."""
    if path not in ("/healthz", "/livez"):
        return 404, {"Content-Type": "text/plain; charset=utf-8"}, "404 page not found\n"
    healthy = health.healthy(now)
    if path == "/healthz":
        healthy = healthy and node_eligible
    last = now if healthy else health.last_updated
    body = f'{{"lastUpdated": {json.dumps(go_time(last))},"currentTime": ' \
           f'{json.dumps(go_time(now))}'
    body += f', "nodeEligible": {str(node_eligible).lower()}}}' if path == "/healthz" else "}"
    return (200 if healthy else 503), dict(_JSON), body


def service(namespace: str, name: str, local_endpoints: int, proxy_healthy: bool) -> Answer:
    """The answer of a Service's health check node port (to any path)."""
    body = "\n".join([
        "{", '\t"service": {', f'\t\t"namespace": {json.dumps(namespace)},',
        f'\t\t"name": {json.dumps(name)}', "\t},", f'\t"localEndpoints": {local_endpoints},',
        f'\t"serviceProxyHealthy": {str(proxy_healthy).lower()}', "}"])
    headers = {**_JSON, "X-Load-Balancing-Endpoint-Weight": str(local_endpoints)}
    return (200 if local_endpoints and proxy_healthy else 503), headers, body


def local_ready(endpoints: dict[tuple[str, str], list[Endpoint]], node: str) -> dict[str, int]:
    """Service key → how many ready endpoints (addresses) it has on `node`."""
    found: dict[str, set[str]] = {}
    for (key, _), eps in endpoints.items():
        for ep in eps:
            if ep.ready and ep.node == node:
                found.setdefault(key, set()).add(ep.ip)
    return {key: len(eps) for key, eps in found.items()}
