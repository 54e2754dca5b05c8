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
    def __init__(self, out_dir: Path, scenario: Scenario, capabilities: dict[str, Any]):
        self.path = out_dir / "results.json"
        out_dir.mkdir(parents=True, exist_ok=True)
        self.data: dict[str, Any] = {
            "schema": SCHEMA,
            "scenario": scenario.name,
            "description": scenario.description,
            "scenario_file": scenario.path,
            "kemu_version": __version__,
            "started_at": _now(),
            "finished_at": None,
            "status": "running",
            "capabilities": capabilities,
            "cluster": None,
            "measurements": [],
        }
        self.save()

    def save(self) -> None:
        tmp = self.path.with_suffix(".json.tmp")
        tmp.write_text(json.dumps(self.data, indent=2) + "\n")
        tmp.replace(self.path)

    def set_cluster(self, description: dict[str, Any]) -> None:
        self.data["cluster"] = description
        self.save()

    def begin(self, spec: MeasurementSpec) -> dict[str, Any]:
        entry = {"name": spec.name, "type": spec.type, "from": str(spec.source),
                 "to": str(spec.target), "params": spec.params, "samples": [], "summary": {}}
        self.data["measurements"].append(entry)
        self.save()
        return entry

    def add_sample(self, entry: dict[str, Any], sample: dict[str, Any]) -> None:
        entry["samples"].append(sample)
        entry["summary"] = SUMMARIZERS[entry["type"]](entry["samples"])
        self.save()

    def finish(self, status: str, error: str = "") -> None:
        self.data["status"] = status
        self.data["finished_at"] = _now()
        if error:
            self.data["error"] = error
        self.save()


def _now() -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%S%z")


def summary_rows(data: dict[str, Any]) -> list[tuple[str, str, str, str, str]]:
    """(name, type, from, to, result) per measurement, for the summary table."""
    rows = []
    for m in data["measurements"]:
        s = m["summary"]
        if m["type"] == "ping" and "rtt_avg_ms" in s:
            result = (f"rtt min/avg/max {s['rtt_min_ms']:.3f}/{s['rtt_avg_ms']:.3f}/"
                      f"{s['rtt_max_ms']:.3f} ms, loss {s['loss_pct']:g} %")
        elif m["type"] == "ping":
            result = f"no reply, loss {s.get('loss_pct', 100):g} %"
        elif m["type"] == "iperf3" and s:
            result = f"{s['throughput_mbps']:.1f} Mbit/s"
            if "retransmits" in s:
                result += f", {s['retransmits']} retransmits"
            else:
                result += f", jitter {s['jitter_ms']} ms, lost {s['lost_pct']} %"
        else:
            result = "no samples"
        rows.append((m["name"], m["type"], m["from"], m["to"], result))
    return rows
