"""failover: paced requests to a load balancer's VIP; `at` seconds in, the node `fail` stops
answering; it comes back when the requests are done. Reports how long clients saw failures
after the fault, and when the load balancer itself noticed."""

from __future__ import annotations

import statistics
import time
from collections import Counter
from typing import Any

from kemu.errors import KemuError
from kemu.kernel.processes import PIPE
from kemu.measure import stats
from kemu.measure.base import Context, Sample, TimeSeries
from kemu.measure.requests import RequestMeasurement, parse_probe, probe_command, request_series
from kemu.scenario.check_measurements import Scope
from kemu.scenario.problems import Checks


def _one(sample: Sample) -> dict[str, Any]:
    failed_at = sample["failed_at"]
    requests = sample["requests"]
    after = [r for r in requests if r["t"] >= failed_at]
    failures = [r for r in after if "error" in r]
    one: dict[str, Any] = {
        "requests": len(requests), "failed_requests": len(failures),
        "failed_before_fault": sum(1 for r in requests if r["t"] < failed_at and "error" in r),
        # Recovered: after the last failed request, everything succeeds.
        "failover_s": round(failures[-1]["t"] + failures[-1]["latency_ms"] / 1000 - failed_at,
                            3) if failures else 0.0,
        "served_after": Counter(r.get("node") for r in after
                                if "error" not in r and r.get("node")),
    }
    if sample.get("detected_at"):
        one["detected_s"] = round(sample["detected_at"] - failed_at, 3)
    return one


class Failover(RequestMeasurement):
    type = "failover"
    params = {"fail": None, "at": 2.0, "duration": 30.0, "interval": 0.1, "timeout": 0.5,
              "path": "/"}
    targets = ("loadBalancer",)
    headline = "failover_s"
    unit = "failover (s)"

    @classmethod
    def check(cls, doc: dict[str, Any], where: str, checks: Checks, scope: Scope) -> None:
        if doc.get("fail") not in scope.nodes:
            checks.error(f"{where}.fail", f"name the node to take down (nodes: "
                                          f"{', '.join(scope.nodes)})")

    @classmethod
    def expected_seconds(cls, params: dict[str, Any]) -> float:
        return float(params["duration"]) + 0.5  # paced requests for `duration`, not `count`

    @classmethod
    def run_once(cls, ctx: Context) -> Sample:
        assert ctx.target
        p, cluster = ctx.params, ctx.cluster
        count = int(p["duration"] / p["interval"])
        url = f"http://{ctx.target.ip}:{ctx.target.port}{p['path']}"
        probe = ctx.procs.start(ctx.origin, probe_command(
            "http", url, count, "--interval", str(p["interval"]), "--timeout", str(p["timeout"])),
            "failover probe", stdout=PIPE, stderr=PIPE)
        down = False
        try:
            time.sleep(p["at"])
            failed_at = time.time()
            cluster.node_down(p["fail"])
            down = True
            result = probe.communicate(timeout=p["duration"] + p["timeout"] + 30)
        finally:
            ctx.procs.end(probe)
            if down:
                cluster.node_up(p["fail"])
        if not result.ok:
            raise KemuError(f"failover probe failed: {result.stderr.strip()[-300:]}")
        sample = parse_probe(result.stdout)
        nodes = {pod.spec.name: pod.node.name for pod in cluster.pods.values()}
        for record in sample["requests"]:
            if record.get("pod"):
                record["node"] = nodes.get(record["pod"], "")
        state = cluster.load_balancer_state() or {}
        detected = [e["time"] for e in state.get("events", []) if e["event"] == "unhealthy" and
                    e["node"] == p["fail"] and e["time"] >= failed_at]
        return {"failed_at": failed_at, "failed_node": p["fail"],
                "detected_at": detected[0] if detected else None, **sample}

    @classmethod
    def summarize(cls, samples: list[Sample]) -> dict[str, Any]:
        """How long clients saw failures after the node went down, and what the load
        balancer itself noticed when: request counts summed over the repeats, times averaged
        (with their spread and 95 % CI when there are several repeats)."""
        if not samples:
            return {}
        each = [_one(s) for s in samples]
        summary: dict[str, Any] = {k: sum(e[k] for e in each)
                                   for k in ("requests", "failed_requests",
                                             "failed_before_fault")}
        times = [e["failover_s"] for e in each]
        summary["failover_s"] = round(statistics.fmean(times), 3)
        if len(times) > 1:
            d = stats.describe(times)
            summary.update(failover_s_min=d["min"], failover_s_max=d["max"],
                           failover_s_stdev=d["stdev"],
                           **stats.over_repeats("failover_s", times))
        detected = [e["detected_s"] for e in each if "detected_s" in e]
        if detected:
            summary["detected_s"] = round(statistics.fmean(detected), 3)
        summary["served_after"] = dict(sorted(sum((e["served_after"] for e in each),
                                                  Counter()).items()))
        return summary

    @classmethod
    def describe(cls, s: dict[str, Any]) -> str:
        detected = f", detected after {s['detected_s']} s" if "detected_s" in s else ""
        return (f"{s.get('failed_requests', 0)}/{s.get('requests', 0)} requests failed; "
                f"recovered {s.get('failover_s', 0)} s after the fault{detected}; then "
                + " ".join(f"{n}:{c}" for n, c in s.get("served_after", {}).items()))

    @classmethod
    def timeline(cls, run: dict[str, Any], m: dict[str, Any],
                 label: str) -> TimeSeries | None:
        sample = m["samples"][-1]
        origin = sample["failed_at"]
        return TimeSeries("time since the fault (s)", "request latency (ms)", origin,
                          request_series(sample["requests"], origin, label),
                          [(0.0, f"{sample['failed_node']} down")])
