"""iperf3: bulk TCP (or UDP at a bitrate) throughput, with a server started in the target for
each repeat; per-second intervals make a time series."""

from __future__ import annotations

import json
import statistics
from typing import Any

from kemu.errors import KemuError
from kemu.measure import stats
from kemu.measure.base import Context, Measurement, Row, Sample, Series, TimeSeries, server
from kemu.measure.requests import ci, warmup
from kemu.scenario.check_measurements import Scope
from kemu.scenario.problems import Checks

PORT = 5399  # kemu's own measurement port, away from a workload's iperf3 on 5201


def server_command(port: int = PORT) -> list[str]:
    return ["iperf3", "--server", "--one-off", "--port", str(port), "--forceflush"]


def client_command(target: str, params: dict[str, Any], port: int = PORT) -> list[str]:
    cmd = ["iperf3", "--client", target, "--port", str(port), "--json",
           "--time", str(params["duration"]), "--parallel", str(params["parallel"])]
    if params["reverse"]:
        cmd.append("--reverse")
    if params["protocol"] == "udp":
        cmd += ["--udp", "--bitrate", str(params["bitrate"] or "1G")]
    return cmd


def parse_iperf3(output: str) -> Sample:
    """→ {throughput_mbps, retransmits, intervals_mbps: [...], (udp) jitter_ms, lost_pct}."""
    try:
        doc = json.loads(output)
    except ValueError:
        raise KemuError(f"cannot read iperf3 output: {output.strip()[-200:]!r}") from None
    if "error" in doc:
        raise KemuError(f"iperf3: {doc['error']}")
    end = doc["end"]
    intervals = [round(i["sum"]["bits_per_second"] / 1e6, 2) for i in doc.get("intervals", [])]
    received = end["sum_received"]  # what arrived is the throughput (TCP and UDP alike)
    sample: Sample = {"throughput_mbps": round(received["bits_per_second"] / 1e6, 2)}
    if doc["start"]["test_start"]["protocol"] == "UDP":
        sample.update(jitter_ms=received.get("jitter_ms"), lost_pct=received.get("lost_percent"))
    else:
        sample["retransmits"] = end["sum_sent"].get("retransmits", 0)
    sample["intervals_mbps"] = intervals
    return sample


class Iperf3(Measurement):
    type = "iperf3"
    params = {"duration": 5, "parallel": 1, "reverse": False, "protocol": "tcp",
              "bitrate": None}
    targets = ("pod", "node", "external")
    requires = ("iperf3",)
    server = True
    headline = "throughput_mbps"
    unit = "throughput (Mbit/s)"

    @classmethod
    def check(cls, doc: dict[str, Any], where: str, checks: Checks, scope: Scope) -> None:
        if doc.get("bitrate") and doc.get("protocol", "tcp") != "udp":
            checks.error(f"{where}.bitrate", "bitrate applies to protocol: udp only")

    @classmethod
    def run_once(cls, ctx: Context) -> Sample:
        assert ctx.target
        # "Server listening on …" once bound; it then reports every second (--forceflush).
        with server(ctx, server_command(), "iperf3 server",
                    lambda text: "listening" in text.lower()):
            result = ctx.procs.run(ctx.origin, client_command(ctx.target.ip, ctx.params),
                                   timeout=ctx.params["duration"] + 30)
            return parse_iperf3(result.stdout)

    @classmethod
    def summarize(cls, samples: list[Sample]) -> dict[str, Any]:
        rates = [s["throughput_mbps"] for s in samples]
        if not rates:
            return {}
        summary: dict[str, Any] = {
            "throughput_mbps": round(statistics.median(rates), 2),
            "throughput_mbps_mean": round(statistics.fmean(rates), 2),
            "throughput_mbps_stdev": round(statistics.pstdev(rates), 2),
            "throughput_mbps_min": min(rates), "throughput_mbps_max": max(rates),
            **stats.over_repeats("throughput_mbps", rates, 2),
        }
        if "retransmits" in samples[0]:
            summary["retransmits"] = sum(s["retransmits"] for s in samples)
        else:
            summary["jitter_ms"] = round(statistics.fmean(s["jitter_ms"] for s in samples), 4)
            summary["lost_pct"] = round(statistics.fmean(s["lost_pct"] for s in samples), 3)
        return summary

    @classmethod
    def describe(cls, s: dict[str, Any]) -> str:
        result = f"{s['throughput_mbps']:.1f} Mbit/s{ci(s, 'throughput_mbps', '')}{warmup(s)}"
        if "retransmits" in s:
            return result + f", {s['retransmits']} retransmits"
        return result + f", jitter {s['jitter_ms']} ms, lost {s['lost_pct']} %"

    @classmethod
    def csv_rows(cls, sample: Sample) -> list[Row]:
        t = sample.get("started_at", "")
        rows: list[Row] = [(0, t, k, sample[k], "") for k in
                           ("throughput_mbps", "retransmits", "jitter_ms", "lost_pct")
                           if k in sample]
        return rows + [(i, t, "interval_mbps", v, "")
                       for i, v in enumerate(sample.get("intervals_mbps", []))]

    @classmethod
    def spread(cls, samples: list[Sample]) -> list[float]:
        return [s["throughput_mbps"] for s in samples]

    @classmethod
    def timeline(cls, run: dict[str, Any], m: dict[str, Any],
                 label: str) -> TimeSeries | None:
        origin = run.get("timeline_start") if run.get("events") else None
        plot = TimeSeries("time (s)", "throughput (Mbit/s)", origin)
        for s in m["samples"]:
            offset = s["started_at"] - origin if origin else 0.0
            plot.series.append(Series(f"{label} #{s['repeat']}",
                                      [offset + i + 1 for i in range(len(s["intervals_mbps"]))],
                                      s["intervals_mbps"]))
        return plot
