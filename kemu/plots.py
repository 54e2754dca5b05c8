"""Plots of a results.json, as PNG files in <results>/plots/ (matplotlib, no display needed).

- one bar chart per measurement: its headline figure for every run (matrix combination),
  with error bars: the 95 % confidence interval over repeats when there were several, else
  the spread (stdev) of its samples;
- one time series per measurement that has one: iperf3's per-second throughput, and a
  failover's request latencies with failed requests and the fault marked.
"""

from __future__ import annotations

import statistics
from pathlib import Path
from typing import Any

import matplotlib

matplotlib.use("Agg")  # files only: no display, no GUI toolkit

import matplotlib.pyplot as plt  # noqa: E402 (after choosing the backend)

from kemu.results import headline  # noqa: E402

UNITS = {"rtt_avg_ms": "RTT (ms)", "throughput_mbps": "throughput (Mbit/s)",
         "latency_p50_ms": "latency p50 (ms)", "failover_s": "failover (s)",
         "rtt_p50_ms": "TCP round trip p50 (ms)", "connect_p50_ms": "TCP connect p50 (ms)",
         "requests_per_s": "requests/s"}


def _spread(m: dict[str, Any]) -> float:
    """The 95 % CI (half-width) of the headline figure over repeats if the summary has one,
    else the standard deviation of what the headline figure summarises."""
    ci = m["summary"].get(f"{headline(m)[0]}_ci95")
    if ci is not None:
        return float(ci)
    samples = [s for s in m["samples"] if not s.get("warmup")]
    if m["type"] == "tcp-rr":
        values = [s["rtt_p50_ms"] for s in samples if "rtt_p50_ms" in s]
    elif m["type"] == "http-load":
        values = [s["requests_per_s"] for s in samples if s.get("requests")]
    elif m["type"] == "ping":
        values = [v for s in samples for v in s["rtts_ms"]]
    elif m["type"] == "iperf3":
        values = [s["throughput_mbps"] for s in samples]
    else:
        values = [r["latency_ms"] for s in samples for r in s.get("requests", [])
                  if "error" not in r]
    return statistics.pstdev(values) if len(values) > 1 else 0.0


def _label(params: dict[str, Any]) -> str:
    return "\n".join(f"{k.rsplit('.', 1)[-1]}={v}" for k, v in params.items()) or "run"


def render(data: dict[str, Any], out_dir: Path) -> list[Path]:
    """Write the plots; returns their paths."""
    out_dir.mkdir(parents=True, exist_ok=True)
    written = []
    names = list(dict.fromkeys(m["name"] for run in data["runs"] for m in run["measurements"]))
    for name in names:
        bars = [(_label(run["params"]), m) for run in data["runs"] for m in run["measurements"]
                if m["name"] == name and headline(m)[1] is not None]
        if bars:
            figure, axes = plt.subplots(figsize=(max(4.0, 1.2 * len(bars) + 2), 3.5))
            key = headline(bars[0][1])[0]
            axes.bar([label for label, _ in bars], [headline(m)[1] or 0.0 for _, m in bars],
                     yerr=[_spread(m) for _, m in bars], capsize=4, color="#4c72b0")
            axes.set_ylabel(UNITS.get(key, key))
            axes.set_title(f"{data['scenario']}: {name}")
            figure.tight_layout()
            written.append(_save(figure, out_dir / f"{name}.png"))
        written += _timeline(data, name, out_dir)
    return written


def _timeline(data: dict[str, Any], name: str, out_dir: Path) -> list[Path]:
    """Throughput or latency over time, with the run's events marked where they happened.
    Time 0 is the start of the run's measurements (a failover's: the fault)."""
    series = [(run, m) for run in data["runs"] for m in run["measurements"]
              if m["name"] == name and m["samples"] and
              (m["type"] in ("iperf3", "failover") or
               (run.get("events") and m["type"] in REQUEST_TYPES))]
    if not series:
        return []
    figure, axes = plt.subplots(figsize=(7, 3.5))
    marked: set[tuple[float, str]] = set()
    for run, m in series:
        label = _label(run["params"]).replace("\n", ", ")
        origin = run.get("timeline_start") if run.get("events") else None
        if m["type"] == "iperf3":
            for s in m["samples"]:
                offset = s["started_at"] - origin if origin else 0.0
                axes.plot([offset + i + 1 for i in range(len(s["intervals_mbps"]))],
                          s["intervals_mbps"], marker=".", label=f"{label} #{s['repeat']}")
            axes.set_xlabel("time (s)")
            axes.set_ylabel("throughput (Mbit/s)")
        elif m["type"] == "failover":
            sample = m["samples"][-1]
            origin = sample["failed_at"]
            _requests(axes, sample["requests"], origin, label)
            axes.axvline(0, color="#c44e52", linestyle="--", linewidth=1)
            axes.annotate(f"{sample['failed_node']} down", (0, 0.95),
                          xycoords=("data", "axes fraction"), fontsize=8)
            axes.set_xlabel("time since the fault (s)")
            axes.set_ylabel("request latency (ms)")
        else:
            assert origin is not None
            _requests(axes, [r for s in m["samples"] for r in s.get("requests", [])], origin,
                      label)
            axes.set_xlabel("time (s)")
            axes.set_ylabel("latency (ms)")
        for event in run.get("events", []) if origin else []:
            x = round(event["time"] - origin, 2)
            if (x, event["event"]) in marked:
                continue
            marked.add((x, event["event"]))
            axes.axvline(x, color="#555555", linestyle=":", linewidth=1)
            axes.annotate(event["event"], (x, 0.98), xycoords=("data", "axes fraction"),
                          rotation=90, va="top", ha="right", fontsize=7)
    axes.set_title(f"{data['scenario']}: {name} over time")
    axes.legend(fontsize=7)
    figure.tight_layout()
    return [_save(figure, out_dir / f"{name}-timeline.png")]


REQUEST_TYPES = ("http", "dns", "tcp-connect")  # samples with a list of timed requests


def _requests(axes: Any, requests: list[dict[str, Any]], origin: float, label: str) -> None:
    timed = [r for r in requests if "t" in r]  # older results.json: dns requests had no time
    ok = [(r["t"] - origin, r["latency_ms"]) for r in timed if "error" not in r]
    bad = [r["t"] - origin for r in timed if "error" in r]
    axes.scatter([t for t, _ in ok], [v for _, v in ok], s=6, label=f"{label} answered")
    if bad:
        axes.scatter(bad, [0.0] * len(bad), s=14, marker="x", color="#c44e52", label="failed")


def _save(figure: Any, path: Path) -> Path:
    figure.savefig(path, dpi=110)
    plt.close(figure)
    return path
