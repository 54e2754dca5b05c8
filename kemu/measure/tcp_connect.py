"""tcp-connect: TCP handshakes (SYN sent → connection established), opened and closed one at a
time, paced — what a Service's first packet costs — through kemu's probe."""

from __future__ import annotations

from typing import Any

from kemu.errors import KemuError
from kemu.measure.base import Context, Sample
from kemu.measure.requests import RequestMeasurement, ci, latency_summary, run_probe, warmup
from kemu.scenario.check_measurements import Scope
from kemu.scenario.problems import Checks


def tcp_port(ctx: Context) -> int:
    """The port a connection goes to: the measurement's `port`, else the target's own."""
    assert ctx.target
    port: int = ctx.params.get("port") or ctx.target.port
    if not port:
        raise KemuError(f"measurement {ctx.spec.name}: {ctx.spec.target} has no TCP port; "
                        f"give `port`")
    return port


class TCPConnect(RequestMeasurement):
    type = "tcp-connect"
    params = {"count": 20, "interval": 0.01, "timeout": 1.0, "port": None}
    targets = ("pod", "node", "service", "nodePort", "loadBalancer", "external")
    headline = "connect_p50_ms"
    unit = "TCP connect p50 (ms)"
    metric = "connect_ms"

    @classmethod
    def check(cls, doc: dict[str, Any], where: str, checks: Checks, scope: Scope) -> None:
        to = doc.get("to") or {}
        if "node" in to and "nodePort" not in to and not doc.get("port"):
            checks.error(f"{where}.port", "a tcp-connect to a node needs the `port` to "
                                          "connect to")

    @classmethod
    def run_once(cls, ctx: Context) -> Sample:
        assert ctx.target
        p = ctx.params
        return run_probe(ctx.procs, ctx.origin, "tcp", f"{ctx.target.ip}:{tcp_port(ctx)}",
                         p["count"], p["timeout"] + p["interval"] + 0.5,
                         "--timeout", str(p["timeout"]), "--interval", str(p["interval"]))

    @classmethod
    def summarize(cls, samples: list[Sample]) -> dict[str, Any]:
        """Connect times of all repeats: connect_min/mean/p50/p90/p99/max_ms, errors, and the
        95 % CI of the per-repeat p50 (the headline)."""
        return latency_summary(samples, "connect")

    @classmethod
    def describe(cls, s: dict[str, Any]) -> str:
        if "connect_p50_ms" not in s:
            return f"{s['errors']}/{s['requests']} failed: " + \
                ", ".join(s.get("error_kinds", {}))
        return (f"connect p50/p90/p99 {s['connect_p50_ms']:.3f}/{s['connect_p90_ms']:.3f}/"
                f"{s['connect_p99_ms']:.3f} ms{ci(s, 'connect_p50_ms', ' ms')}, "
                f"{s['errors']}/{s['requests']} failed{warmup(s)}")
