"""Measurements: ping and iperf3 between pods or nodes.

Each measurement type is a pair of pure functions — the command to run and the parser of its
output (unit-tested on captured output) — plus a runner that executes them in the right
namespaces. Samples go to the `record` callback as soon as they exist, so an interrupted run
keeps everything measured so far.
"""

from __future__ import annotations

import json
import math
import re
import statistics
import subprocess
import sys
import threading
import time
from collections import Counter
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from kemu.errors import KemuError

if TYPE_CHECKING:
    from kemu.cluster import Cluster
    from kemu.scenario import MeasurementSpec

IPERF3_PORT = 5399  # kemu's own measurement port, away from a workload's iperf3 on 5201

Sample = dict[str, Any]

# -- ping ----------------------------------------------------------------------------------

_PING_REPLY = re.compile(r"icmp_seq=(\d+) ttl=\d+ time=([0-9.]+) ms")
_PING_COUNTS = re.compile(r"(\d+) packets transmitted, (\d+) received")


def ping_command(target: str, params: dict[str, Any]) -> list[str]:
    return ["ping", "-n", "-c", str(params["count"]), "-i", str(params["interval"]),
            "-s", str(params["size"]), "-W", "2", target]


def parse_ping(output: str) -> Sample:
    """→ {sent, received, rtts_ms: [...]} from iputils ping output; a ping that could not
    send at all (e.g. "Network is unreachable") counts nothing and keeps its error."""
    counts = _PING_COUNTS.search(output)
    if not counts:
        return {"sent": 0, "received": 0, "rtts_ms": [], "error": output.strip()[-200:]}
    rtts = [float(m.group(2)) for m in _PING_REPLY.finditer(output)]
    return {"sent": int(counts.group(1)), "received": int(counts.group(2)), "rtts_ms": rtts}


def summarize_ping(samples: list[Sample]) -> dict[str, Any]:
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
                       rtt_stdev_ms=round(statistics.pstdev(rtts), 3))
    return summary


# -- iperf3 --------------------------------------------------------------------------------

def iperf3_server_command(port: int = IPERF3_PORT) -> list[str]:
    return ["iperf3", "--server", "--one-off", "--port", str(port), "--forceflush"]


def iperf3_client_command(target: str, params: dict[str, Any],
                          port: int = IPERF3_PORT) -> list[str]:
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


def summarize_iperf3(samples: list[Sample]) -> dict[str, Any]:
    rates = [s["throughput_mbps"] for s in samples]
    if not rates:
        return {}
    summary: dict[str, Any] = {
        "throughput_mbps": round(statistics.median(rates), 2),
        "throughput_mbps_mean": round(statistics.fmean(rates), 2),
        "throughput_mbps_stdev": round(statistics.pstdev(rates), 2),
    }
    if "retransmits" in samples[0]:
        summary["retransmits"] = sum(s["retransmits"] for s in samples)
    else:
        summary["jitter_ms"] = round(statistics.fmean(s["jitter_ms"] for s in samples), 4)
        summary["lost_pct"] = round(statistics.fmean(s["lost_pct"] for s in samples), 3)
    return summary


# -- http and dns (kemu/workloads/probe.py) -------------------------------------------------

def probe_command(kind: str, target: str, count: int, *options: str) -> list[str]:
    return [sys.executable, "-m", "kemu.workloads.probe", kind, target, "--count", str(count),
            *options]


def parse_probe(output: str) -> Sample:
    """→ {requests: [...]} from the probe's JSON lines."""
    return {"requests": [json.loads(line) for line in output.splitlines() if line.strip()]}


def percentile(values: list[float], p: float) -> float:
    """Nearest-rank percentile (p in 0..100) of a non-empty list."""
    ordered = sorted(values)
    return ordered[max(0, math.ceil(p / 100 * len(ordered)) - 1)]


def _latency_summary(requests: list[dict[str, Any]]) -> dict[str, Any]:
    ok = [r["latency_ms"] for r in requests if "error" not in r]
    summary: dict[str, Any] = {"requests": len(requests), "errors": len(requests) - len(ok)}
    if ok:
        summary.update(latency_min_ms=min(ok), latency_mean_ms=round(statistics.fmean(ok), 3),
                       latency_p50_ms=percentile(ok, 50), latency_p90_ms=percentile(ok, 90),
                       latency_p99_ms=percentile(ok, 99), latency_max_ms=max(ok))
    return summary


def summarize_http(samples: list[Sample]) -> dict[str, Any]:
    requests = [r for s in samples for r in s["requests"]]
    summary = _latency_summary(requests)
    # One request at a time, each on a new connection: the rate one client achieves.
    spans = [s["requests"][-1]["t"] + s["requests"][-1]["latency_ms"] / 1000 -
             s["requests"][0]["t"] for s in samples if s["requests"]]
    if spans and sum(spans) > 0:
        summary["requests_per_s"] = round(len(requests) / sum(spans), 1)
    summary["backends"] = dict(sorted(Counter(r["pod"] for r in requests if r.get("pod"))
                                      .items()))
    return summary


def summarize_dns(samples: list[Sample]) -> dict[str, Any]:
    requests = [r for s in samples for r in s["requests"]]
    summary = _latency_summary(requests)
    summary["answers"] = sorted({a for r in requests for a in r.get("addresses", [])})
    return summary


