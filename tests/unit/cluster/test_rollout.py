"""The Deployment controller's rolling update (kemu/cluster/rollout.py), against a fake
cluster whose new pods are ready at once: what it makes and deletes, and in what order."""

from dataclasses import dataclass

from kemu.cluster.rollout import RollingUpdate
from kemu.scenario.objects import Rollout


@dataclass
class FakePod:
    terminating: bool = False


@dataclass
class Status:
    ready: bool
    terminating: bool
    ready_since: float | None


class FakeCluster:
    def __init__(self, old_ready: bool):
        self.pods = {f"default/web-{i}": FakePod() for i in range(3)}
        self.ready = {key: old_ready for key in self.pods}
        self.events: list[str] = []
        self.store = self

    def pod(self, key):  # the store's
        ready = self.ready[key]
        return Status(ready, self.pods[key].terminating, 0.0 if ready else None)

    def replicas(self, deployment):
        return sorted(k for k, p in self.pods.items() if not p.terminating)

    def create_replicas(self, deployment, keys):
        for key in keys:
            self.pods[key], self.ready[key] = FakePod(), True
            self.events.append(f"+{key}")

    def delete_replica(self, key):
        del self.pods[key]  # gone at once
        self.events.append(f"-{key}")


def roll(cluster):
    new = [f"default/web-{i}" for i in range(3, 6)]
    update = RollingUpdate(cluster, "default/web", Rollout(), new)
    update._rolling()  # synchronously: it returns when the rollout is complete
    return update


def test_maxsurge_one_maxunavailable_zero_replaces_one_pod_at_a_time():
    # 3 replicas, 25 %: surge rounds up to 1, unavailability down to 0.
    cluster = FakeCluster(old_ready=True)
    roll(cluster)
    assert cluster.events == ["+default/web-3", "-default/web-2", "+default/web-4",
                              "-default/web-1", "+default/web-5", "-default/web-0"]


def test_a_broken_deployment_still_rolls_out():
    # Old pods that were never ready go first, as the Deployment controller cleans them up;
    # without that, maxUnavailable 0 would hold the rollout for ever.
    cluster = FakeCluster(old_ready=False)
    roll(cluster)
    assert sorted(cluster.pods) == ["default/web-3", "default/web-4", "default/web-5"]
