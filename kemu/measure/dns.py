"""dns: name lookups as an application makes them — the system resolver in a pod, with its
resolv.conf (the cluster DNS, its namespace's search path, ndots:5) — through kemu's probe."""

from __future__ import annotations

from typing import Any

from kemu.measure.base import Context, Sample
from kemu.measure.requests import RequestMeasurement, describe_latency, latency_summary, run_probe
from kemu.scenario.check_measurements import Scope
from kemu.scenario.model import MeasurementSpec
from kemu.scenario.problems import Checks


class DNS(RequestMeasurement):
    type = "dns"
    params = {"count": 10, "query": None}
    to_refused = "a dns measurement resolves `query` from `from`; it has no `to`"
    headline = "latency_p50_ms"
    unit = "latency p50 (ms)"

    @classmethod
    def check(cls, doc: dict[str, Any], where: str, checks: Checks, scope: Scope) -> None:
        if not doc.get("query"):
            checks.error(f"{where}.query", "a dns measurement needs the name to resolve")
        if scope.source and scope.source.node:
            checks.error(f"{where}.from", "cluster names resolve in pods (their resolv.conf), "
                                          "not in nodes")

    @classmethod
    def ends(cls, spec: MeasurementSpec) -> tuple[str, str]:
        return str(spec.source), spec.params["query"]

    @classmethod
    def expected_seconds(cls, params: dict[str, Any]) -> float:
        return float(params["count"] * 0.003)

    @classmethod
    def run_once(cls, ctx: Context) -> Sample:
        return run_probe(ctx.procs, ctx.origin, "dns", ctx.params["query"],
                         ctx.params["count"], 5.0)

    @classmethod
    def summarize(cls, samples: list[Sample]) -> dict[str, Any]:
        summary = latency_summary(samples)
        summary["answers"] = sorted({a for s in samples for r in s["requests"]
                                     for a in r.get("addresses", [])})
        return summary

    @classmethod
    def describe(cls, s: dict[str, Any]) -> str:
        result = describe_latency(s)
        if "latency_p50_ms" in s and s.get("answers"):
            result += ", " + " ".join(s["answers"])
        return result