def summarize_failover(samples: list[Sample]) -> dict[str, Any]:
    """How long clients saw failures after the node went down, and what the load balancer
    itself noticed when."""
    summary: dict[str, Any] = {}
    for sample in samples[-1:]:
        failed_at = sample["failed_at"]
        requests = sample["requests"]
        after = [r for r in requests if r["t"] >= failed_at]
        failures = [r for r in after if "error" in r]
        summary = {"requests": len(requests), "failed_requests": len(failures),
                   "failed_before_fault": sum(1 for r in requests
                                              if r["t"] < failed_at and "error" in r)}
        # Recovered: after the last failed request, everything succeeds.
        summary["failover_s"] = round(failures[-1]["t"] + failures[-1]["latency_ms"] / 1000
                                      - failed_at, 3) if failures else 0.0
        if sample.get("detected_at"):
            summary["detected_s"] = round(sample["detected_at"] - failed_at, 3)
        summary["served_after"] = dict(sorted(Counter(
            r.get("node") for r in after if "error" not in r and r.get("node")).items()))
    return summary


# -- running -------------------------------------------------------------------------------

SUMMARIZERS: dict[str, Callable[[list[Sample]], dict[str, Any]]] = {
    "ping": summarize_ping, "iperf3": summarize_iperf3, "http": summarize_http,
    "dns": summarize_dns, "failover": summarize_failover,
}


def run_measurement(cluster: Cluster, spec: MeasurementSpec,
                    record: Callable[[Sample], None]) -> None:
    """Run every repeat of `spec`, handing each sample to `record` as it completes."""
    source = cluster.resolve(spec.source)
    target = cluster.resolve(spec.target) if spec.target else None
    for repeat in range(spec.params["repeat"]):
        started = time.time()
        if spec.type == "ping":
            assert target
            sample = _run_ping(source.prefix, target.ip, spec.params)
        elif spec.type == "iperf3":
            assert target
            sample = _run_iperf3(source.prefix, target.prefix, target.ip, spec.params)
        elif spec.type == "http":
            assert target
            url = f"http://{target.ip}:{target.port}{spec.params['path']}"
            host = ("--host", spec.params["host"]) if spec.params.get("host") else ()
            sample = _run_probe(source.prefix, "http", url, spec.params["count"], 5.0, *host)
        elif spec.type == "failover":
            assert target
            sample = _run_failover(cluster, source.prefix, target, spec.params)
        else:
            sample = _run_probe(source.prefix, "dns", spec.params["query"],
                                spec.params["count"], 5.0)
        record({"repeat": repeat, "started_at": started, **sample})


def _run_failover(cluster: Cluster, source: list[str], target: Any,
                  params: dict[str, Any]) -> Sample:
    """Paced requests to the load balancer; `at` seconds in, the node `fail` goes down; it
    comes back when the requests are done."""
    count = int(params["duration"] / params["interval"])
    url = f"http://{target.ip}:{target.port}{params['path']}"
    probe = subprocess.Popen([*source, *probe_command(
        "http", url, count, "--interval", str(params["interval"]), "--timeout",
        str(params["timeout"]))], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    down = False
    try:
        time.sleep(params["at"])
        failed_at = time.time()
        cluster.node_down(params["fail"])
        down = True
        out, err = probe.communicate(timeout=params["duration"] + params["timeout"] + 30)
    finally:
        if probe.poll() is None:
            probe.kill()
            probe.wait()
        if down:
            cluster.node_up(params["fail"])
    if probe.returncode != 0:
        raise KemuError(f"failover probe failed: {err.strip()[-300:]}")
    sample = parse_probe(out)
    nodes = {pod.spec.name: pod.node.name for pod in cluster.pods.values()}
    for record in sample["requests"]:
        if record.get("pod"):
            record["node"] = nodes.get(record["pod"], "")
    state = cluster.load_balancer_state() or {}
    detected = [e["time"] for e in state.get("events", []) if e["event"] == "unhealthy" and
                e["node"] == params["fail"] and e["time"] >= failed_at]
    return {"failed_at": failed_at, "failed_node": params["fail"],
            "detected_at": detected[0] if detected else None, **sample}


def _run_probe(source: list[str], kind: str, target: str, count: int,
               per_request_s: float, *options: str) -> Sample:
    proc = subprocess.run([*source, *probe_command(kind, target, count, *options)],
                          capture_output=True,
                          text=True, timeout=count * per_request_s + 10)
    if proc.returncode != 0:
        raise KemuError(f"{kind} probe failed: {proc.stderr.strip()[-300:]}")
    return parse_probe(proc.stdout)


def _run_ping(source: list[str], target_ip: str, params: dict[str, Any]) -> Sample:
    timeout = params["count"] * params["interval"] + 10
    proc = subprocess.run([*source, *ping_command(target_ip, params)], capture_output=True,
                          text=True, timeout=timeout)
    return parse_ping(proc.stdout + proc.stderr)


def _run_iperf3(source: list[str], target: list[str], target_ip: str,
                params: dict[str, Any]) -> Sample:
    server = subprocess.Popen([*target, *iperf3_server_command()], stdout=subprocess.PIPE,
                              stderr=subprocess.STDOUT, text=True, start_new_session=True)
    try:
        assert server.stdout is not None
        banner = ""
        while "listening" not in banner.lower():  # "Server listening on …" once bound
            line = server.stdout.readline()
            if not line:
                raise KemuError(f"iperf3 server did not start: {banner.strip()}")
            banner += line
        # Keep reading: with --forceflush it reports every second, and a full pipe would
        # stall it mid-test.
        threading.Thread(target=server.stdout.read, daemon=True).start()
        proc = subprocess.run([*source, *iperf3_client_command(target_ip, params)],
                              capture_output=True, text=True,
                              timeout=params["duration"] + 30)
        return parse_iperf3(proc.stdout)
    finally:
        server.kill()
        server.wait()
