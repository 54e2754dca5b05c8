"""Measurements: ping, iperf3, sockperf (tcp-rr), wrk (http-load) and kemu's own probe (http,
dns, tcp-connect, failover) between pods, nodes, Services and external hosts.

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

from kemu import stats
from kemu.errors import KemuError
from kemu.stats import percentile

if TYPE_CHECKING:
    from kemu.cluster import Cluster
    from kemu.scenario import MeasurementSpec

IPERF3_PORT = 5399  # kemu's own measurement port, away from a workload's iperf3 on 5201
SOCKPERF_PORT = 5398  # tcp-rr's server, unless the measurement names a `port`

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
                       rtt_stdev_ms=round(statistics.pstdev(rtts), 3),
                       rtt_p90_ms=percentile(rtts, 90), rtt_p99_ms=percentile(rtts, 99))
        summary.update(stats.over_repeats("rtt_avg_ms", [
            statistics.fmean(s["rtts_ms"]) for s in samples if s["rtts_ms"]]))
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
        "throughput_mbps_min": min(rates), "throughput_mbps_max": max(rates),
        **stats.over_repeats("throughput_mbps", rates, 2),
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


def _p50(requests: list[dict[str, Any]]) -> float | None:
    ok = [r["latency_ms"] for r in requests if "error" not in r]
    return percentile(ok, 50) if ok else None


def _latency_summary(samples: list[Sample], prefix: str = "latency") -> dict[str, Any]:
    """Statistics of the successful requests of all repeats, and the 95 % CI of the
    per-repeat p50 (the headline figure)."""
    requests = [r for s in samples for r in s["requests"]]
    ok = [r["latency_ms"] for r in requests if "error" not in r]
    summary: dict[str, Any] = {"requests": len(requests), "errors": len(requests) - len(ok)}
    if ok:
        d = stats.describe(ok)
        summary.update({f"{prefix}_min_ms": d["min"], f"{prefix}_mean_ms": d["mean"],
                        f"{prefix}_p50_ms": d["p50"], f"{prefix}_p90_ms": d["p90"],
                        f"{prefix}_p99_ms": d["p99"], f"{prefix}_max_ms": d["max"],
                        f"{prefix}_stdev_ms": d["stdev"]})
        summary.update(stats.over_repeats(f"{prefix}_p50_ms",
                                          [_p50(s["requests"]) for s in samples]))
    if requests and len(ok) < len(requests):
        failed = [r for r in requests if "error" in r]
        summary["error_kinds"] = dict(Counter(r["error"] for r in failed).most_common(3))
        # How long a failure took is a result too: a timeout, or a resolver that gave up
        # after trying its whole search list.
        summary["failed_latency_p50_ms"] = percentile([r["latency_ms"] for r in failed], 50)
    return summary


def summarize_http(samples: list[Sample]) -> dict[str, Any]:
    requests = [r for s in samples for r in s["requests"]]
    summary = _latency_summary(samples)
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
    summary = _latency_summary(samples)
    summary["answers"] = sorted({a for r in requests for a in r.get("addresses", [])})
    return summary


def _failover_one(sample: Sample) -> dict[str, Any]:
    failed_at = sample["failed_at"]
    requests = sample["requests"]
    after = [r for r in requests if r["t"] >= failed_at]
    failures = [r for r in after if "error" in r]
    one: dict[str, Any] = {
        "requests": len(requests), "failed_requests": len(failures),
        "failed_before_fault": sum(1 for r in requests if r["t"] < failed_at and "error" in r),
        # Recovered: after the last failed request, everything succeeds.
        "failover_s": round(failures[-1]["t"] + failures[-1]["latency_ms"] / 1000 - failed_at,
                            3) if failures else 0.0,
        "served_after": Counter(r.get("node") for r in after
                                if "error" not in r and r.get("node")),
    }
    if sample.get("detected_at"):
        one["detected_s"] = round(sample["detected_at"] - failed_at, 3)
    return one


def summarize_failover(samples: list[Sample]) -> dict[str, Any]:
    """How long clients saw failures after the node went down, and what the load balancer
    itself noticed when: request counts summed over the repeats, times averaged (with their
    spread and 95 % CI when there are several repeats)."""
    if not samples:
        return {}
    each = [_failover_one(s) for s in samples]
    summary: dict[str, Any] = {k: sum(e[k] for e in each)
                               for k in ("requests", "failed_requests", "failed_before_fault")}
    times = [e["failover_s"] for e in each]
    summary["failover_s"] = round(statistics.fmean(times), 3)
    if len(times) > 1:
        d = stats.describe(times)
        summary.update(failover_s_min=d["min"], failover_s_max=d["max"],
                       failover_s_stdev=d["stdev"], **stats.over_repeats("failover_s", times))
    detected = [e["detected_s"] for e in each if "detected_s" in e]
    if detected:
        summary["detected_s"] = round(statistics.fmean(detected), 3)
    summary["served_after"] = dict(sorted(sum((e["served_after"] for e in each),
                                              Counter()).items()))
    return summary


# -- tcp-rr: TCP request/response with sockperf ------------------------------------------------

_ANSI = re.compile(r"\x1b\[[0-9;]*m")
_SOCKPERF_AVG = re.compile(r"avg-(rtt|latency)=([0-9.]+) \(std-dev=([0-9.]+)\)")
_SOCKPERF_PCT = re.compile(r"percentile ([0-9.]+) =\s*([0-9.]+)")
_SOCKPERF_MINMAX = re.compile(r"<(MIN|MAX)> observation =\s*([0-9.]+)")
_SOCKPERF_VALID = re.compile(r"\[Valid Duration\] RunTime=([0-9.]+) sec; SentMessages=(\d+); "
                             r"ReceivedMessages=(\d+)")
_SOCKPERF_DROPPED = re.compile(r"# dropped messages = (\d+)")
_SOCKPERF_ERROR = re.compile(r"ERROR: (.*)")


def sockperf_server_command(port: int) -> list[str]:
    return ["sockperf", "server", "--tcp", "-p", str(port)]


def sockperf_client_command(target: str, params: dict[str, Any], port: int) -> list[str]:
    return ["sockperf", "ping-pong", "--tcp", "-i", target, "-p", str(port),
            "-t", str(int(params["duration"])), "--msg-size", str(params["size"]), "--full-rtt"]


def parse_sockperf(output: str) -> Sample:
    """→ {rtt_avg_ms, rtt_stdev_ms, rtt_min_ms, rtt_max_ms, rtt_pNN_ms (25, 50, 75, 90, 99,
    99.9 as p999), observations, duration_s, transactions_per_s, dropped} of one ping-pong run;
    times are round trips (`--full-rtt`; half-RTT "latency" output is doubled). A run that did
    not measure keeps sockperf's error and has no observations."""
    text = _ANSI.sub("", output)
    avg = _SOCKPERF_AVG.search(text)
    valid = _SOCKPERF_VALID.search(text)
    if not avg or not valid:
        error = _SOCKPERF_ERROR.search(text)
        return {"observations": 0,
                "error": error.group(1).strip() if error else text.strip()[-200:]}
    scale = 1e-3 * (2 if avg.group(1) == "latency" else 1)  # µs → ms (of a round trip)
    sample: Sample = {"rtt_avg_ms": round(float(avg.group(2)) * scale, 4),
                      "rtt_stdev_ms": round(float(avg.group(3)) * scale, 4)}
    for which, value in _SOCKPERF_MINMAX.findall(text):
        sample[f"rtt_{which.lower()}_ms"] = round(float(value) * scale, 4)
    names = {25.0: "p25", 50.0: "p50", 75.0: "p75", 90.0: "p90", 99.0: "p99", 99.9: "p999"}
    for pct, value in _SOCKPERF_PCT.findall(text):
        if float(pct) in names:
            sample[f"rtt_{names[float(pct)]}_ms"] = round(float(value) * scale, 4)
    runtime, received = float(valid.group(1)), int(valid.group(3))
    dropped = _SOCKPERF_DROPPED.search(text)
    sample.update(observations=received, duration_s=runtime,
                  transactions_per_s=round(received / runtime, 1) if runtime else None,
                  dropped=int(dropped.group(1)) if dropped else 0)
    return sample


