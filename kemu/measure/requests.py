"""What the request-by-request kinds share (http, dns, tcp-connect, failover): kemu's probe
(probe.py) runs in the source's namespace and prints one JSON line per request; a sample is
the list of those requests, each with its time `t`, `latency_ms` and an `error` if it failed."""

from __future__ import annotations

import json
import sys
from collections import Counter
from typing import Any

from kemu.errors import KemuError
from kemu.kernel.exec import Netns
from kemu.kernel.processes import ProcessGroup
from kemu.measure import stats
from kemu.measure.base import Measurement, Row, Sample, Series, TimeSeries
from kemu.measure.stats import percentile


def probe_command(kind: str, target: str, count: int, *options: str) -> list[str]:
    return [sys.executable, "-m", "kemu.measure.probe", kind, target, "--count", str(count),
            *options]


def parse_probe(output: str) -> Sample:
    """→ {requests: [...]} from the probe's JSON lines."""
    return {"requests": [json.loads(line) for line in output.splitlines() if line.strip()]}


def run_probe(procs: ProcessGroup, where: Netns, kind: str, target: str, count: int,
              per_request_s: float, *options: str) -> Sample:
    result = procs.run(where, probe_command(kind, target, count, *options),
                       timeout=count * per_request_s + 10)
    if not result.ok:
        raise KemuError(f"{kind} probe failed: {result.stderr.strip()[-300:]}")
    return parse_probe(result.stdout)


def p50(requests: list[dict[str, Any]]) -> float | None:
    ok = [r["latency_ms"] for r in requests if "error" not in r]
    return percentile(ok, 50) if ok else None


def latency_summary(samples: list[Sample], prefix: str = "latency") -> dict[str, Any]:
    """Statistics of the successful requests of all repeats, and the 95 % CI of the
    per-repeat p50 (the headline figure)."""
    requests = [r for s in samples for r in s["requests"]]
    ok = [r["latency_ms"] for r in requests if "error" not in r]
    summary: dict[str, Any] = {"requests": len(requests), "errors": len(requests) - len(ok)}
    if ok:
        d = stats.describe(ok)
        summary.update({f"{prefix}_min_ms": d["min"], f"{prefix}_mean_ms": d["mean"],
                        f"{prefix}_p50_ms": d["p50"], f"{prefix}_p90_ms": d["p90"],
                        f"{prefix}_p99_ms": d["p99"], f"{prefix}_max_ms": d["max"],
                        f"{prefix}_stdev_ms": d["stdev"]})
        summary.update(stats.over_repeats(f"{prefix}_p50_ms",
                                          [p50(s["requests"]) for s in samples]))
    if requests and len(ok) < len(requests):
        failed = [r for r in requests if "error" in r]
        summary["error_kinds"] = dict(Counter(r["error"] for r in failed).most_common(3))
        # How long a failure took is a result too: a timeout, or a resolver that gave up
        # after trying its whole search list.
        summary["failed_latency_p50_ms"] = percentile([r["latency_ms"] for r in failed], 50)
    return summary


def describe_latency(s: dict[str, Any]) -> str:
    """p50/p90/p99 with the CI and errors, or how the requests failed (http, dns)."""
    if "latency_p50_ms" not in s:
        kinds = "; ".join(s.get("error_kinds", {}))
        took = s.get("failed_latency_p50_ms")
        return (f"{s['errors']}/{s['requests']} failed" + (f" ({kinds})" if kinds else "")
                + (f", p50 {took:.3f} ms to fail" if took is not None else ""))
    return (f"p50/p90/p99 {s['latency_p50_ms']:.3f}/{s['latency_p90_ms']:.3f}/"
            f"{s['latency_p99_ms']:.3f} ms{ci(s, 'latency_p50_ms', ' ms')}, "
            f"{s['errors']} errors{warmup(s)}")


def ci(s: dict[str, Any], key: str, unit: str) -> str:
    """The 95 % CI of a figure over repeats, as the results table says it."""
    return f" ±{s[key + '_ci95']:g}{unit} (95 % CI, {s.get('repeats')} repeats)" \
        if key + "_ci95" in s else ""


def warmup(s: dict[str, Any]) -> str:
    return f", {s['warmup_repeats']} warm-up" if s.get("warmup_repeats") else ""


class RequestMeasurement(Measurement):
    """A kind whose samples are lists of timed requests."""

    metric = "latency_ms"  # the CSV metric of one request

    @classmethod
    def expected_seconds(cls, params: dict[str, Any]) -> float:
        """`count` requests, paced by `interval` or a few milliseconds each."""
        return float(params["count"] * max(params.get("interval") or 0.0, 0.003))

    @classmethod
    def csv_rows(cls, sample: Sample) -> list[Row]:
        rows: list[Row] = []
        for i, r in enumerate(sample.get("requests", [])):
            label = r.get("error") or r.get("pod") or " ".join(r.get("addresses", []))
            rows.append((i, r.get("t", sample.get("started_at", "")), cls.metric,
                         r["latency_ms"], label))
        return rows

    @classmethod
    def timeline(cls, run: dict[str, Any], m: dict[str, Any],
                 label: str) -> TimeSeries | None:
        """Each request's latency at the time it was made, when the run had events to read
        them against."""
        if not run.get("events"):
            return None
        requests = [r for s in m["samples"] for r in s.get("requests", [])]
        origin = run["timeline_start"]
        return TimeSeries("time (s)", "latency (ms)", origin,
                          request_series(requests, origin, label))


def request_series(requests: list[dict[str, Any]], origin: float, label: str) -> list[Series]:
    timed = [r for r in requests if "t" in r]  # older results.json: dns requests had no time
    ok = [(r["t"] - origin, r["latency_ms"]) for r in timed if "error" not in r]
    bad = [r["t"] - origin for r in timed if "error" in r]
    series = [Series(f"{label} answered", [t for t, _ in ok], [v for _, v in ok], "points")]
    if bad:
        series.append(Series("failed", bad, [0.0] * len(bad), "failures"))
    return series
