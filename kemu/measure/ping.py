"""ping: ICMP echo round trips (iputils ping), from a pod, node or external host to one."""

from __future__ import annotations

import re
import statistics
from typing import Any

from kemu.measure import stats
from kemu.measure.base import Context, Measurement, Row, Sample
from kemu.measure.requests import ci, warmup
from kemu.measure.stats import percentile

_REPLY = re.compile(r"icmp_seq=(\d+) ttl=\d+ time=([0-9.]+) ms")
_COUNTS = re.compile(r"(\d+) packets transmitted, (\d+) received")


def ping_command(target: str, params: dict[str, Any]) -> list[str]:
    return ["ping", "-n", "-c", str(params["count"]), "-i", str(params["interval"]),
            "-s", str(params["size"]), "-W", "2", target]


def parse_ping(output: str) -> Sample:
    """→ {sent, received, rtts_ms: [...]} from iputils ping output; a ping that could not
    send at all (e.g. "Network is unreachable") counts nothing and keeps its error."""
    counts = _COUNTS.search(output)
    if not counts:
        return {"sent": 0, "received": 0, "rtts_ms": [], "error": output.strip()[-200:]}
    rtts = [float(m.group(2)) for m in _REPLY.finditer(output)]
    return {"sent": int(counts.group(1)), "received": int(counts.group(2)), "rtts_ms": rtts}


class Ping(Measurement):
    type = "ping"
    params = {"count": 10, "interval": 0.2, "size": 56}
    targets = ("pod", "node", "external")
    requires = ("ping",)
    headline = "rtt_avg_ms"
    unit = "RTT (ms)"

    @classmethod
    def expected_seconds(cls, params: dict[str, Any]) -> float:
        return float(params["count"] * params["interval"])

    @classmethod
    def run_once(cls, ctx: Context) -> Sample:
        assert ctx.target
        timeout = ctx.params["count"] * ctx.params["interval"] + 10
        result = ctx.procs.run(ctx.origin, ping_command(ctx.target.ip, ctx.params), timeout)
        return parse_ping(result.stdout + result.stderr)

    @classmethod
    def summarize(cls, samples: list[Sample]) -> dict[str, Any]:
        rtts = [r for s in samples for r in s["rtts_ms"]]
        sent = sum(s["sent"] for s in samples)
        received = sum(s["received"] for s in samples)
        summary: dict[str, Any] = {
            "loss_pct": round(100.0 * (sent - received) / sent, 2) if sent else None,
            "sent": sent, "received": received,
        }
        if rtts:
            summary.update(rtt_min_ms=min(rtts), rtt_avg_ms=round(statistics.fmean(rtts), 3),
                           rtt_max_ms=max(rtts), rtt_p50_ms=round(statistics.median(rtts), 3),
                           rtt_stdev_ms=round(statistics.pstdev(rtts), 3),
                           rtt_p90_ms=percentile(rtts, 90), rtt_p99_ms=percentile(rtts, 99))
            summary.update(stats.over_repeats("rtt_avg_ms", [
                statistics.fmean(s["rtts_ms"]) for s in samples if s["rtts_ms"]]))
        return summary

    @classmethod
    def describe(cls, s: dict[str, Any]) -> str:
        if "rtt_avg_ms" not in s:
            return f"no reply, loss {s.get('loss_pct') or 100:g} %"
        return (f"rtt min/avg/max {s['rtt_min_ms']:.3f}/{s['rtt_avg_ms']:.3f}/"
                f"{s['rtt_max_ms']:.3f} ms{ci(s, 'rtt_avg_ms', ' ms')}, loss "
                f"{s['loss_pct']:g} %{warmup(s)}")

    @classmethod
    def describe_empty(cls, s: dict[str, Any]) -> str:
        return cls.describe(s)  # a ping with nothing back still says its loss

    @classmethod
    def csv_rows(cls, sample: Sample) -> list[Row]:
        t = sample.get("started_at", "")
        rows: list[Row] = [(i, t, "rtt_ms", v, "") for i, v in enumerate(sample["rtts_ms"])]
        return rows + [(0, t, "lost", sample["sent"] - sample["received"], "")]

    @classmethod
    def spread(cls, samples: list[Sample]) -> list[float]:
        return [v for s in samples for v in s["rtts_ms"]]