def summarize_tcp_rr(samples: list[Sample]) -> dict[str, Any]:
    """Over the repeats: the observation-weighted mean and pooled stdev of the round trip,
    min and max, and percentiles as the mean of each repeat's (exact with one repeat);
    headline rtt_p50_ms, with its 95 % CI over repeats."""
    ok = [s for s in samples if s.get("observations")]
    summary: dict[str, Any] = {"observations": sum(s["observations"] for s in ok),
                               "errors": len(samples) - len(ok)}
    if len(ok) < len(samples):
        summary["error"] = next(s.get("error", "") for s in reversed(samples)
                                if not s.get("observations"))
    if not ok:
        return summary
    n = summary["observations"]
    mean = sum(s["rtt_avg_ms"] * s["observations"] for s in ok) / n
    pooled = sum(s["observations"] * (s["rtt_stdev_ms"] ** 2 + (s["rtt_avg_ms"] - mean) ** 2)
                 for s in ok) / n
    summary.update(rtt_avg_ms=round(mean, 4), rtt_stdev_ms=round(math.sqrt(pooled), 4),
                   rtt_min_ms=min(s["rtt_min_ms"] for s in ok),
                   rtt_max_ms=max(s["rtt_max_ms"] for s in ok))
    for p in ("p50", "p90", "p99"):
        summary[f"rtt_{p}_ms"] = round(statistics.fmean(s[f"rtt_{p}_ms"] for s in ok), 4)
    summary["transactions_per_s"] = round(statistics.fmean(s["transactions_per_s"] for s in ok),
                                          1)
    summary["dropped"] = sum(s.get("dropped", 0) for s in ok)
    summary.update(stats.over_repeats("rtt_p50_ms", [s["rtt_p50_ms"] for s in ok], 4))
    return summary


