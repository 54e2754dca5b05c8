"""When a new cluster's data plane is ready: every pod answers from its gateway, and across
nodes (a ring of each node's first pod to the next node's), at steady-state latency. Right
after start, frames wait in ARP queues for up to a second, and a measurement then would
measure that."""

from __future__ import annotations

import re
import time
from collections.abc import Iterable
from concurrent.futures import ThreadPoolExecutor

from kemu.clock import patience
from kemu.cluster.kubelet import Pod
from kemu.errors import NotReadyError
from kemu.kernel.exec import Netns, run

READY_RTT_MS = 20.0  # frames held for ARP come back after ~200-1000 ms; steady state is <1 ms
_RTT = re.compile(r"time=([0-9.]+) ms")


def wait_ready(pods: Iterable[Pod], link_rtt_ms: float, timeout: float = 20.0) -> None:
    """Wait until every probe answers within READY_RTT_MS plus the links' own share of a
    round trip (`link_rtt_ms`); NotReadyError naming what did not."""
    pods = list(pods)
    probes: list[tuple[Netns, str]] = []
    for pod in pods:
        gateways = [ip.get("gateway") for ip in pod.cni_result.get("ips", [])]
        probes += [(pod.netns, gateway) for gateway in gateways if gateway]
    first_pod_on: dict[str, Pod] = {}
    for pod in pods:
        first_pod_on.setdefault(pod.node.name, pod)
    # Across nodes, a ring (each node's first pod to the next node's): every node's tunnel
    # or routes carry traffic both ways, in n probes rather than n².
    ring = list(first_pod_on.values())
    if len(ring) > 1:
        probes += [(a.netns, b.ip) for a, b in zip(ring, ring[1:] + ring[:1], strict=True)]
    if not probes:
        return
    deadline = time.monotonic() + patience(timeout)
    steady_ms = READY_RTT_MS + link_rtt_ms
    with ThreadPoolExecutor(max_workers=min(32, len(probes))) as pool:
        waits = [pool.submit(_wait_steady, where, target, deadline, steady_ms)
                 for where, target in probes]
        failures = [f for f in (w.result() for w in waits) if f]
    if failures:
        raise NotReadyError("the pod network did not come up:\n  " + "\n  ".join(failures))


def _wait_steady(where: Netns, target: str, deadline: float, steady_ms: float) -> str:
    """Ping until one reply comes at steady-state latency; '' when it did, else the failure.
    (With loss configured, some pings are lost: the loop simply tries again.)"""
    last = "no reply"
    while time.monotonic() < deadline:
        out = run(where, ["ping", "-n", "-c", "1", "-W", "1", target], check=False)
        match = _RTT.search(out.stdout)
        if match and float(match.group(1)) < steady_ms:
            return ""
        last = f"rtt {match.group(1)} ms" if match else (out.stderr.strip() or "no reply")
        time.sleep(0.05)
    return f"{where.label} → {target}: {last}"
