"""A Deployment's rollout, as the Deployment controller drives it (kubernetes
pkg/controller/deployment, rolling.go and recreate.go), e.g. after `kubectl rollout restart`:
new pods replace the old ones, in the background.

- RollingUpdate: new pods are made while the Deployment has at most replicas + maxSurge pods
  (surge rounded up); old pods are deleted — gracefully, terminating first — while at least
  replicas - maxUnavailable (rounded down) stay available; a pod is available once it has
  been ready for minReadySeconds. Old pods that are not available go first (so a rollout of
  a broken Deployment still progresses), the newest of the rest next.
- Recreate: every old pod is deleted, and once they are all gone the new ones are made.
Each step is taken when the pods' state allows it, checked every tenth of a second (the
controller reacts to pod changes as fast).
"""

from __future__ import annotations

import threading
import time
from typing import TYPE_CHECKING

from kemu.scenario.objects import Rollout

if TYPE_CHECKING:
    from kemu.cluster.workloads import Workloads

STEP_S = 0.1


class RollingUpdate:
    def __init__(self, cluster: Workloads, deployment: str, rollout: Rollout,
                 new: list[str]):
        """`new`: the names the new pods take, in order (as the scenario's check foresaw)."""
        self.cluster, self.deployment, self.rollout = cluster, deployment, rollout
        self.old = cluster.replicas(deployment)
        self.names = list(new)
        self.made: list[str] = []
        self.stopped = threading.Event()
        self.error = ""
        self.thread = threading.Thread(target=self._run, name=f"rollout {deployment}",
                                       daemon=True)

    def start(self) -> RollingUpdate:
        self.thread.start()
        return self

    def stop(self) -> None:
        self.stopped.set()
        self.thread.join(timeout=30)

    def _run(self) -> None:
        try:
            if self.rollout.type == "Recreate":
                self._recreate()
            else:
                self._rolling()
        except Exception as e:  # noqa: BLE001 — reported by Cluster.check; the run goes on
            self.error = f"rollout of {self.deployment}: {e}"

    def _available(self, key: str) -> bool:
        status = self.cluster.store.pod(key) if key in self.cluster.pods else None
        return bool(status and status.ready and not status.terminating and
                    status.ready_since is not None and
                    time.monotonic() - status.ready_since >= self.rollout.min_ready_s)

    def _alive(self, keys: list[str]) -> list[str]:
        pods = self.cluster.pods
        return [k for k in keys if k in pods and not pods[k].terminating]

    def _rolling(self) -> None:
        replicas = len(self.old)
        surge, unavailable = self.rollout.limits(replicas)
        least = replicas - unavailable  # pods that must stay available
        while not self.stopped.is_set():
            old, new = self._alive(self.old), self._alive(self.made)
            new_ready = [k for k in new if self._available(k)]
            if not old and len(new_ready) >= replicas:
                return
            room = min(replicas + surge - len(old) - len(new), replicas - len(new))
            if room > 0 and self.names:
                batch, self.names = self.names[:room], self.names[room:]
                self.made += batch
                self.cluster.create_replicas(self.deployment, batch)
                continue
            # Old pods that are not available go first, within what the new ones' own
            # unavailability leaves; then available ones, while enough stay available.
            budget = len(old) + len(new) - least - (len(new) - len(new_ready))
            unready = [k for k in old if not self._available(k)]
            for key in unready[:max(0, budget)]:
                self.cluster.delete_replica(key)
            old = self._alive(self.old)
            ready_old = sorted((k for k in old if self._available(k)),
                               key=lambda k: -int(k.rsplit("-", 1)[1]))  # newest first
            extra = len(ready_old) + len(new_ready) - least
            for key in ready_old[:max(0, extra)]:
                self.cluster.delete_replica(key)
            self.stopped.wait(STEP_S)

    def _recreate(self) -> None:
        for key in self._alive(self.old):
            self.cluster.delete_replica(key)
        while any(k in self.cluster.pods for k in self.old):
            if self.stopped.wait(STEP_S):
                return
        self.made = list(self.names)
        self.cluster.create_replicas(self.deployment, self.made)
