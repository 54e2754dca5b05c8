"""pod-startup: how long a pod takes from its creation to Ready, per pod (the figure
kube-burner's podLatency reports). Each repeat scales a Deployment up by `pods`, as
`kubectl scale` would, times each new pod from the moment it exists in the cluster's store
until its Ready condition is true there (kubelet's readiness: containers running, ports
listening, readiness probes passed), then scales back."""

from __future__ import annotations

import time
from typing import Any

from kemu.measure import stats
from kemu.measure.base import Context, Measurement, Row, Sample
from kemu.measure.requests import ci, warmup
from kemu.measure.stats import percentile
from kemu.scenario.check_measurements import Scope
from kemu.scenario.model import MeasurementSpec
from kemu.scenario.objects import qualified
from kemu.scenario.problems import Checks


class PodStartup(Measurement):
    type = "pod-startup"
    params = {"deployment": None, "namespace": "default", "pods": 5, "timeout": 30.0}
    sources = ()
    to_refused = "a pod-startup measurement starts pods of its `deployment`; it has no `to`"
    headline = "startup_p50_ms"
    unit = "pod startup p50 (ms)"

    @classmethod
    def check(cls, doc: dict[str, Any], where: str, checks: Checks, scope: Scope) -> None:
        key = qualified(doc, "deployment")
        if key not in scope.deployments:
            checks.error(f"{where}.deployment", f"name the Deployment to start pods of "
                                                f"(Deployments: "
                                                f"{', '.join(scope.deployments) or 'none'})")

    @classmethod
    def ends(cls, spec: MeasurementSpec) -> tuple[str, str]:
        return "", f"deploy/{qualified(spec.params, 'deployment').removeprefix('default/')}"

    @classmethod
    def expected_seconds(cls, params: dict[str, Any]) -> float:
        return 1.0 + 0.2 * params["pods"]

    @classmethod
    def run_once(cls, ctx: Context) -> Sample:
        p, cluster = ctx.params, ctx.cluster
        deployment = qualified(p, "deployment")
        before = len(cluster.replicas(deployment))
        made, _ = cluster.scale(deployment, before + p["pods"])
        try:
            deadline = time.monotonic() + p["timeout"]
            while time.monotonic() < deadline and \
                    not all(cluster.store.pod(key).ready_since for key in made):
                time.sleep(0.02)
            pods = []
            for key in made:
                status = cluster.store.pod(key)
                if status.ready_since:
                    pods.append({"pod": key.split("/", 1)[1], "node": status.node,
                                 "startup_ms": round(
                                     (status.ready_since - status.created) * 1000, 3)})
                else:
                    pods.append({"pod": key.split("/", 1)[1], "node": status.node,
                                 "error": f"not ready after {p['timeout']:g} s"})
        finally:
            cluster.scale(deployment, before)
        return {"pods": pods}

    @classmethod
    def summarize(cls, samples: list[Sample]) -> dict[str, Any]:
        """Startup times of every pod of every repeat: startup_min/mean/p50/p90/p99/max/
        stdev_ms, the pods that never became ready, and the 95 % CI of the per-repeat p50
        (the headline)."""
        pods = [p for s in samples for p in s["pods"]]
        ok = [p["startup_ms"] for p in pods if "error" not in p]
        summary: dict[str, Any] = {"pods": len(pods), "errors": len(pods) - len(ok)}
        if ok:
            d = stats.describe(ok)
            summary.update({f"startup_{k}_ms": d[k] for k in
                            ("min", "mean", "p50", "p90", "p99", "max", "stdev")})
            summary.update(stats.over_repeats("startup_p50_ms", [
                percentile(times, 50) if (times := [p["startup_ms"] for p in s["pods"]
                                                    if "error" not in p]) else None
                for s in samples]))
        return summary

    @classmethod
    def describe(cls, s: dict[str, Any]) -> str:
        if "startup_p50_ms" not in s:
            return f"{s['errors']}/{s['pods']} pods never became ready"
        return (f"startup p50/p90/p99 {s['startup_p50_ms']:.1f}/{s['startup_p90_ms']:.1f}/"
                f"{s['startup_p99_ms']:.1f} ms{ci(s, 'startup_p50_ms', ' ms')}, "
                f"{s['pods']} pods, {s['errors']} not ready{warmup(s)}")

    @classmethod
    def csv_rows(cls, sample: Sample) -> list[Row]:
        t = sample.get("started_at", "")
        return [(i, t, "startup_ms", p["startup_ms"], p["pod"]) if "error" not in p else
                (i, t, "error", 1, f"{p['pod']}: {p['error']}")
                for i, p in enumerate(sample["pods"])]

    @classmethod
    def spread(cls, samples: list[Sample]) -> list[float]:
        return [p["startup_ms"] for s in samples for p in s["pods"] if "error" not in p]