# -- http-load: HTTP under load with wrk -------------------------------------------------------

_WRK_TIME = {"us": 1e-3, "ms": 1.0, "s": 1e3, "m": 60e3, "h": 3600e3}
_WRK_BYTES = {"B": 1, "KB": 1 << 10, "MB": 1 << 20, "GB": 1 << 30, "TB": 1 << 40}
_WRK_LATENCY = re.compile(r"^\s*Latency\s+([0-9.]+)(us|ms|s|m|h)\s+([0-9.]+)(us|ms|s|m|h)\s+"
                          r"([0-9.]+)(us|ms|s|m|h)", re.M)
_WRK_DIST = re.compile(r"^\s*(50|75|90|99)%\s+([0-9.]+)(us|ms|s|m|h)", re.M)
_WRK_TOTAL = re.compile(r"(\d+) requests in ([0-9.]+)(us|ms|s|m|h), ([0-9.]+)(B|KB|MB|GB|TB) "
                        r"read")
_WRK_SOCKET = re.compile(r"Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)")
_WRK_STATUS = re.compile(r"Non-2xx or 3xx responses: (\d+)")
_WRK_RATE = re.compile(r"Requests/sec:\s+([0-9.]+)")
_WRK_TRANSFER = re.compile(r"Transfer/sec:\s+([0-9.]+)(B|KB|MB|GB|TB)")


def wrk_command(url: str, params: dict[str, Any]) -> list[str]:
    cmd = ["wrk", "--latency", "--threads", str(params["threads"]),
           "--connections", str(params["connections"]),
           "--duration", f"{int(params['duration'])}s", "--timeout", f"{int(params['timeout'])}s"]
    if params.get("host"):
        cmd += ["--header", f"Host: {params['host']}"]
    return [*cmd, url]


def _ms(value: str, unit: str) -> float:
    return round(float(value) * _WRK_TIME[unit], 4)


