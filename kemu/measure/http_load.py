"""http-load: HTTP under load (wrk): many connections kept alive for a duration — request
rate, latency percentiles and every kind of error."""

from __future__ import annotations

import re
import statistics
from collections import Counter
from typing import Any

from kemu.errors import TimedOut
from kemu.measure import stats
from kemu.measure.base import Context, Measurement, Row, Sample, whole_seconds
from kemu.measure.requests import ci, warmup
from kemu.measure.tcp_connect import tcp_port
from kemu.scenario.check_measurements import Scope
from kemu.scenario.problems import Checks

_TIME = {"us": 1e-3, "ms": 1.0, "s": 1e3, "m": 60e3, "h": 3600e3}
_BYTES = {"B": 1, "KB": 1 << 10, "MB": 1 << 20, "GB": 1 << 30, "TB": 1 << 40}
_LATENCY = re.compile(r"^\s*Latency\s+([0-9.]+)(us|ms|s|m|h)\s+([0-9.]+)(us|ms|s|m|h)\s+"
                      r"([0-9.]+)(us|ms|s|m|h)", re.M)
_DIST = re.compile(r"^\s*(50|75|90|99)%\s+([0-9.]+)(us|ms|s|m|h)", re.M)
_TOTAL = re.compile(r"(\d+) requests in ([0-9.]+)(us|ms|s|m|h), ([0-9.]+)(B|KB|MB|GB|TB) "
                    r"read")
_SOCKET = re.compile(r"Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)")
_STATUS = re.compile(r"Non-2xx or 3xx responses: (\d+)")
_RATE = re.compile(r"Requests/sec:\s+([0-9.]+)")
_TRANSFER = re.compile(r"Transfer/sec:\s+([0-9.]+)(B|KB|MB|GB|TB)")


def wrk_command(url: str, params: dict[str, Any]) -> list[str]:
    cmd = ["wrk", "--latency", "--threads", str(params["threads"]),
           "--connections", str(params["connections"]),
           "--duration", f"{int(params['duration'])}s", "--timeout", f"{int(params['timeout'])}s"]
    if params.get("host"):
        cmd += ["--header", f"Host: {params['host']}"]
    return [*cmd, url]


def _ms(value: str, unit: str) -> float:
    return round(float(value) * _TIME[unit], 4)


def parse_wrk(output: str) -> Sample:
    """→ {requests, duration_s, read_bytes, requests_per_s, transfer_mbps, latency_avg_ms,
    latency_stdev_ms, latency_max_ms, latency_p50/p75/p90/p99_ms, errors: {connect, read,
    write, timeout, status}, errors_total} of one `wrk --latency` run. `status` counts non-2xx/3xx
    answers. A run that measured nothing (e.g. "unable to connect") keeps wrk's message."""
    total = _TOTAL.search(output)
    rate = _RATE.search(output)
    if not total or not rate:
        if "Usage: wrk" in output:
            return {"requests": 0, "errors_total": 0, "error": "wrk refused its arguments"}
        return {"requests": 0, "errors_total": 0, "error": output.strip()[-200:]}
    sample: Sample = {"requests": int(total.group(1)),
                      "duration_s": round(_ms(total.group(2), total.group(3)) / 1000, 3),
                      "read_bytes": int(float(total.group(4)) * _BYTES[total.group(5)]),
                      "requests_per_s": float(rate.group(1))}
    transfer = _TRANSFER.search(output)
    if transfer:
        sample["transfer_mbps"] = round(float(transfer.group(1)) *
                                        _BYTES[transfer.group(2)] * 8 / 1e6, 3)
    latency = _LATENCY.search(output)
    if latency:
        g = latency.groups()
        sample.update(latency_avg_ms=_ms(g[0], g[1]), latency_stdev_ms=_ms(g[2], g[3]),
                      latency_max_ms=_ms(g[4], g[5]))
    for pct, value, unit in _DIST.findall(output):
        sample[f"latency_p{pct}_ms"] = _ms(value, unit)
    socket_errors = _SOCKET.search(output)
    status = _STATUS.search(output)
    counts = [int(v) for v in socket_errors.groups()] if socket_errors else [0, 0, 0, 0]
    errors = dict(zip(("connect", "read", "write", "timeout"), counts, strict=True))
    errors["status"] = int(status.group(1)) if status else 0
    sample["errors"] = errors
    sample["errors_total"] = sum(errors.values())
    return sample


class HttpLoad(Measurement):
    type = "http-load"
    params = {"duration": 5, "connections": 10, "threads": 2, "timeout": 2, "path": "/",
              "host": None, "port": None}
    targets = ("pod", "service", "nodePort", "loadBalancer", "external")
    requires = ("wrk",)
    headline = "requests_per_s"
    unit = "requests/s"

    @classmethod
    def check(cls, doc: dict[str, Any], where: str, checks: Checks, scope: Scope) -> None:
        whole_seconds(doc, "duration", cls.params["duration"], where, checks,
                      "http-load runs for")
        whole_seconds(doc, "timeout", 1, where, checks, "wrk's timeout is")
        threads = doc.get("threads", cls.params["threads"])
        connections = doc.get("connections", cls.params["connections"])
        if connections < threads:
            checks.error(f"{where}.connections", f"wrk needs at least one connection per "
                                                 f"thread ({connections} < {threads} threads)")

    @classmethod
    def run_once(cls, ctx: Context) -> Sample:
        assert ctx.target
        url = f"http://{ctx.target.ip}:{tcp_port(ctx)}{ctx.params['path']}"
        try:
            result = ctx.procs.run(ctx.origin, wrk_command(url, ctx.params),
                                   timeout=ctx.params["duration"] + ctx.params["timeout"] + 30)
        except TimedOut:
            return {"requests": 0, "errors_total": 0, "error": "wrk did not finish in time"}
        return parse_wrk(result.stdout + result.stderr)

    @classmethod
    def summarize(cls, samples: list[Sample]) -> dict[str, Any]:
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

    @classmethod
    def describe(cls, s: dict[str, Any]) -> str:
        if "requests_per_s" not in s:
            return f"failed: {s.get('error', 'no requests')}"
        kinds = " ".join(f"{k}:{v}" for k, v in s.get("error_kinds", {}).items())
        return (f"{s['requests_per_s']:g} req/s{ci(s, 'requests_per_s', '')}, "
                f"{s.get('transfer_mbps', 0):g} Mbit/s, latency p50/p90/p99 "
                f"{s.get('latency_p50_ms', 0):.3f}/{s.get('latency_p90_ms', 0):.3f}/"
                f"{s.get('latency_p99_ms', 0):.3f} ms, {s['errors']} errors"
                + (f" ({kinds})" if kinds else "") + warmup(s))

    @classmethod
    def csv_rows(cls, sample: Sample) -> list[Row]:
        t = sample.get("started_at", "")
        rows: list[Row] = [(0, t, k, sample[k], "") for k in
                           ("requests_per_s", "transfer_mbps", "requests", "latency_avg_ms",
                            "latency_p50_ms", "latency_p75_ms", "latency_p90_ms",
                            "latency_p99_ms", "latency_max_ms") if k in sample]
        rows += [(0, t, "errors", n, kind) for kind, n in sample.get("errors", {}).items() if n]
        if "error" in sample:
            rows.append((0, t, "error", 1, sample["error"]))
        return rows

    @classmethod
    def spread(cls, samples: list[Sample]) -> list[float]:
        return [s["requests_per_s"] for s in samples if s.get("requests")]
