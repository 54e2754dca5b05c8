"""kube-proxy of one node: from the view, its Service rules (rendered as kube-proxy's proxier
for the mode renders them: iptables.py) to the node's chains; then, as kube-proxy does after
each sync, stale UDP conntrack entries deleted (conntrack.py) and its health answers updated
(health.py: its health server and the Local Services' health check node ports).

When it syncs is kube-proxy's runner's rule (pkg/util/async, BoundedFrequencyRunner, as the
iptables proxier sets it up): a token bucket of 2 syncs refilled at one per minSyncPeriod — two
changes in quick succession are written at once, a third waits for a token, and the changes
in between are written together. Every syncPeriod kube-proxy checks that its rules are still
there (its canary chain) and writes them if not; kemu writes them then, which changes nothing
unless they were lost.

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


class SyncRunner:
    """kube-proxy's sync pacing: `due(now)` when a change waits, `ran(now)` after a sync.
    Times in seconds (monotonic)."""

    BURST = 2  # the iptables proxier's burstSyncs

    def __init__(self, min_period_s: float, period_s: float):
        self.min_period_s, self.period_s = min_period_s, period_s
        self.tokens = float(self.BURST)
        self.refilled: float | None = None  # when the tokens were last counted
        self.last: float | None = None  # when the last sync ran

    def _refill(self, now: float) -> None:
        if self.refilled is not None and self.min_period_s > 0:
            gained = (now - self.refilled) / self.min_period_s
            self.tokens = min(float(self.BURST), self.tokens + gained)
        self.refilled = now

    def due(self, now: float, pending: bool) -> bool:
        """Whether to sync now: a change waits and a token is there, or syncPeriod passed."""
        self._refill(now)
        if pending:
            return self.min_period_s <= 0 or self.tokens >= 1
        return self.last is not None and now - self.last >= self.period_s

    def ran(self, now: float) -> None:
        self._refill(now)
        self.tokens = max(0.0, self.tokens - 1)
        self.last = now


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
        self.runner = SyncRunner(min_sync_period_s, sync_period_s)
        self.lock = threading.Lock()
        self.latest: View | None = None  # the view to write
        self.written: View | None = None  # the view last written
        # kube-proxy's server makes the health timeout twice the sync period.
        self.health = health.ProxierHealth(2 * sync_period_s)
        self.endpoints: dict[tuple[str, str], list[Endpoint]] = {}  # as last written
        self.services: list[Service] = []
        self.local: dict[str, int] = {}  # service key → ready endpoints on this node
        self.health_ports: dict[int, Service] = {}

    def sync(self, view: View) -> None:
        """A change seen: written now, or when the runner allows (flush)."""
        with self.lock:
            self.latest = view
            if self._pending():  # a pod's or a policy's own change leaves its health alone
                self.health.queued(time.time())
        self.flush()

    def due(self) -> bool:
        """Whether flush() would write now."""
        with self.lock:
            return self.latest is not None and \
                self.runner.due(time.monotonic(), self._pending())

    def flush(self) -> None:
        """Write the latest view if it is due (see the module's docstring)."""
        with self.lock:
            if self.latest is None:
                return
            if not self.runner.due(time.monotonic(), self._pending()):
                return
            self.runner.ran(time.monotonic())
            self._write(self.latest)
            self.written = self.latest

    def _pending(self) -> bool:
        """A change kube-proxy watches (Services, EndpointSlices) not yet written: a policy's
        or a pod's own change is none of its business."""
        latest, written = self.latest, self.written
        return latest is not None and (written is None or latest.services != written.services
                                       or latest.endpoints != written.endpoints)

    def _write(self, view: View) -> None:
        self.rules.sync(iptables.render(self.node, self.node_ip, self.cluster_cidr,
                                        view.services, view.endpoints, self.zone))
        self.health.updated(time.time())
        if self.conntrack:
            self.conntrack.delete(stale_entries(view.services, self.endpoints, view.endpoints,
                                                self.services))
        self.endpoints, self.services = view.endpoints, view.services
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