def parse_wrk(output: str) -> Sample:
    """→ {requests, duration_s, read_bytes, requests_per_s, transfer_mbps, latency_avg_ms,
    latency_stdev_ms, latency_max_ms, latency_p50/p75/p90/p99_ms, errors: {connect, read,
    write, timeout, status}, errors_total} of one `wrk --latency` run. `status` counts non-2xx/3xx
    answers. A run that measured nothing (e.g. "unable to connect") keeps wrk's message."""
    total = _WRK_TOTAL.search(output)
    rate = _WRK_RATE.search(output)
    if not total or not rate:
        if "Usage: wrk" in output:
            return {"requests": 0, "errors_total": 0, "error": "wrk refused its arguments"}
        return {"requests": 0, "errors_total": 0, "error": output.strip()[-200:]}
    sample: Sample = {"requests": int(total.group(1)),
                      "duration_s": round(_ms(total.group(2), total.group(3)) / 1000, 3),
                      "read_bytes": int(float(total.group(4)) * _WRK_BYTES[total.group(5)]),
                      "requests_per_s": float(rate.group(1))}
    transfer = _WRK_TRANSFER.search(output)
    if transfer:
        sample["transfer_mbps"] = round(float(transfer.group(1)) *
                                        _WRK_BYTES[transfer.group(2)] * 8 / 1e6, 3)
    latency = _WRK_LATENCY.search(output)
    if latency:
        g = latency.groups()
        sample.update(latency_avg_ms=_ms(g[0], g[1]), latency_stdev_ms=_ms(g[2], g[3]),
                      latency_max_ms=_ms(g[4], g[5]))
    for pct, value, unit in _WRK_DIST.findall(output):
        sample[f"latency_p{pct}_ms"] = _ms(value, unit)
    socket_errors = _WRK_SOCKET.search(output)
    status = _WRK_STATUS.search(output)
    counts = [int(v) for v in socket_errors.groups()] if socket_errors else [0, 0, 0, 0]
    errors = dict(zip(("connect", "read", "write", "timeout"), counts, strict=True))
    errors["status"] = int(status.group(1)) if status else 0
    sample["errors"] = errors
    sample["errors_total"] = sum(errors.values())
    return sample


def summarize_http_load(samples: list[Sample]) -> dict[str, Any]:
    """Requests and errors summed over repeats; the request rate (headline, with its 95 % CI
    over repeats), transfer rate and latency percentiles averaged over repeats; the slowest
    request of all."""
    ok = [s for s in samples if s.get("requests")]
    summary: dict[str, Any] = {"requests": sum(s["requests"] for s in samples),
                               "errors": sum(s.get("errors_total", 0) for s in samples)}
    failed = [s for s in samples if "error" in s]
    if failed:
        summary["failed_repeats"] = len(failed)
        summary["error"] = failed[-1]["error"]
    if not ok:
        return summary
    kinds: Counter[str] = Counter()
    for s in ok:
        kinds.update(s.get("errors", {}))
    summary["error_kinds"] = {k: v for k, v in kinds.items() if v}
    rates = [s["requests_per_s"] for s in ok]
    d = stats.describe(rates, 1)
    summary.update(requests_per_s=d["mean"], requests_per_s_min=d["min"],
                   requests_per_s_max=d["max"], requests_per_s_stdev=d["stdev"],
                   **stats.over_repeats("requests_per_s", rates, 1))
    if all("transfer_mbps" in s for s in ok):
        summary["transfer_mbps"] = round(statistics.fmean(s["transfer_mbps"] for s in ok), 3)
    for key in ("latency_avg_ms", "latency_p50_ms", "latency_p75_ms", "latency_p90_ms",
                "latency_p99_ms"):
        values = [s[key] for s in ok if key in s]
        if values:
            summary[key] = round(statistics.fmean(values), 4)
    maxima = [s["latency_max_ms"] for s in ok if "latency_max_ms" in s]
    if maxima:
        summary["latency_max_ms"] = max(maxima)
    return summary


# -- tcp-connect (kemu/workloads/probe.py) -----------------------------------------------------

def summarize_tcp_connect(samples: list[Sample]) -> dict[str, Any]:
    """Connect times (SYN sent → connection established) of all repeats: connect_min/mean/
    p50/p90/p99/max_ms, errors, and the 95 % CI of the per-repeat p50 (the headline)."""
    return _latency_summary(samples, "connect")


# -- running -------------------------------------------------------------------------------

SUMMARIZERS: dict[str, Callable[[list[Sample]], dict[str, Any]]] = {
    "ping": summarize_ping, "iperf3": summarize_iperf3, "http": summarize_http,
    "dns": summarize_dns, "failover": summarize_failover, "tcp-rr": summarize_tcp_rr,
    "tcp-connect": summarize_tcp_connect, "http-load": summarize_http_load,
}


def summarize(kind: str, samples: list[Sample]) -> dict[str, Any]:
    """The summary of a measurement's samples: warm-up repeats (`"warmup": true`) are left
    out; `repeats` and `warmup_repeats` say how many of each there were."""
    measured = [s for s in samples if not s.get("warmup")]
    summary = SUMMARIZERS[kind](measured) if measured else {}
    summary["repeats"] = len(measured)
    if len(measured) < len(samples):
        summary["warmup_repeats"] = len(samples) - len(measured)
    return summary


