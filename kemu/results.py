"""results.json: the full record of a run, rewritten (atomically) after every sample, so a run
that fails or is interrupted still leaves everything it measured on disk."""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any

from kemu import __version__
from kemu.measurements import SUMMARIZERS
from kemu.scenario import MeasurementSpec, Scenario

SCHEMA = "kemu.results/v1"


class Results:
    def __init__(self, out_dir: Path, first: Scenario, capabilities: dict[str, Any]):
        self.path = out_dir / "results.json"
        out_dir.mkdir(parents=True, exist_ok=True)
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
        tmp = self.path.with_suffix(".json.tmp")
        tmp.write_text(json.dumps(self.data, indent=2) + "\n")
        tmp.replace(self.path)

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
