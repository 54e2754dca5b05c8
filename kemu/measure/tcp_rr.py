"""tcp-rr: TCP request/response round trips (sockperf ping-pong) over one connection, with
a sockperf server started in the target for each repeat: round-trip percentiles and
transactions per second."""

from __future__ import annotations

import math
import re
import statistics
from typing import Any

from kemu.errors import TimedOut
from kemu.measure import stats
from kemu.measure.base import Context, Measurement, Row, Sample, server, whole_seconds
from kemu.measure.requests import ci, warmup
from kemu.scenario.check_measurements import Scope
from kemu.scenario.problems import Checks

PORT = 5398  # its server's port, unless the measurement names a `port`

_ANSI = re.compile(r"\x1b\[[0-9;]*m")
_AVG = re.compile(r"avg-(rtt|latency)=([0-9.]+) \(std-dev=([0-9.]+)\)")
_PCT = re.compile(r"percentile ([0-9.]+) =\s*([0-9.]+)")
_MINMAX = re.compile(r"<(MIN|MAX)> observation =\s*([0-9.]+)")
_VALID = re.compile(r"\[Valid Duration\] RunTime=([0-9.]+) sec; SentMessages=(\d+); "
                    r"ReceivedMessages=(\d+)")
_DROPPED = re.compile(r"# dropped messages = (\d+)")
_ERROR = re.compile(r"ERROR: (.*)")


def server_command(port: int) -> list[str]:
    return ["sockperf", "server", "--tcp", "-p", str(port)]


def client_command(target: str, params: dict[str, Any], port: int) -> list[str]:
    return ["sockperf", "ping-pong", "--tcp", "-i", target, "-p", str(port),
            "-t", str(int(params["duration"])), "--msg-size", str(params["size"]), "--full-rtt"]


def parse_sockperf(output: str) -> Sample:
    """→ {rtt_avg_ms, rtt_stdev_ms, rtt_min_ms, rtt_max_ms, rtt_pNN_ms (25, 50, 75, 90, 99,
    99.9 as p999), observations, duration_s, transactions_per_s, dropped} of one ping-pong run;
    times are round trips (`--full-rtt`; half-RTT "latency" output is doubled). A run that did
    not measure keeps sockperf's error and has no observations."""
    text = _ANSI.sub("", output)
    avg = _AVG.search(text)
    valid = _VALID.search(text)
    if not avg or not valid:
        error = _ERROR.search(text)
        return {"observations": 0,
                "error": error.group(1).strip() if error else text.strip()[-200:]}
    scale = 1e-3 * (2 if avg.group(1) == "latency" else 1)  # µs → ms (of a round trip)
    sample: Sample = {"rtt_avg_ms": round(float(avg.group(2)) * scale, 4),
                      "rtt_stdev_ms": round(float(avg.group(3)) * scale, 4)}
    for which, value in _MINMAX.findall(text):
        sample[f"rtt_{which.lower()}_ms"] = round(float(value) * scale, 4)
    names = {25.0: "p25", 50.0: "p50", 75.0: "p75", 90.0: "p90", 99.0: "p99", 99.9: "p999"}
    for pct, value in _PCT.findall(text):
        if float(pct) in names:
            sample[f"rtt_{names[float(pct)]}_ms"] = round(float(value) * scale, 4)
    runtime, received = float(valid.group(1)), int(valid.group(3))
    dropped = _DROPPED.search(text)
    sample.update(observations=received, duration_s=runtime,
                  transactions_per_s=round(received / runtime, 1) if runtime else None,
                  dropped=int(dropped.group(1)) if dropped else 0)
    return sample


