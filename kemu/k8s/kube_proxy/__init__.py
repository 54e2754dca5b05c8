"""kube-proxy of one node: from the view, its Service rules (rendered as kube-proxy's proxier
for the mode renders them: iptables.py) to the node's chains; then, as kube-proxy does after
each sync, stale UDP conntrack entries deleted (conntrack.py) and its health answers updated
(health.py: its health server and the Local Services' health check node ports).

When it syncs is kube-proxy's runner's rule: a change is written at once if the last sync
ended at least minSyncPeriod ago, else as soon as that much time has passed (changes in
between are written together); and everything is written again every syncPeriod.

The kernel side is handed in: a RuleSink for the chains, a ConntrackSink, a HealthSink that
serves the answers in the node (kemu/cluster/kube_proxy.py makes all three).
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from functools import partial
from typing import Protocol

from kemu.k8s.controllers import RuleSink, View
from kemu.k8s.endpoints import Endpoint
from kemu.k8s.kube_proxy import health, iptables
from kemu.k8s.kube_proxy.conntrack import stale_entries
from kemu.k8s.kube_proxy.topology import external_policy_local
from kemu.scenario.objects import Service

SYNC_PERIOD_S = 30.0  # kube-proxy's --iptables-sync-period default
MIN_SYNC_PERIOD_S = 1.0  # kube-proxy's --iptables-min-sync-period default
Handler = Callable[[str], health.Answer]  # the answer to GET path


def sync_due(pending: bool, idle: float | None, min_period_s: float,
             period_s: float) -> bool:
    """Whether kube-proxy's runner syncs now: `idle` seconds since the last sync ended
    (None: never synced), `pending` a change not yet written."""
    return idle is None or pending and idle >= min_period_s or idle >= period_s


class ConntrackSink(Protocol):
    def delete(self, filters: list[list[str]]) -> None: ...


class HealthSink(Protocol):
    def serve(self, handlers: dict[int, Handler]) -> None:
        """Listen on exactly these TCP ports of the node, each answered by its handler."""


class KubeProxy:
    def __init__(self, node: str, node_ip: str, cluster_cidr: str, rules: RuleSink,
                 conntrack: ConntrackSink | None = None, server: HealthSink | None = None,
                 sync_period_s: float = SYNC_PERIOD_S,
                 min_sync_period_s: float = MIN_SYNC_PERIOD_S, zone: str = ""):
        self.node, self.node_ip, self.cluster_cidr, self.zone = node, node_ip, cluster_cidr, zone
        self.rules, self.conntrack, self.server = rules, conntrack, server
        self.sync_period_s, self.min_sync_period_s = sync_period_s, min_sync_period_s
        self.lock = threading.Lock()
        self.latest: View | None = None  # the view to write
        self.written: View | None = None  # the view last written
        self.last_end: float | None = None  # when the last sync ended (monotonic)
        self.syncs = 0
        # kube-proxy's server makes the health timeout twice the sync period.
        self.health = health.ProxierHealth(2 * sync_period_s)
        self.endpoints: dict[tuple[str, str], list[Endpoint]] = {}
        self.local: dict[str, int] = {}  # service key → ready endpoints on this node
        self.health_ports: dict[int, Service] = {}

    def sync(self, view: View) -> None:
        """A change seen: written now, or when the runner allows (flush)."""
        with self.lock:
            self.latest = view
            self.health.queued(time.time())
        self.flush()

    def flush(self) -> None:
        """Write the latest view if it is due (see the module's docstring)."""
        with self.lock:
            if self.latest is None:
                return
            idle = None if self.last_end is None else time.monotonic() - self.last_end
            if not sync_due(self.latest is not self.written, idle, self.min_sync_period_s,
                            self.sync_period_s):
                return
            self._write(self.latest)
            self.written, self.last_end = self.latest, time.monotonic()
            self.syncs += 1

    def _write(self, view: View) -> None:
        self.rules.sync(iptables.render(self.node, self.node_ip, self.cluster_cidr,
                                        view.services, view.endpoints, self.zone))
        self.health.updated(time.time())
        if self.conntrack:
            self.conntrack.delete(stale_entries(view.services, self.endpoints, view.endpoints))
        self.endpoints = view.endpoints
        self.local = health.local_ready(view.endpoints, self.node)
        self.health_ports = {svc.health_check_node_port: svc for svc in view.services
                             if svc.health_check_node_port and
                             any(external_policy_local(svc, p) for p in svc.ports)}
        if self.server:
            self.server.serve({health.HEALTHZ_PORT: self.answer_healthz,
                               **{port: partial(self.answer_service, svc)
                                  for port, svc in self.health_ports.items()}})

    def stop(self) -> None:
        """Its health servers closed."""
        if self.server:
            self.server.serve({})

    def answer_healthz(self, path: str) -> health.Answer:
        return health.proxier(path, self.health, time.time())

    def answer_service(self, svc: Service, path: str) -> health.Answer:
        return health.service(svc.namespace, svc.name, self.local.get(svc.key, 0),
                              self.health.healthy(time.time()))