class Processes:
    """The processes of the measurements in flight (clients, and servers in target pods), so
    that a run ending early — a failure, Ctrl-C — stops them before its teardown: a server
    left in a pod whose namespace is deleted would wait for a client forever."""

    def __init__(self) -> None:
        self._procs: set[subprocess.Popen[str]] = set()
        self._lock = threading.Lock()
        self._stopped = False

    def popen(self, argv: list[str], **kwargs: Any) -> subprocess.Popen[str]:
        with self._lock:
            if self._stopped:
                raise KemuError("the run is stopping")
            proc: subprocess.Popen[str] = subprocess.Popen(argv, text=True, **kwargs)
            self._procs.add(proc)
        return proc

    def run(self, argv: list[str], timeout: float) -> subprocess.CompletedProcess[str]:
        """subprocess.run(capture_output=True, text=True), but stoppable."""
        proc = self.popen(argv, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
        try:
            out, err = proc.communicate(timeout=timeout)
        finally:
            self.end(proc)
        return subprocess.CompletedProcess(argv, proc.returncode, out, err)

    def end(self, proc: subprocess.Popen[str]) -> None:
        """Kill (if still running) and reap one process."""
        if proc.poll() is None:
            proc.kill()
        proc.wait()
        with self._lock:
            self._procs.discard(proc)

    def stop(self) -> None:
        """Kill every process in flight, and refuse new ones."""
        with self._lock:
            self._stopped = True
            procs = list(self._procs)
        for proc in procs:
            if proc.poll() is None:
                proc.kill()


def run_measurement(cluster: Cluster, spec: MeasurementSpec,
                    record: Callable[[Sample], None],
                    procs: Processes | None = None) -> None:
    """Run every repeat of `spec`, handing each sample to `record` as it completes. The
    `warmup` repeats come first, the same as the others; their samples are numbered -N…-1 and
    marked `"warmup": true`, and summaries leave them out."""
    procs = procs or Processes()
    source = cluster.resolve(spec.source)
    target = cluster.resolve(spec.target) if spec.target else None
    warmup = spec.params.get("warmup", 0)
    for repeat in range(-warmup, spec.params["repeat"]):
        started = time.time()
        if spec.type == "tcp-rr":
            assert target
            port = spec.params.get("port") or SOCKPERF_PORT
            sample = _run_sockperf(procs, source.prefix, target.prefix, target.ip, port,
                                   spec.params)
        elif spec.type == "tcp-connect":
            assert target
            port = _tcp_port(spec, target)
            sample = _run_probe(procs, source.prefix, "tcp", f"{target.ip}:{port}",
                                spec.params["count"],
                                spec.params["timeout"] + spec.params["interval"] + 0.5,
                                "--timeout", str(spec.params["timeout"]),
                                "--interval", str(spec.params["interval"]))
        elif spec.type == "http-load":
            assert target
            url = f"http://{target.ip}:{_tcp_port(spec, target)}{spec.params['path']}"
            sample = _run_wrk(procs, source.prefix, url, spec.params)
        elif spec.type == "ping":
            assert target
            sample = _run_ping(procs, source.prefix, target.ip, spec.params)
        elif spec.type == "iperf3":
            assert target
            sample = _run_iperf3(procs, source.prefix, target.prefix, target.ip, spec.params)
        elif spec.type == "http":
            assert target
            url = f"http://{target.ip}:{target.port}{spec.params['path']}"
            options = ["--interval", str(spec.params["interval"]), "--timeout",
                       str(spec.params["timeout"])]
            if spec.params.get("host"):
                options += ["--host", spec.params["host"]]
            sample = _run_probe(procs, source.prefix, "http", url, spec.params["count"],
                                spec.params["interval"] + spec.params["timeout"], *options)
        elif spec.type == "failover":
            assert target
            sample = _run_failover(procs, cluster, source.prefix, target, spec.params)
        else:
            sample = _run_probe(procs, source.prefix, "dns", spec.params["query"],
                                spec.params["count"], 5.0)
        record({"repeat": repeat, "started_at": started, **sample,
                **({"warmup": True} if repeat < 0 else {})})


def _tcp_port(spec: MeasurementSpec, target: Any) -> int:
    """The port a connection goes to: the measurement's `port`, else the target's own."""
    port: int = spec.params.get("port") or target.port
    if not port:
        raise KemuError(f"measurement {spec.name}: {spec.target} has no TCP port; give `port`")
    return port


def _run_failover(procs: Processes, cluster: Cluster, source: list[str], target: Any,
                  params: dict[str, Any]) -> Sample:
    """Paced requests to the load balancer; `at` seconds in, the node `fail` goes down; it
    comes back when the requests are done."""
    count = int(params["duration"] / params["interval"])
    url = f"http://{target.ip}:{target.port}{params['path']}"
    probe = procs.popen([*source, *probe_command(
        "http", url, count, "--interval", str(params["interval"]), "--timeout",
        str(params["timeout"]))], stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    down = False
    try:
        time.sleep(params["at"])
        failed_at = time.time()
        cluster.node_down(params["fail"])
        down = True
        out, err = probe.communicate(timeout=params["duration"] + params["timeout"] + 30)
    finally:
        procs.end(probe)
        if down:
            cluster.node_up(params["fail"])
    if probe.returncode != 0:
        raise KemuError(f"failover probe failed: {err.strip()[-300:]}")
    sample = parse_probe(out)
    nodes = {pod.spec.name: pod.node.name for pod in dict(cluster.pods).values()}
    for record in sample["requests"]:
        if record.get("pod"):
            record["node"] = nodes.get(record["pod"], "")
    state = cluster.load_balancer_state() or {}
    detected = [e["time"] for e in state.get("events", []) if e["event"] == "unhealthy" and
                e["node"] == params["fail"] and e["time"] >= failed_at]
    return {"failed_at": failed_at, "failed_node": params["fail"],
            "detected_at": detected[0] if detected else None, **sample}


def _run_probe(procs: Processes, source: list[str], kind: str, target: str, count: int,
               per_request_s: float, *options: str) -> Sample:
    proc = procs.run([*source, *probe_command(kind, target, count, *options)],
                     timeout=count * per_request_s + 10)
    if proc.returncode != 0:
        raise KemuError(f"{kind} probe failed: {proc.stderr.strip()[-300:]}")
    return parse_probe(proc.stdout)


def _run_wrk(procs: Processes, source: list[str], url: str, params: dict[str, Any]) -> Sample:
    try:
        proc = procs.run([*source, *wrk_command(url, params)],
                         timeout=params["duration"] + params["timeout"] + 30)
    except subprocess.TimeoutExpired:
        return {"requests": 0, "errors_total": 0, "error": "wrk did not finish in time"}
    return parse_wrk(proc.stdout + proc.stderr)


def _run_sockperf(procs: Processes, source: list[str], target: list[str], target_ip: str,
                  port: int, params: dict[str, Any]) -> Sample:
    server = procs.popen([*target, *sockperf_server_command(port)], stdout=subprocess.PIPE,
                         stderr=subprocess.STDOUT, start_new_session=True)
    try:
        assert server.stdout is not None
        banner = ""
        while "socket(s)" not in banner:  # "… using recvfrom() to block on socket(s)": bound
            line = server.stdout.readline()
            if not line:
                raise KemuError(f"sockperf server did not start: "
                                f"{_ANSI.sub('', banner).strip()[-300:]}")
            banner += line
        threading.Thread(target=server.stdout.read, daemon=True).start()
        try:
            proc = procs.run([*source, *sockperf_client_command(target_ip, params, port)],
                             timeout=params["duration"] + 20)
        except subprocess.TimeoutExpired:
            return {"observations": 0, "error": "sockperf did not finish in time (no answer "
                                                f"from {target_ip}:{port}?)"}
        return parse_sockperf(proc.stdout + proc.stderr)
    finally:
        procs.end(server)


def _run_ping(procs: Processes, source: list[str], target_ip: str,
              params: dict[str, Any]) -> Sample:
    timeout = params["count"] * params["interval"] + 10
    proc = procs.run([*source, *ping_command(target_ip, params)], timeout=timeout)
    return parse_ping(proc.stdout + proc.stderr)


def _run_iperf3(procs: Processes, source: list[str], target: list[str], target_ip: str,
                params: dict[str, Any]) -> Sample:
    server = procs.popen([*target, *iperf3_server_command()], stdout=subprocess.PIPE,
                         stderr=subprocess.STDOUT, start_new_session=True)
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
        proc = procs.run([*source, *iperf3_client_command(target_ip, params)],
                         timeout=params["duration"] + 30)
        return parse_iperf3(proc.stdout)
    finally:
        procs.end(server)
