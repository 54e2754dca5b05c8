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
from kemu.measurements import summarize
from kemu.scenario import MeasurementSpec, Scenario

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
        to = str(spec.target) if spec.target else spec.params.get("query", "")
        entry: dict[str, Any] = {"name": spec.name, "type": spec.type,
                                 "from": str(spec.source), "to": to, "params": spec.params,
                                 "samples": [], "summary": {}}
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
    """One row per observation: each RTT of a ping, each repeat of iperf3 (and each of its
    one-second intervals), each request of http/dns/failover, each connect of tcp-connect,
    the figures of each repeat of tcp-rr and http-load. Warm-up repeats have negative
    `repeat` numbers (-N…-1)."""
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
    elif entry["type"] == "tcp-rr":
        rows += [(*head, 0, t, k, sample[k], "") for k in
                 ("rtt_avg_ms", "rtt_stdev_ms", "rtt_min_ms", "rtt_p50_ms", "rtt_p90_ms",
                  "rtt_p99_ms", "rtt_max_ms", "transactions_per_s", "observations")
                 if k in sample]
        if "error" in sample:
            rows.append((*head, 0, t, "error", 1, sample["error"]))
    elif entry["type"] == "http-load":
        rows += [(*head, 0, t, k, sample[k], "") for k in
                 ("requests_per_s", "transfer_mbps", "requests", "latency_avg_ms",
                  "latency_p50_ms", "latency_p75_ms", "latency_p90_ms", "latency_p99_ms",
                  "latency_max_ms") if k in sample]
        rows += [(*head, 0, t, "errors", n, kind)
                 for kind, n in sample.get("errors", {}).items() if n]
        if "error" in sample:
            rows.append((*head, 0, t, "error", 1, sample["error"]))
    else:
        metric = "connect_ms" if entry["type"] == "tcp-connect" else "latency_ms"
        for i, r in enumerate(sample.get("requests", [])):
            label = r.get("error") or r.get("pod") or " ".join(r.get("addresses", []))
            rows.append((*head, i, r.get("t", t), metric, r["latency_ms"], label))
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
    key = HEADLINES[m["type"]]
    return key, s.get(key)


# The headline figure of each measurement type; its 95 % CI over repeats, when there were
# several, is `<key>_ci95` in the summary.
HEADLINES = {"ping": "rtt_avg_ms", "iperf3": "throughput_mbps", "http": "latency_p50_ms",
             "dns": "latency_p50_ms", "failover": "failover_s", "tcp-rr": "rtt_p50_ms",
             "tcp-connect": "connect_p50_ms", "http-load": "requests_per_s"}


def _ci(s: dict[str, Any], key: str, unit: str) -> str:
    return f" ±{s[key + '_ci95']:g}{unit} (95 % CI, {s.get('repeats')} repeats)" \
        if key + "_ci95" in s else ""


def _warmup(s: dict[str, Any]) -> str:
    return f", {s['warmup_repeats']} warm-up" if s.get("warmup_repeats") else ""


def _describe(m: dict[str, Any]) -> str:
    s = m["summary"]
    if s.get("warmup_repeats") and not s.get("repeats"):
        return "warm-up only so far"
    if m["type"] == "ping":
        if "rtt_avg_ms" not in s:
            return f"no reply, loss {s.get('loss_pct') or 100:g} %"
        return (f"rtt min/avg/max {s['rtt_min_ms']:.3f}/{s['rtt_avg_ms']:.3f}/"
                f"{s['rtt_max_ms']:.3f} ms{_ci(s, 'rtt_avg_ms', ' ms')}, loss "
                f"{s['loss_pct']:g} %{_warmup(s)}")
    if not s or not s.get("repeats", 1):
        return "no samples"
    if m["type"] == "tcp-rr":
        if "rtt_p50_ms" not in s:
            return f"failed: {s.get('error', 'no observations')}"
        return (f"rtt p50/p90/p99 {s['rtt_p50_ms']:.4f}/{s['rtt_p90_ms']:.4f}/"
                f"{s['rtt_p99_ms']:.4f} ms{_ci(s, 'rtt_p50_ms', ' ms')}, avg "
                f"{s['rtt_avg_ms']:.4f} ms, {s['transactions_per_s']:g} transactions/s"
                f"{_warmup(s)}")
    if m["type"] == "http-load":
        if "requests_per_s" not in s:
            return f"failed: {s.get('error', 'no requests')}"
        kinds = " ".join(f"{k}:{v}" for k, v in s.get("error_kinds", {}).items())
        return (f"{s['requests_per_s']:g} req/s{_ci(s, 'requests_per_s', '')}, "
                f"{s.get('transfer_mbps', 0):g} Mbit/s, latency p50/p90/p99 "
                f"{s.get('latency_p50_ms', 0):.3f}/{s.get('latency_p90_ms', 0):.3f}/"
                f"{s.get('latency_p99_ms', 0):.3f} ms, {s['errors']} errors"
                + (f" ({kinds})" if kinds else "") + _warmup(s))
    if m["type"] == "tcp-connect":
        if "connect_p50_ms" not in s:
            return f"{s['errors']}/{s['requests']} failed: " + \
                ", ".join(s.get("error_kinds", {}))
        return (f"connect p50/p90/p99 {s['connect_p50_ms']:.3f}/{s['connect_p90_ms']:.3f}/"
                f"{s['connect_p99_ms']:.3f} ms{_ci(s, 'connect_p50_ms', ' ms')}, "
                f"{s['errors']}/{s['requests']} failed{_warmup(s)}")
    if m["type"] == "failover":
        detected = f", detected after {s['detected_s']} s" if "detected_s" in s else ""
        return (f"{s.get('failed_requests', 0)}/{s.get('requests', 0)} requests failed; "
                f"recovered {s.get('failover_s', 0)} s after the fault{detected}; then "
                + " ".join(f"{n}:{c}" for n, c in s.get("served_after", {}).items()))
    if m["type"] in ("http", "dns"):
        if "latency_p50_ms" not in s:
            kinds = "; ".join(s.get("error_kinds", {}))
            took = s.get("failed_latency_p50_ms")
            return (f"{s['errors']}/{s['requests']} failed" + (f" ({kinds})" if kinds else "")
                    + (f", p50 {took:.3f} ms to fail" if took is not None else ""))
        result = (f"p50/p90/p99 {s['latency_p50_ms']:.3f}/{s['latency_p90_ms']:.3f}/"
                  f"{s['latency_p99_ms']:.3f} ms{_ci(s, 'latency_p50_ms', ' ms')}, "
                  f"{s['errors']} errors{_warmup(s)}")
        if s.get("requests_per_s"):
            result += f", {s['requests_per_s']:g} req/s"
        if s.get("backends"):
            result += ", " + " ".join(f"{pod}:{n}" for pod, n in s["backends"].items())
        if s.get("answers"):
            result += ", " + " ".join(s["answers"])
        return result
    result = f"{s['throughput_mbps']:.1f} Mbit/s{_ci(s, 'throughput_mbps', '')}{_warmup(s)}"
    if "retransmits" in s:
        return result + f", {s['retransmits']} retransmits"
    return result + f", jitter {s['jitter_ms']} ms, lost {s['lost_pct']} %"
