"""Plots of a results.json, as PNG files in <results>/plots/ (matplotlib, no display needed).

- one bar chart per measurement: its headline figure for every run (matrix combination),
  with the spread of its samples as error bars;
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
         "latency_p50_ms": "latency p50 (ms)", "failover_s": "failover (s)"}


def _spread(m: dict[str, Any]) -> float:
    """Standard deviation of what the headline figure summarises."""
    samples = m["samples"]
    if m["type"] == "ping":
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
    series = [(run["params"], m) for run in data["runs"] for m in run["measurements"]
              if m["name"] == name and m["type"] in ("iperf3", "failover") and m["samples"]]
    if not series:
        return []
    figure, axes = plt.subplots(figsize=(7, 3.5))
    for params, m in series:
        label = _label(params).replace("\n", ", ")
        if m["type"] == "iperf3":
            for s in m["samples"]:
                axes.plot(range(1, len(s["intervals_mbps"]) + 1), s["intervals_mbps"],
                          marker=".", label=f"{label} #{s['repeat']}")
            axes.set_xlabel("time (s)")
            axes.set_ylabel("throughput (Mbit/s)")
        else:
            sample = m["samples"][-1]
            t0 = sample["failed_at"]
            ok = [(r["t"] - t0, r["latency_ms"]) for r in sample["requests"] if "error" not in r]
            bad = [r["t"] - t0 for r in sample["requests"] if "error" in r]
            axes.scatter([t for t, _ in ok], [v for _, v in ok], s=6, label=f"{label} answered")
            axes.scatter(bad, [0.0] * len(bad), s=14, marker="x", color="#c44e52",
                         label="failed")
            axes.axvline(0, color="#c44e52", linestyle="--", linewidth=1)
            axes.annotate(f"{sample['failed_node']} down", (0, 0.95),
                          xycoords=("data", "axes fraction"), fontsize=8)
            axes.set_xlabel("time since the fault (s)")
            axes.set_ylabel("request latency (ms)")
    axes.set_title(f"{data['scenario']}: {name} over time")
    axes.legend(fontsize=7)
    figure.tight_layout()
    return [_save(figure, out_dir / f"{name}-timeline.png")]


def _save(figure: Any, path: Path) -> Path:
    figure.savefig(path, dpi=110)
    plt.close(figure)
    return path
