"""results.json: the full record of a run, rewritten (atomically) after every sample, so a run
that fails or is interrupted still leaves everything it measured on disk; and results.csv, the
same samples as a tidy table (one observation per row, pandas-ready), appended as they come."""

from __future__ import annotations

import csv
import json
import threading
import time
from pathlib import Path
from typing import Any

from kemu import __version__
from kemu.files import write_atomic
from kemu.measure.base import kind, summarize
from kemu.scenario.model import MeasurementSpec, Scenario

SCHEMA = "kemu.results/v1"


class Results:
    def __init__(self, out_dir: Path, first: Scenario, capabilities: dict[str, Any]):
        self.path = out_dir / "results.json"
        self.csv_path = out_dir / "results.csv"
        # Background measurements and the event thread record alongside the main thread.
        self.lock = threading.RLock()
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
        with self.lock:
            write_atomic(self.path, json.dumps(self.data, indent=2) + "\n")

    def begin_run(self, params: dict[str, Any]) -> dict[str, Any]:
        run: dict[str, Any] = {"params": params, "status": "running", "cluster": None,
                               "measurements": []}
        with self.lock:
            self.data["runs"].append(run)
            self.save()
        return run

    def set_cluster(self, run: dict[str, Any], description: dict[str, Any]) -> None:
        with self.lock:
            run["cluster"] = description
            self.save()

    def begin(self, run: dict[str, Any], spec: MeasurementSpec) -> dict[str, Any]:
        source, target = kind(spec.type).ends(spec)
        entry: dict[str, Any] = {"name": spec.name, "type": spec.type, "from": source,
                                 "to": target, "params": spec.params, "samples": [],
                                 "summary": {}}
        with self.lock:
            run["measurements"].append(entry)
            self.save()
        return entry

    def set_timeline(self, run: dict[str, Any], start: float) -> None:
        """When the measurements began: time 0 of the run's events."""
        with self.lock:
            run["timeline_start"] = start
            run["events"] = []
            self.save()

    def add_event(self, run: dict[str, Any], record: dict[str, Any]) -> None:
        with self.lock:
            run["events"].append(record)
            self.save()
            number = next(i for i, r in enumerate(self.data["runs"], start=1) if r is run)
            with open(self.csv_path, "a", newline="") as f:
                csv.writer(f).writerow((number, json.dumps(run["params"], sort_keys=True), "",
                                        "event", "", record["target"], 0, 0, record["time"],
                                        "event_at_s", record["at"], record["event"]))

    def add_sample(self, entry: dict[str, Any], sample: dict[str, Any]) -> None:
        with self.lock:
            self._add_sample(entry, sample)

    def _add_sample(self, entry: dict[str, Any], sample: dict[str, Any]) -> None:
        entry["samples"].append(sample)
        entry["summary"] = summarize(entry["type"], entry["samples"])
        self.save()
        number, run = next((i, r) for i, r in enumerate(self.data["runs"], start=1)
                           if any(m is entry for m in r["measurements"]))
        with open(self.csv_path, "a", newline="") as f:
            csv.writer(f).writerows(csv_rows(number, run["params"], entry, sample))

    def finish_run(self, run: dict[str, Any], status: str, error: str = "") -> None:
        with self.lock:
            run["status"] = status
            if error:
                run["error"] = error
            self.save()

    def finish(self, status: str, error: str = "") -> None:
        with self.lock:
            self.data["status"] = status
            self.data["finished_at"] = _now()
            if error:
                self.data["error"] = error
            self.save()


CSV_COLUMNS = ("run", "params", "measurement", "type", "from", "to", "repeat", "index",
               "time", "metric", "value", "label")


def csv_rows(run: int, params: dict[str, Any], entry: dict[str, Any],
             sample: dict[str, Any]) -> list[tuple[Any, ...]]:
    """One row per observation of a sample, as its kind counts them (each RTT of a ping, each
    request of http, …). Warm-up repeats have negative `repeat` numbers (-N…-1)."""
    head = (run, json.dumps(params, sort_keys=True), entry["name"], entry["type"],
            entry["from"], entry["to"], sample.get("repeat", 0))
    return [(*head, *row) for row in kind(entry["type"]).csv_rows(sample)]


def _now() -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%S%z")
