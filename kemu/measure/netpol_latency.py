"""netpol-latency: how long a NetworkPolicy change takes to hold in the data plane. Each
repeat applies a policy denying all ingress to the `to` pod (selected by its labels), times
until a connection from the `from` pod no longer opens (`enforce_ms`), deletes it, and times
until one opens again (`release_ms`). kube-burner's netpolLatency times the second direction
(an allowing change, until the first connection succeeds). Policies add up: where another
policy already allows the `from` pod, the deny never holds and `enforce_ms` is None. The
policy engine's timing is what it measures: kemu's policy agent writes a node's rules at the
next reconcile after the change."""

from __future__ import annotations

import time
from typing import Any

from kemu.errors import KemuError
from kemu.measure.base import Context, Measurement, Row, Sample
from kemu.measure.propagation import attempt_timeout, connects, describe_times, until
from kemu.measure.requests import ci, warmup
from kemu.measure.stats import over_repeats
from kemu.measure.tcp_connect import tcp_port
from kemu.scenario.check_measurements import Scope
from kemu.scenario.objects import NetworkPolicy
from kemu.scenario.problems import Checks

POLICY = "kemu-netpol-latency"


class NetpolLatency(Measurement):
    type = "netpol-latency"
    params = {"port": None, "timeout": 30.0}
    sources = ("pod",)
    targets = ("pod",)
    headline = "enforce_p50_ms"
    unit = "policy enforced after (ms, p50)"

    @classmethod
    def check(cls, doc: dict[str, Any], where: str, checks: Checks, scope: Scope) -> None:
        if not scope.policy_engine:
            checks.error(where, "netpol-latency times a policy engine, and the cluster has "
                                "none (flannel enforces no policy: cluster.networkPolicy: "
                                "{engine: canal})")

    @classmethod
    def expected_seconds(cls, params: dict[str, Any]) -> float:
        return 1.0

    @classmethod
    def run_once(cls, ctx: Context) -> Sample:
        assert ctx.target and ctx.spec.target and ctx.spec.target.pod
        cluster, key = ctx.cluster, ctx.spec.target.pod
        port = tcp_port(ctx)
        if not connects(ctx.origin, ctx.target.ip, port):
            raise KemuError(f"measurement {ctx.spec.name}: {key}:{port} is not reachable "
                            f"before the policy (another policy, or nothing listening)")
        attempt = attempt_timeout(ctx.origin, ctx.target.ip, port)
        namespace = key.split("/", 1)[0]
        policy = NetworkPolicy(POLICY, namespace, dict(cluster.pods[key].spec.labels),
                               ("Ingress",))
        started = time.monotonic()
        cluster.apply((policy,))
        try:
            enforce = until(ctx.origin, ctx.target.ip, port, False, started,
                            ctx.params["timeout"], attempt)
        finally:
            released_at = time.monotonic()
            cluster.delete("NetworkPolicy", policy.key)
        release = until(ctx.origin, ctx.target.ip, port, True, released_at,
                        ctx.params["timeout"], attempt)
        return {"enforce_ms": enforce,
                "release_ms": release}

    @classmethod
    def summarize(cls, samples: list[Sample]) -> dict[str, Any]:
        """enforce_* and release_* (min/mean/p50/p90/p99/max/stdev, ms) over repeats; how
        many never took effect within the timeout; the 95 % CI of enforce_ms."""
        summary: dict[str, Any] = {}
        for what in ("enforce", "release"):
            times = [s[f"{what}_ms"] for s in samples if s[f"{what}_ms"] is not None]
            summary.update(describe_times(times, what))
            summary[f"{what}_timeouts"] = len(samples) - len(times)
        # One figure a repeat: its p50 is itself.
        summary.update(over_repeats("enforce_p50_ms", [s["enforce_ms"] for s in samples]))
        return summary

    @classmethod
    def describe(cls, s: dict[str, Any]) -> str:
        if "enforce_p50_ms" not in s:
            return f"never enforced within the timeout ({s['enforce_timeouts']} repeats)"
        release = f"{s['release_p50_ms']:.1f} ms" if "release_p50_ms" in s else "never"
        return (f"enforced after {s['enforce_p50_ms']:.1f} ms (p50"
                f"{ci(s, 'enforce_p50_ms', ' ms')}"
                f"), released after {release}{warmup(s)}")

    @classmethod
    def csv_rows(cls, sample: Sample) -> list[Row]:
        t = sample.get("started_at", "")
        return [(0, t, f"{what}_ms", sample[f"{what}_ms"], "") if sample[f"{what}_ms"]
                is not None else (0, t, "error", 1, f"{what}: timeout")
                for what in ("enforce", "release")]

    @classmethod
    def spread(cls, samples: list[Sample]) -> list[float]:
        return [s["enforce_ms"] for s in samples if s["enforce_ms"] is not None]
