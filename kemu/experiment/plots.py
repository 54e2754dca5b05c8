"""Plots of a results.json, as PNG files in <results>/plots/ (matplotlib, no display needed).

- one bar chart per measurement: its headline figure for every run (matrix combination),
  with error bars: the 95 % confidence interval over repeats when there were several, else
  the spread (stdev) of what the figure summarises, as its kind says;
- one time series per measurement whose kind has one (iperf3's per-second throughput, a
  failover's requests around the fault, requests when the run had events), with the run's
  events marked where they happened.
"""

from __future__ import annotations

import statistics
from pathlib import Path
from typing import Any

import matplotlib

matplotlib.use("Agg")  # files only: no display, no GUI toolkit

import matplotlib.pyplot as plt  # noqa: E402 (after choosing the backend)

from kemu.measure.base import TimeSeries, headline, kind  # noqa: E402


def _spread(m: dict[str, Any]) -> float:
    """The 95 % CI (half-width) of the headline figure over repeats if the summary has one,
    else the standard deviation of what the headline figure summarises."""
    ci = m["summary"].get(f"{headline(m)[0]}_ci95")
    if ci is not None:
        return float(ci)
    values = kind(m["type"]).spread([s for s in m["samples"] if not s.get("warmup")])
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
            axes.bar([label for label, _ in bars], [headline(m)[1] or 0.0 for _, m in bars],
                     yerr=[_spread(m) for _, m in bars], capsize=4, color="#4c72b0")
            axes.set_ylabel(kind(bars[0][1]["type"]).unit)
            axes.set_title(f"{data['scenario']}: {name}")
            figure.tight_layout()
            written.append(_save(figure, out_dir / f"{name}.png"))
        written += _timeline(data, name, out_dir)
    return written


def _timeline(data: dict[str, Any], name: str, out_dir: Path) -> list[Path]:
    """Every run's time series of this measurement on one plot."""
    plots: list[tuple[dict[str, Any], TimeSeries]] = []
    for run in data["runs"]:
        for m in run["measurements"]:
            if m["name"] == name and m["samples"]:
                plot = kind(m["type"]).timeline(run, m, _label(run["params"]).replace("\n", ", "))
                if plot is not None:
                    plots.append((run, plot))
    if not plots:
        return []
    figure, axes = plt.subplots(figsize=(7, 3.5))
    marked: set[tuple[float, str]] = set()
    for run, plot in plots:
        for series in plot.series:
            if series.style == "line":
                axes.plot(series.xs, series.ys, marker=".", label=series.label)
            elif series.style == "points":
                axes.scatter(series.xs, series.ys, s=6, label=series.label)
            else:
                axes.scatter(series.xs, series.ys, s=14, marker="x", color="#c44e52",
                             label=series.label)
        for x, text in plot.marks:
            axes.axvline(x, color="#c44e52", linestyle="--", linewidth=1)
            axes.annotate(text, (x, 0.95), xycoords=("data", "axes fraction"), fontsize=8)
        axes.set_xlabel(plot.xlabel)
        axes.set_ylabel(plot.ylabel)
        for event in run.get("events", []) if plot.origin else []:
            x = round(event["time"] - plot.origin, 2)
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


def _save(figure: Any, path: Path) -> Path:
    figure.savefig(path, dpi=110)
    plt.close(figure)
    return path