class TCPRR(Measurement):
    type = "tcp-rr"
    params = {"duration": 2, "size": 64, "port": None}
    targets = ("pod", "node", "external")
    requires = ("sockperf",)
    server = True
    headline = "rtt_p50_ms"
    unit = "TCP round trip p50 (ms)"

    @classmethod
    def check(cls, doc: dict[str, Any], where: str, checks: Checks, scope: Scope) -> None:
        whole_seconds(doc, "duration", cls.params["duration"], where, checks,
                      "tcp-rr runs for")
        if not 14 <= doc.get("size", 64) <= 65000:
            checks.error(f"{where}.size", "sockperf messages are 14 to 65000 bytes")

    @classmethod
    def run_once(cls, ctx: Context) -> Sample:
        assert ctx.target
        port = ctx.params.get("port") or PORT
        # "… using recvfrom() to block on socket(s)": bound
        with server(ctx, server_command(port), "sockperf server",
                    lambda text: "socket(s)" in text):
            try:
                result = ctx.procs.run(ctx.origin,
                                       client_command(ctx.target.ip, ctx.params, port),
                                       timeout=ctx.params["duration"] + 20)
            except TimedOut:
                return {"observations": 0, "error": "sockperf did not finish in time (no "
                                                    f"answer from {ctx.target.ip}:{port}?)"}
            return parse_sockperf(result.stdout + result.stderr)

    @classmethod
    def summarize(cls, samples: list[Sample]) -> dict[str, Any]:
        """Over the repeats: the observation-weighted mean and pooled stdev of the round trip,
        min and max, and percentiles as the mean of each repeat's (exact with one repeat);
        headline rtt_p50_ms, with its 95 % CI over repeats."""
        ok = [s for s in samples if s.get("observations")]
        summary: dict[str, Any] = {"observations": sum(s["observations"] for s in ok),
                                   "errors": len(samples) - len(ok)}
        if len(ok) < len(samples):
            summary["error"] = next(s.get("error", "") for s in reversed(samples)
                                    if not s.get("observations"))
        if not ok:
            return summary
        n = summary["observations"]
        mean = sum(s["rtt_avg_ms"] * s["observations"] for s in ok) / n
        pooled = sum(s["observations"] * (s["rtt_stdev_ms"] ** 2 + (s["rtt_avg_ms"] - mean) ** 2)
                     for s in ok) / n
        summary.update(rtt_avg_ms=round(mean, 4), rtt_stdev_ms=round(math.sqrt(pooled), 4),
                       rtt_min_ms=min(s["rtt_min_ms"] for s in ok),
                       rtt_max_ms=max(s["rtt_max_ms"] for s in ok))
        for p in ("p50", "p90", "p99"):
            summary[f"rtt_{p}_ms"] = round(statistics.fmean(s[f"rtt_{p}_ms"] for s in ok), 4)
        summary["transactions_per_s"] = round(statistics.fmean(s["transactions_per_s"] for s in ok),
                                              1)
        summary["dropped"] = sum(s.get("dropped", 0) for s in ok)
        summary.update(stats.over_repeats("rtt_p50_ms", [s["rtt_p50_ms"] for s in ok], 4))
        return summary

    @classmethod
    def describe(cls, s: dict[str, Any]) -> str:
        if "rtt_p50_ms" not in s:
            return f"failed: {s.get('error', 'no observations')}"
        return (f"rtt p50/p90/p99 {s['rtt_p50_ms']:.4f}/{s['rtt_p90_ms']:.4f}/"
                f"{s['rtt_p99_ms']:.4f} ms{ci(s, 'rtt_p50_ms', ' ms')}, avg "
                f"{s['rtt_avg_ms']:.4f} ms, {s['transactions_per_s']:g} transactions/s"
                f"{warmup(s)}")

    @classmethod
    def csv_rows(cls, sample: Sample) -> list[Row]:
        t = sample.get("started_at", "")
        rows: list[Row] = [(0, t, k, sample[k], "") for k in
                           ("rtt_avg_ms", "rtt_stdev_ms", "rtt_min_ms", "rtt_p50_ms",
                            "rtt_p90_ms", "rtt_p99_ms", "rtt_max_ms", "transactions_per_s",
                            "observations") if k in sample]
        if "error" in sample:
            rows.append((0, t, "error", 1, sample["error"]))
        return rows

    @classmethod
    def spread(cls, samples: list[Sample]) -> list[float]:
        return [s["rtt_p50_ms"] for s in samples if "rtt_p50_ms" in s]
