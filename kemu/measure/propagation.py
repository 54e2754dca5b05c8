"""What the control-plane latency kinds share (netpol-latency, service-latency): probing
whether a TCP connection opens, from inside a namespace, until it does (or does not) — the
way kube-burner times a change reaching the data plane — and the summary of such times."""

from __future__ import annotations

import socket
import time
from typing import Any

from kemu.kernel.exec import Netns, call_in
from kemu.measure import stats

ATTEMPT_S = 0.2  # one connection attempt's timeout, unless the path is known to be quicker
PAUSE_S = 0.01  # between attempts


def connects(where: Netns, address: str, port: int, timeout: float = ATTEMPT_S) -> bool:
    """Whether a TCP connection from `where` to address:port opens within `timeout`."""
    def attempt() -> bool:
        try:
            socket.create_connection((address, port), timeout=timeout).close()
            return True
        except OSError:
            return False

    return call_in(where, attempt)


def attempt_timeout(where: Netns, address: str, port: int) -> float:
    """How long one attempt waits: four times the slowest of three connections that open
    now (link delays count), at least 20 ms."""
    times = []
    for _ in range(3):
        started = time.monotonic()
        if not connects(where, address, port):
            return ATTEMPT_S
        times.append(time.monotonic() - started)
    return max(0.02, 4 * max(times))


def until(where: Netns, address: str, port: int, open_: bool, since: float,
          timeout: float, attempt_s: float = ATTEMPT_S) -> float | None:
    """Milliseconds from `since` (monotonic) until a connection from `where` opens (`open_`:
    when the attempt that opened ended) or no longer does (when the attempt that failed
    began); None if that did not happen within `timeout` seconds."""
    while time.monotonic() - since < timeout:
        began = time.monotonic()
        opened = connects(where, address, port, attempt_s)
        if opened == open_:
            return round(((time.monotonic() if open_ else began) - since) * 1000, 3)
        time.sleep(PAUSE_S)
    return None


def describe_times(times: list[float], prefix: str) -> dict[str, Any]:
    """`<prefix>_min/mean/p50/p90/p99/max/stdev_ms` of the times."""
    if not times:
        return {}
    d = stats.describe(times)
    return {f"{prefix}_{k}_ms": d[k] for k in ("min", "mean", "p50", "p90", "p99", "max",
                                                "stdev")}
