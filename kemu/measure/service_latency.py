"""service-latency: how long a new Service takes to work from every node — kube-burner's
service latency. Each repeat creates a ClusterIP Service in front of the `to` pod (selecting
it by its labels, port 80 to its port), times until a connection to the ClusterIP opens from
each node (`node_ms`, per node; `all_ms`, the last of them), and deletes it (waiting until no
node reaches it any more, so the next repeat starts clean). What it measures
is the control plane's path: address allocation, the EndpointSlice controller, every node's
kube-proxy — its pacing included: repeats follow each other at once, so after the first two
syncs a creation waits for kube-proxy's next token (minSyncPeriod), as a burst of Services
does in a cluster."""

from __future__ import annotations

import time
from concurrent.futures import ThreadPoolExecutor
from typing import Any

from kemu.errors import KemuError
from kemu.measure.base import Context, Measurement, Row, Sample
from kemu.measure.propagation import attempt_timeout, describe_times, until
from kemu.measure.requests import ci, warmup
from kemu.measure.stats import over_repeats
from kemu.measure.tcp_connect import tcp_port
from kemu.scenario.addressing import allocate
from kemu.scenario.objects import Service, ServicePort

SERVICE = "kemu-service-latency"


class ServiceLatency(Measurement):
    type = "service-latency"
    params = {"port": None, "timeout": 30.0}
    sources = ()
    targets = ("pod",)
    headline = "all_p50_ms"
    unit = "service reachable from every node after (ms, p50)"

    @classmethod
    def expected_seconds(cls, params: dict[str, Any]) -> float:
        return 1.5

    @classmethod
    def run_once(cls, ctx: Context) -> Sample:
        assert ctx.target and ctx.spec.target and ctx.spec.target.pod
        cluster, key = ctx.cluster, ctx.spec.target.pod
        port = tcp_port(ctx)
        namespace = key.split("/", 1)[0]
        wanted = Service(SERVICE, namespace, ports=(ServicePort(80, port),),
                         selector=dict(cluster.pods[key].spec.labels))
        # Clear of the addresses the scenario gave Services its events apply later, too.
        now = {s.key for s in cluster.services}
        later = {o.key: o for e in cluster.scenario.events for o in e.objects
                 if isinstance(o, Service) and o.key not in now}
        made, problems = allocate([*cluster.services, *later.values(), wanted],
                                  cluster.scenario.cluster.service_cidr)
        problems = [p for p in problems if p[0] == wanted.key]
        if problems:
            raise KemuError(f"measurement {ctx.spec.name}: {problems[-1][1]}")
        svc = made[-1]
        # Each node's attempts wait as long as a connection to the pod itself takes there.
        attempts = {n: attempt_timeout(node.netns, ctx.target.ip, port)
                    for n, node in cluster.nodes.items()}
        started = time.monotonic()
        cluster.apply((svc,))
        try:
            with ThreadPoolExecutor(max_workers=min(8, len(cluster.nodes))) as pool:
                times = dict(zip(cluster.nodes, pool.map(
                    lambda n: until(cluster.nodes[n].netns, svc.cluster_ip, 80, True, started,
                                    ctx.params["timeout"], attempts[n]), cluster.nodes),
                    strict=True))
        finally:
            cluster.delete("Service", svc.key)
            gone = time.monotonic()  # the next repeat starts from a cluster without it
            for n, node in cluster.nodes.items():
                until(node.netns, svc.cluster_ip, 80, False, gone, ctx.params["timeout"],
                      attempts[n])
        reached = [t for t in times.values() if t is not None]
        return {"node_ms": times,
                "all_ms": max(reached) if len(reached) == len(times) else None}

    @classmethod
    def summarize(cls, samples: list[Sample]) -> dict[str, Any]:
        """all_* (the last node, per repeat) and node_* (every node) min/mean/p50/p90/p99/
        max/stdev in ms; repeats in which some node never reached it; the 95 % CI of all_ms."""
        alls = [s["all_ms"] for s in samples if s["all_ms"] is not None]
        nodes = [t for s in samples for t in s["node_ms"].values() if t is not None]
        summary: dict[str, Any] = {**describe_times(alls, "all"), **describe_times(nodes, "node"),
                                   "timeouts": len(samples) - len(alls)}
        summary.update(over_repeats("all_p50_ms", [s["all_ms"] for s in samples]))
        return summary

    @classmethod
    def describe(cls, s: dict[str, Any]) -> str:
        if "all_p50_ms" not in s:
            return f"some node never reached it ({s['timeouts']} repeats)"
        return (f"every node after {s['all_p50_ms']:.1f} ms (p50{ci(s, 'all_p50_ms', ' ms')}),"
                f" a node after {s['node_p50_ms']:.1f} ms (p50){warmup(s)}")

    @classmethod
    def csv_rows(cls, sample: Sample) -> list[Row]:
        t = sample.get("started_at", "")
        return [(i, t, "reached_ms", ms, node) if ms is not None else
                (i, t, "error", 1, f"{node}: timeout")
                for i, (node, ms) in enumerate(sample["node_ms"].items())]

    @classmethod
    def spread(cls, samples: list[Sample]) -> list[float]:
        return [s["all_ms"] for s in samples if s["all_ms"] is not None]
