"""The control plane's reactions, as Kubernetes controllers: one reconcile step every tenth of
a second (a thread), so a change anywhere propagates the way it does in a cluster, with a
delay that can be measured.

    kubelets' probes, node readiness → pod readiness → endpoints (per service port)
        → every node's kube-proxy rules (kemu/kube_proxy.py)
        → the cluster DNS records (kemu/dns.py)
        → every node's NetworkPolicy rules (kemu/network_policy.py)
        → the ingress controller's nginx configuration (kemu/ingress.py)

Rules are re-applied only when what they are made of changed.
"""

from __future__ import annotations

import json
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import replace
from pathlib import Path
from typing import TYPE_CHECKING

from kemu import dns, ingress, kube_proxy, network_policy
from kemu.errors import KemuError
from kemu.files import write_atomic
from kemu.iptables import ChainSet
from kemu.services import Endpoint, endpoints

if TYPE_CHECKING:
    from kemu.cluster import Cluster

INTERVAL_S = 0.1


class Controllers:
    def __init__(self, cluster: Cluster):
        self.cluster = cluster
        scenario = cluster.scenario
        self.services = list(scenario.services)
        self.policies = list(scenario.policies)
        self.namespaces = {ns.name: ns for ns in scenario.namespaces}
        self.proxies = {name: ChainSet(node, sorted(kube_proxy.JUMPS))
                        for name, node in cluster.nodes.items()}
        self.policy_agents = {name: ChainSet(node, network_policy.JUMPS)
                              for name, node in cluster.nodes.items()}
        self.records = cluster.state.dir / "dns" / "records.json"
        self.ingress_dir = cluster.state.dir / "ingress"
        self.certs = cluster.ingress_certs
        self.endpoints: dict[tuple[str, str], list[Endpoint]] | None = None
        self.error: Exception | None = None
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self.lock = threading.RLock()  # one reconcile, or one outside change, at a time

    def reconcile(self) -> bool:
        """One step; True if anything was re-applied."""
        with self.lock:
            statuses = []
            for name, kubelet in self.cluster.kubelets.items():
                kubelet.update_readiness()
                node_ready = self.cluster.node_ready(name)
                # Pods on a NotReady node are not ready endpoints (the node lifecycle
                # controller's doing), whatever their last probe said.
                statuses += [replace(s, ready=s.ready and node_ready) for s in kubelet.statuses()]
            current = {(svc.key, port.name): endpoints(svc, port, statuses)
                       for svc in self.services for port in svc.ports}
            if current == self.endpoints:
                return False
            cidr = str(self.cluster.scenario.cluster.pod_cidr)

            def sync_node(name: str) -> None:  # every node's kube-proxy and policy agent
                self.proxies[name].sync(kube_proxy.render(name, cidr, self.services, current))
                self.policy_agents[name].sync(network_policy.render(
                    name, self.policies, statuses, self.namespaces))

            with ThreadPoolExecutor(max_workers=min(8, len(self.proxies) or 1)) as pool:
                list(pool.map(sync_node, self.proxies))
            if self.cluster.scenario.dns.enabled:
                write_atomic(self.records, json.dumps(dns.records(
                    self.services, current, statuses, self.cluster.scenario.dns.domain),
                    indent=1, sort_keys=True))
            if self.cluster.scenario.ingresses:  # the ingress controller reloads on change
                write_ingress_config(self.ingress_dir, ingress.render(
                    list(self.cluster.scenario.ingresses), self.services, current,
                    self.ingress_dir, self.certs))
            self.endpoints = current
            return True

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
            pods = {p.spec.key: p for k in self.cluster.kubelets.values() for p in k.pods.values()}
            pending = [key for key in keys if not pods[key].ready]
            if not pending or time.monotonic() > deadline:
                return pending
            time.sleep(INTERVAL_S)


def write_ingress_config(directory: Path, text: str) -> None:
    write_atomic(directory / "nginx.conf", text)
