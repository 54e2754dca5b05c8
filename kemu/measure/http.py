"""http: one GET at a time, each on a new connection (so a Service balances each), paced or
back to back: latency, the request rate one client achieves, and which pod answered (from
kemu/http-echo), through kemu's probe."""

from __future__ import annotations

from collections import Counter
from typing import Any

from kemu.measure.base import Context, Sample
from kemu.measure.requests import RequestMeasurement, describe_latency, latency_summary, run_probe


class Http(RequestMeasurement):
    type = "http"
    params = {"count": 20, "interval": 0.0, "timeout": 2.0, "path": "/", "host": None}
    targets = ("pod", "service", "nodePort", "loadBalancer", "external")
    headline = "latency_p50_ms"
    unit = "latency p50 (ms)"

    @classmethod
    def run_once(cls, ctx: Context) -> Sample:
        assert ctx.target
        p = ctx.params
        options = ["--interval", str(p["interval"]), "--timeout", str(p["timeout"])]
        if p.get("host"):
            options += ["--host", p["host"]]
        return run_probe(ctx.procs, ctx.origin, "http",
                         f"http://{ctx.target.ip}:{ctx.target.port}{p['path']}", p["count"],
                         p["interval"] + p["timeout"], *options)

    @classmethod
    def summarize(cls, samples: list[Sample]) -> dict[str, Any]:
        requests = [r for s in samples for r in s["requests"]]
        summary = latency_summary(samples)
        # One request at a time, each on a new connection: the rate one client achieves.
        spans = [s["requests"][-1]["t"] + s["requests"][-1]["latency_ms"] / 1000 -
                 s["requests"][0]["t"] for s in samples if s["requests"]]
        if spans and sum(spans) > 0:
            summary["requests_per_s"] = round(len(requests) / sum(spans), 1)
        summary["backends"] = dict(sorted(Counter(r["pod"] for r in requests if r.get("pod"))
                                          .items()))
        return summary

    @classmethod
    def describe(cls, s: dict[str, Any]) -> str:
        result = describe_latency(s)
        if "latency_p50_ms" not in s:
            return result
        if s.get("requests_per_s"):
            result += f", {s['requests_per_s']:g} req/s"
        if s.get("backends"):
            result += ", " + " ".join(f"{pod}:{n}" for pod, n in s["backends"].items())
        return result
