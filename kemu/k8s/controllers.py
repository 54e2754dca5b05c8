"""The control plane's reactions, as Kubernetes controllers: one reconcile step every tenth of
a second (a thread), from the store (store.py), so a change anywhere propagates the way it
does in a cluster, with a delay that can be measured.

    kubelets' probes → pod readiness; node heartbeats → node readiness (after the grace
    period, as the node lifecycle controller does) → EndpointSlices (the controller's,
    batched if the scenario says so, and the manifests') → each Service port's endpoints
        → per node: kube-proxy's rules (written at kube-proxy's own pace: minSyncPeriod),
          the NetworkPolicy agent's rules
        → for the cluster: DNS records, the ingress controller's configuration

Everything is rendered again when the store's version moved since the last step; the sinks
(a node's chains, a file) apply only what differs.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field, replace
from typing import Protocol, cast, runtime_checkable

from kemu.errors import KemuError
from kemu.k8s.endpointslices import controller_slices, endpoint_map
from kemu.k8s.store import EndpointMap, PodStatus, Store
from kemu.scenario.objects import (
    EndpointSlice,
    Ingress,
    IngressClass,
    Namespace,
    NetworkPolicy,
    Secret,
    Service,
)

INTERVAL_S = 0.1


@dataclass(frozen=True)
class View:
    """The cluster as the controllers see it at one step: a consistent copy of the store,
    with pods on a NotReady node not ready."""

    services: list[Service]
    policies: list[NetworkPolicy]
    namespaces: dict[str, Namespace]
    pods: list[PodStatus]
    endpoints: EndpointMap  # from the slices: what kube-proxy, DNS, ingress and the LB read
    ingresses: list[Ingress] = field(default_factory=list)
    ingress_classes: list[IngressClass] = field(default_factory=list)
    secrets: list[Secret] = field(default_factory=list)
    slices: list[EndpointSlice] = field(default_factory=list)


class Controller(Protocol):
    def sync(self, view: View) -> None: ...


@runtime_checkable
class Paced(Protocol):
    """A controller that writes at its own pace (kube-proxy): `due()` when changes it held
    back may be written now, `flush()` writes them."""

    def due(self) -> bool: ...

    def flush(self) -> None: ...


class RuleSink(Protocol):
    """Where a node's rules go (kernel/iptables.py: ChainSet): applied if they changed."""

    def sync(self, text: str) -> bool: ...


class Controllers:
    def __init__(self, store: Store, node_grace_s: float,
                 per_node: Sequence[Controller] = (), cluster_wide: Sequence[Controller] = (),
                 probes: Sequence[Callable[[], None]] = (), zones: dict[str, str] | None = None,
                 slice_batch_s: float = 0.0):
        self.store, self.node_grace_s = store, node_grace_s
        self.zones = zones or {}  # node → its topology.kubernetes.io/zone
        # The EndpointSlice controller writes pod changes at most once a batch period.
        self.slice_batch_s = slice_batch_s
        self.slices: list[EndpointSlice] = []  # its slices as last written
        self.slices_at = float("-inf")
        self.slices_held = False  # pod changes it has not written yet
        self.per_node, self.cluster_wide = list(per_node), list(cluster_wide)
        self.probes = list(probes)  # kubelets: run their readiness probes, update the store
        self.synced = -1  # the store's version at the last sync
        self.error: Exception | None = None
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def reconcile(self) -> bool:
        """One step; True if everything was rendered again."""
        with self.store.lock:
            for probe in self.probes:
                probe()
            self._node_lifecycle()
            held_due = self.slices_held and \
                time.monotonic() - self.slices_at >= self.slice_batch_s
            if self.store.version == self.synced and not held_due:
                # Nothing new; changes a node's kube-proxy held back may be due now.
                due = [c for c in self.per_node if isinstance(c, Paced) and c.due()]
                if due:
                    self._each_node(lambda c: cast(Paced, c).flush(), due)
                return False
            view = self._view()
            self.store.set_endpoints(view.endpoints, view.slices)
            self._each_node(lambda c: c.sync(view))
            for controller in self.cluster_wide:
                controller.sync(view)
            self.synced = self.store.version
            return True

    def _each_node(self, step: Callable[[Controller], object],
                   agents: Sequence[Controller] | None = None) -> None:
        """Every node's agents at once: one slow iptables-restore must not hold the rest."""
        agents = self.per_node if agents is None else agents
        with ThreadPoolExecutor(max_workers=min(8, len(agents) or 1)) as pool:
            list(pool.map(step, agents))

    def _node_lifecycle(self) -> None:
        """A node whose heartbeats stopped is NotReady once the grace period has passed."""
        now = time.monotonic()
        for node in self.store.nodes():
            lost = node.unreachable_since
            ready = lost is None or now - lost < self.node_grace_s
            if node.ready != ready:
                self.store.set_node(node.name, ready=ready)

    def _view(self) -> View:
        ready_nodes = {n.name for n in self.store.nodes() if n.ready}
        # Pods on a NotReady node are not ready endpoints (the node lifecycle controller's
        # doing), whatever their last probe said.
        pods = [replace(p, ready=p.ready and p.node in ready_nodes) for p in self.store.pods()
                if p.ip]
        services = self.store.services()
        # The EndpointSlice controller's slices, and those manifests gave (selectorless
        # Services' endpoints).
        slices = self._controller_slices(services, pods) + self.store.objects("EndpointSlice")
        return View(services, self.store.policies(), self.store.namespaces(), pods,
                    endpoint_map(services, slices), self.store.objects("Ingress"),
                    self.store.objects("IngressClass"), self.store.objects("Secret"), slices)

    def _controller_slices(self, services: list[Service],
                           pods: list[PodStatus]) -> list[EndpointSlice]:
        made = [s for svc in services for s in controller_slices(svc, pods, self.zones)]
        now = time.monotonic()
        if made != self.slices and now - self.slices_at < self.slice_batch_s:
            self.slices_held = True  # written when the batch period is over
            keys = {svc.key for svc in services}
            return [s for s in self.slices if f"{s.namespace}/{s.service}" in keys]
        if made != self.slices:
            self.slices, self.slices_at = made, now
        self.slices_held = False
        return made

    def start(self) -> None:
        self.reconcile()
        self._thread = threading.Thread(target=self._loop, name="kemu-controllers",
                                        daemon=True)
        self._thread.start()

    def _loop(self) -> None:
        while not self._stop.wait(INTERVAL_S):
            try:
                self.reconcile()
            except Exception as e:  # noqa: BLE001 — reported by check(); the loop goes on
                self.error = e

    def check(self) -> None:
        """Raise what went wrong in the background, if anything did."""
        if self.error:
            raise KemuError(f"controllers: {self.error}")

    def stop(self) -> None:
        self._stop.set()
        if self._thread:
            self._thread.join()

    def wait_ready(self, keys: list[str], timeout: float) -> list[str]:
        """Wait for these pods to be ready (probes passed); returns those that never were."""
        deadline = time.monotonic() + timeout
        while True:
            pending = [key for key in keys if not self.store.pod(key).ready]
            if not pending or time.monotonic() > deadline:
                return pending
            time.sleep(INTERVAL_S)
