"""results.json: the full record of a run, rewritten (atomically) after every sample, so a run
that fails or is interrupted still leaves everything it measured on disk; and results.csv, the
same samples as a tidy table (one observation per row, pandas-ready), appended as they come."""

from __future__ import annotations

import csv
import json
import time
from pathlib import Path
from typing import Any

from kemu import __version__
from kemu.files import write_atomic
from kemu.measurements import SUMMARIZERS
from kemu.scenario import MeasurementSpec, Scenario

SCHEMA = "kemu.results/v1"


class Results:
    def __init__(self, out_dir: Path, first: Scenario, capabilities: dict[str, Any]):
        self.path = out_dir / "results.json"
        self.csv_path = out_dir / "results.csv"
        out_dir.mkdir(parents=True, exist_ok=True)
        with open(self.csv_path, "w", newline="") as f:
            csv.writer(f).writerow(CSV_COLUMNS)
        self.data: dict[str, Any] = {
            "schema": SCHEMA,
            "scenario": first.name,
            "description": first.description,
            "scenario_file": first.path,
            "kemu_version": __version__,
            "started_at": _now(),
            "finished_at": None,
            "status": "running",
            "capabilities": capabilities,
            "runs": [],  # one per matrix combination (one in all without a matrix)
        }
        self.save()

    def save(self) -> None:
        write_atomic(self.path, json.dumps(self.data, indent=2) + "\n")

    def begin_run(self, params: dict[str, Any]) -> dict[str, Any]:
        run: dict[str, Any] = {"params": params, "status": "running", "cluster": None,
                               "measurements": []}
        self.data["runs"].append(run)
        self.save()
        return run

    def set_cluster(self, run: dict[str, Any], description: dict[str, Any]) -> None:
        run["cluster"] = description
        self.save()

    def begin(self, run: dict[str, Any], spec: MeasurementSpec) -> dict[str, Any]:
        to = str(spec.target) if spec.target else spec.params.get("query", "")
        entry: dict[str, Any] = {"name": spec.name, "type": spec.type,
                                 "from": str(spec.source), "to": to, "params": spec.params,
                                 "samples": [], "summary": {}}
        run["measurements"].append(entry)
        self.save()
        return entry

    def add_sample(self, entry: dict[str, Any], sample: dict[str, Any]) -> None:
        entry["samples"].append(sample)
        entry["summary"] = SUMMARIZERS[entry["type"]](entry["samples"])
        self.save()
        number, run = next((i, r) for i, r in enumerate(self.data["runs"], start=1)
                           if any(m is entry for m in r["measurements"]))
        with open(self.csv_path, "a", newline="") as f:
            csv.writer(f).writerows(csv_rows(number, run["params"], entry, sample))

    def finish_run(self, run: dict[str, Any], status: str, error: str = "") -> None:
        run["status"] = status
        if error:
            run["error"] = error
        self.save()

    def finish(self, status: str, error: str = "") -> None:
        self.data["status"] = status
        self.data["finished_at"] = _now()
        if error:
            self.data["error"] = error
        self.save()


CSV_COLUMNS = ("run", "params", "measurement", "type", "from", "to", "repeat", "index",
               "time", "metric", "value", "label")


def csv_rows(run: int, params: dict[str, Any], entry: dict[str, Any],
             sample: dict[str, Any]) -> list[tuple[Any, ...]]:
    """One row per observation: each RTT of a ping, each repeat of iperf3 (and each of its
    one-second intervals), each request of http/dns/failover."""
    head = (run, json.dumps(params, sort_keys=True), entry["name"], entry["type"],
            entry["from"], entry["to"], sample.get("repeat", 0))
    t = sample.get("started_at", "")
    rows: list[tuple[Any, ...]] = []
    if entry["type"] == "ping":
        rows += [(*head, i, t, "rtt_ms", v, "") for i, v in enumerate(sample["rtts_ms"])]
        rows.append((*head, 0, t, "lost", sample["sent"] - sample["received"], ""))
    elif entry["type"] == "iperf3":
        rows += [(*head, 0, t, k, sample[k], "") for k in
                 ("throughput_mbps", "retransmits", "jitter_ms", "lost_pct") if k in sample]
        rows += [(*head, i, t, "interval_mbps", v, "")
                 for i, v in enumerate(sample.get("intervals_mbps", []))]
    else:
        for i, r in enumerate(sample.get("requests", [])):
            label = r.get("error") or r.get("pod") or " ".join(r.get("addresses", []))
            rows.append((*head, i, r.get("t", t), "latency_ms", r["latency_ms"], label))
    return rows


def _now() -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%S%z")


def summary_rows(data: dict[str, Any]) -> list[tuple[str, str, str, str, str, str]]:
    """(run, name, type, from, to, result) per measurement, for the summary table."""
    rows = []
    for run in data["runs"]:
        label = ", ".join(f"{k.rsplit('.', 1)[-1]}={v}" for k, v in run["params"].items())
        for m in run["measurements"]:
            rows.append((label, m["name"], m["type"], m["from"], m["to"], _describe(m)))
        if run["status"] == "failed":
            rows.append((label, "", "", "", "", f"failed: {run.get('error', '')[:120]}"))
    return rows


def headline(m: dict[str, Any]) -> tuple[str, float | None]:
    """The one figure that sums a measurement up, for comparisons."""
    s = m["summary"]
    key = {"ping": "rtt_avg_ms", "iperf3": "throughput_mbps", "http": "latency_p50_ms",
           "dns": "latency_p50_ms", "failover": "failover_s"}[m["type"]]
    return key, s.get(key)


def _describe(m: dict[str, Any]) -> str:
    s = m["summary"]
    if m["type"] == "ping":
        if "rtt_avg_ms" not in s:
            return f"no reply, loss {s.get('loss_pct') or 100:g} %"
        return (f"rtt min/avg/max {s['rtt_min_ms']:.3f}/{s['rtt_avg_ms']:.3f}/"
                f"{s['rtt_max_ms']:.3f} ms, loss {s['loss_pct']:g} %")
    if not s:
        return "no samples"
    if m["type"] == "failover":
        detected = f", detected after {s['detected_s']} s" if "detected_s" in s else ""
        return (f"{s.get('failed_requests', 0)}/{s.get('requests', 0)} requests failed; "
                f"recovered {s.get('failover_s', 0)} s after the fault{detected}; then "
                + " ".join(f"{n}:{c}" for n, c in s.get("served_after", {}).items()))
    if m["type"] in ("http", "dns"):
        if "latency_p50_ms" not in s:
            return f"{s['errors']}/{s['requests']} failed"
        result = (f"p50/p90/p99 {s['latency_p50_ms']:.3f}/{s['latency_p90_ms']:.3f}/"
                  f"{s['latency_p99_ms']:.3f} ms, {s['errors']} errors")
        if s.get("requests_per_s"):
            result += f", {s['requests_per_s']:g} req/s"
        if s.get("backends"):
            result += ", " + " ".join(f"{pod}:{n}" for pod, n in s["backends"].items())
        if s.get("answers"):
            result += ", " + " ".join(s["answers"])
        return result
    result = f"{s['throughput_mbps']:.1f} Mbit/s"
    if "retransmits" in s:
        return result + f", {s['retransmits']} retransmits"
    return result + f", jitter {s['jitter_ms']} ms, lost {s['lost_pct']} %"
