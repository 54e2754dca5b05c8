"""`kemu bench`: kemu measured against the machine's own limit and against raw Mininet, in one
run, so every figure can be a ratio of two things measured side by side (shared machines are
noisy; absolute numbers are given for context).

1. data plane: TCP throughput (iperf3, median of repeats; 1 and 4 streams) and TCP
   request/response round trip (sockperf ping-pong, p50/p99) between two pods on different
   nodes, per backend, against two bare namespaces joined by one veth pair (the limit);
2. bring-up and teardown: a ladder of nodes × pods, against raw Mininet building the same
   number of hosts on the same topology; memory from /proc/meminfo;
3. control plane: a killed pod leaving every node's rules; calico's routes after a node
   rejoins; the load balancer noticing a dead node;
4. emulation accuracy: a configured link bandwidth against what iperf3 gets through it, a
   configured delay and loss against what ping sees (netem, or kemu's delay line here).
"""

from __future__ import annotations

import json
import statistics
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from ipaddress import IPv4Network
from pathlib import Path
from typing import Any

from mininet.link import Link
from mininet.topo import Topo

from kemu import __version__, registry
from kemu.cluster.cluster import Cluster
from kemu.cluster.lifecycle import running
from kemu.errors import KemuError
from kemu.kernel import doctor
from kemu.kernel.exec import HOST, Netns, run
from kemu.kernel.node import K8sNode, KemuNet, UnderlaySwitch
from kemu.kernel.processes import DEVNULL, Process
from kemu.kernel.records import RunState, delete_netns
from kemu.measure.iperf3 import parse_iperf3
from kemu.measure.ping import parse_ping
from kemu.measure.tcp_rr import parse_sockperf
from kemu.scenario import parse_scenario
from kemu.scenario.addressing import underlay_addresses

Log = Callable[[str], None]
IPERF_PORT, SOCKPERF_PORT = 5499, 11111


def scenario_doc(nodes: int, pods: int, cni: str = "flannel-vxlan",
                 **extra: Any) -> dict[str, Any]:
    workloads = [{"apiVersion": "v1", "kind": "Pod", "metadata": {"name": f"p{i}"},
                  "spec": {"containers": [{"name": "c", "image": "kemu/sleep"}]}}
                 for i in range(pods)]
    return {"apiVersion": "kemu/v1", "kind": "Scenario", "metadata": {"name": "bench"},
            "cluster": {"nodes": nodes, "cni": {"plugin": cni}, "dns": {"enabled": False}},
            "workloads": workloads, **extra}


def cluster(doc: dict[str, Any], log: Log = lambda m: None) -> Any:
    """The cluster of a scenario document, built and (always) torn down: a running()."""
    return running(parse_scenario(doc, "bench"), log)


# -- measuring between two places (namespaces) ---------------------------------------------

def throughput(client: Netns, server: Netns, address: str, streams: int,
               seconds: int, repeats: int) -> dict[str, Any]:
    rates = []
    for _ in range(repeats):
        srv = Process(server, ["iperf3", "-s", "-1", "-p", str(IPERF_PORT)],
                      "iperf3 server").start(stdout=DEVNULL)
        try:
            time.sleep(0.3)
            out = run(client, ["iperf3", "-c", address, "-p", str(IPERF_PORT), "-J",
                               "-t", str(seconds), "-P", str(streams)], check=False,
                      timeout=seconds + 30).stdout
        finally:
            srv.stop(grace=10)
        rates.append(parse_iperf3(out)["throughput_mbps"])
    return {"mbps_median": statistics.median(rates), "mbps_samples": rates}


def round_trip(client: Netns, server: Netns, address: str, seconds: int) -> dict[str, float]:
    srv = Process(server, ["sockperf", "server", "--tcp", "-i", address, "-p",
                           str(SOCKPERF_PORT)], "sockperf server").start(stdout=DEVNULL)
    try:
        time.sleep(0.5)
        out = run(client, ["sockperf", "ping-pong", "--tcp", "-i", address, "-p",
                           str(SOCKPERF_PORT), "-t", str(seconds), "--full-rtt"], check=False,
                  timeout=seconds + 30).stdout
    finally:
        srv.stop(grace=0)
    sample = parse_sockperf(out)
    if "error" in sample:
        raise KemuError(f"sockperf: {sample['error']}")
    return {"rtt_p50_us": sample["rtt_p50_ms"] * 1000, "rtt_p99_us": sample["rtt_p99_ms"] * 1000}


def path_figures(client: Netns, server: Netns, address: str, quick: bool) -> dict[str, Any]:
    seconds, repeats = (2, 1) if quick else (5, 3)
    return {"tcp_1": throughput(client, server, address, 1, seconds, repeats),
            "tcp_4": throughput(client, server, address, 4, seconds, 1),
            **round_trip(client, server, address, seconds)}


@contextmanager
def veth_pair() -> Iterator[tuple[Netns, Netns, str]]:
    """The limit: two bare namespaces and one veth pair between them."""
    state = RunState.create("bench-limit")
    a, b = state.netns_name("a"), state.netns_name("b")
    try:
        for ns in (a, b):
            state.record_netns(ns)
            run(HOST, ["ip", "netns", "add", ns])
        run(HOST, ["ip", "-n", a, "link", "add", "eth0", "type", "veth", "peer", "eth0",
                   "netns", b])
        for ns, ip in ((a, "10.99.0.1/24"), (b, "10.99.0.2/24")):
            run(HOST, ["ip", "-n", ns, "addr", "add", ip, "dev", "eth0"])
            for dev in ("lo", "eth0"):
                run(HOST, ["ip", "-n", ns, "link", "set", dev, "up"])
        client, server = Netns.named(a, "limit a"), Netns.named(b, "limit b")
        run(client, ["ping", "-c", "1", "-W", "2", "10.99.0.2"])
        yield client, server, "10.99.0.2"
    finally:
        for ns in (a, b):
            delete_netns(ns)
        state.remove()


def dataplane(log: Log, quick: bool) -> dict[str, Any]:
    log("data plane: the veth-pair limit")
    with veth_pair() as (client, server, address):
        limit = path_figures(client, server, address, quick)
    out: dict[str, Any] = {"limit": limit}
    pods = [{"apiVersion": "v1", "kind": "Pod", "metadata": {"name": n},
             "spec": {"nodeName": node, "containers": [{"name": "c", "image": "kemu/sleep"}]}}
            for n, node in (("a", "node1"), ("b", "node2"))]
    for name in sorted(registry.backends()):
        log(f"data plane: {name}")
        doc = scenario_doc(2, 0, name)
        doc["workloads"] = pods
        with cluster(doc) as built:
            a, b = built.pods["default/a"], built.pods["default/b"]
            figures = path_figures(a.netns, b.netns, b.ip, quick)
        figures["tcp_1_ratio"] = round(figures["tcp_1"]["mbps_median"] /
                                       limit["tcp_1"]["mbps_median"], 3)
        figures["tcp_4_ratio"] = round(figures["tcp_4"]["mbps_median"] /
                                       limit["tcp_4"]["mbps_median"], 3)
        figures["rtt_p50_overhead_us"] = round(figures["rtt_p50_us"] - limit["rtt_p50_us"], 1)
        out[name] = figures
    if "flannel-udp" in out and "flannel-vxlan" in out:
        out["udp_over_vxlan_tcp_1"] = round(out["flannel-udp"]["tcp_1"]["mbps_median"] /
                                            out["flannel-vxlan"]["tcp_1"]["mbps_median"], 3)
    return out


# -- bring-up and teardown -----------------------------------------------------------------

def _mem_used_mib() -> float:
    info = dict(line.split(":", 1) for line in Path("/proc/meminfo").read_text().splitlines())
    return (int(info["MemTotal"].split()[0]) - int(info["MemAvailable"].split()[0])) / 1024


class _FlatTopo(Topo):
    def build(self, count: int) -> None:
        switch = self.addSwitch("s1", cls=UnderlaySwitch)
        for i, address in enumerate(underlay_addresses(IPv4Network("172.18.0.0/16"), count)):
            self.addLink(self.addHost(f"node{i + 1}", ip=str(address)), switch,
                         intfName1="eth0")


def raw_mininet(count: int) -> dict[str, float]:
    """Raw Mininet creating the same number of hosts on the same kind of switch."""
    started = time.monotonic()
    net = KemuNet(topo=_FlatTopo(count=count), host=K8sNode, switch=UnderlaySwitch, link=Link,
                  controller=None, autoSetMacs=False)
    net.start()
    up = time.monotonic() - started
    started = time.monotonic()
    net.stop()
    return {"up_s": round(up, 2), "down_s": round(time.monotonic() - started, 2)}


def bringup(log: Log, ladder: list[tuple[int, int]]) -> list[dict[str, Any]]:
    rows = []
    for nodes, pods in ladder:
        log(f"bring-up: {nodes} nodes × {pods} pods")
        before = _mem_used_mib()
        started = time.monotonic()
        with cluster(scenario_doc(nodes, pods)) as built:
            up = time.monotonic() - started
            peak = _mem_used_mib() - before
            phases = dict(built.timings)
            started = time.monotonic()  # what follows the body is the teardown
        down = time.monotonic() - started
        raw = raw_mininet(nodes)
        rows.append({"nodes": nodes, "pods": pods, "up_s": round(up, 2),
                     "down_s": round(down, 2), "memory_mib": round(peak, 1),
                     "memory_per_pod_mib": round(peak / max(1, pods), 2),
                     "phases_s": {k: round(v, 2) for k, v in phases.items()},
                     "raw_mininet": raw,
                     "up_vs_raw_mininet": round(up / max(raw["up_s"], 0.01), 2)})
    return rows


# -- control plane -------------------------------------------------------------------------

def control_plane(log: Log) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for profile in ("upstream", "fast"):
        out.update(_endpoint_removal(log, profile))
    log("control plane: calico-bgp convergence after a node rejoins")
    with cluster(scenario_doc(3, 0, "calico-bgp")) as built:
        out["calico_build_converged_s"] = round(built.timings["ready_s"] +
                                                built.timings["network_s"], 2)
        block = str(built.leases.get("node3").subnet)
        built.node_leave("node3")
        started = time.monotonic()
        built.node_join("node3")
        while not all(block in built.nodes[n].run("ip", "route", "show", "proto", "bird")
                      for n in ("node1", "node2")):
            time.sleep(0.02)
        out["calico_join_convergence_s"] = round(time.monotonic() - started, 3)
    if {c.name: c for c in doctor.check()}["ovs"].ok:
        log("control plane: the load balancer noticing a dead node (0.5 s × 2 checks)")
        doc = scenario_doc(3, 0)
        doc["workloads"] = doc_lb_workloads()
        doc["external"] = {"hosts": [{"name": "client"}], "loadBalancer": {
            "preset": "custom", "healthCheck": {"interval": 0.5, "timeout": 0.3,
                                                "unhealthyThreshold": 2}}}
        with cluster(doc) as built:
            down_at = time.time()
            built.node_down("node3")
            deadline = time.monotonic() + 10
            detected = None
            while detected is None and time.monotonic() < deadline:
                events = (built.load_balancer_state() or {}).get("events", [])
                detected = next((e["time"] for e in events if e["event"] == "unhealthy"
                                 and e["node"] == "node3"), None)
                time.sleep(0.05)
            built.node_up("node3")
            out["lb_detection_s"] = round(detected - down_at, 3) if detected else None
            out["lb_detection_budget_s"] = 0.5 * 2 + 0.3
    return out


def _endpoint_removal(log: Log, profile: str) -> dict[str, Any]:
    """How long until no node's rules send to a pod that died, under a timing profile: the
    first of three pods killed 0.2 s apart, the third (kube-proxy lets two syncs through at
    once, then one per minSyncPeriod), and the pods of a node that stopped answering
    (nodeMonitorGracePeriod)."""
    suffix = "" if profile == "upstream" else f"_{profile}"
    log(f"control plane ({profile} timing): endpoint removal after pods and a node die")
    doc = scenario_doc(3, 0)
    doc["cluster"]["timing"] = profile
    doc["workloads"] = doc_lb_workloads("ClusterIP", replicas=6)

    def gone(ip: str, nodes: list[str]) -> bool:
        return not any(f"{ip}:8080" in built.node_rules(n) for n in nodes)

    out: dict[str, Any] = {}
    with cluster(doc) as built:
        nodes = list(built.nodes)
        killed = [f"default/web-{i}" for i in (0, 1, 3)]
        ips = [built.pods[key].ip for key in killed]
        started = time.monotonic()
        for i, key in enumerate(killed):
            if i:
                time.sleep(0.2)
            built.crash_pod(key)
        removed: dict[int, float] = {}
        while len(removed) < len(ips):
            for i, ip in enumerate(ips):
                if i not in removed and gone(ip, nodes):
                    removed[i] = time.monotonic() - started - 0.2 * i
            time.sleep(0.01)
        out[f"endpoint_removal{suffix}_s"] = round(removed[0], 3)
        out[f"endpoint_removal_third{suffix}_s"] = round(removed[2], 3)
        victim = next(p.ip for p in built.pods.values() if p.node.name == "node3" and p.running)
        started = time.monotonic()
        built.node_down("node3")
        while not gone(victim, ["node1", "node2"]):
            time.sleep(0.05)
        out[f"node_failure_removal{suffix}_s"] = round(time.monotonic() - started, 3)
        built.node_up("node3")
    return out


def doc_lb_workloads(kind: str = "LoadBalancer", replicas: int = 3) -> list[dict[str, Any]]:
    return [
        {"apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": "web"},
         "spec": {"replicas": replicas, "selector": {"matchLabels": {"app": "web"}}, "template": {
             "metadata": {"labels": {"app": "web"}},
             "spec": {"containers": [{"name": "c", "image": "kemu/http-echo",
                                      "ports": [{"containerPort": 8080}]}]}}}},
        {"apiVersion": "v1", "kind": "Service", "metadata": {"name": "web"},
         "spec": {"type": kind, "selector": {"app": "web"},
                  "ports": [{"port": 80, "targetPort": 8080}]}}]


# -- emulation accuracy --------------------------------------------------------------------

def accuracy(log: Log, quick: bool) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for mbit in (10, 100, 1000):
        log(f"accuracy: a {mbit} Mbit/s link")
        with cluster(_two_pods({"bw": f"{mbit}mbit"})) as built:
            a, b = built.pods["default/a"], built.pods["default/b"]
            got = throughput(a.netns, b.netns, b.ip, 1, 2 if quick else 4, 1)["mbps_median"]
        # Goodput over the wire rate: VXLAN adds 50 bytes to each 1500-byte frame.
        out[f"bw_{mbit}mbit"] = {"configured_mbps": mbit, "measured_mbps": got,
                                 "ratio": round(got / mbit, 3)}
    # Delay and loss: what ping sees over the bare path of the same cluster shape. Each node
    # delays (or drops) what it sends, so a round trip crosses the impairment twice.
    count = 100 if quick else 300
    with cluster(_two_pods({})) as built:
        bare = statistics.median(_pings(built, count)[0])
    for delay_ms in (5, 20):
        log(f"accuracy: {delay_ms} ms one way")
        with cluster(_two_pods({"delay": f"{delay_ms}ms"})) as built:
            rtts, _ = _pings(built, count)
            method = built.describe()["link_emulation"]["delay_jitter_loss"]
        added = statistics.median(rtts) - bare
        out[f"delay_{delay_ms}ms"] = {"configured_rtt_ms": 2 * delay_ms,
                                      "added_rtt_ms": round(added, 3),
                                      "ratio": round(added / (2 * delay_ms), 3),
                                      "stdev_ms": round(statistics.pstdev(rtts), 3),
                                      "method": method}
    for loss in (1, 10):
        log(f"accuracy: {loss} % loss")
        with cluster(_two_pods({"loss": f"{loss}%"})) as built:
            _, lost = _pings(built, 1000 if quick else 3000)
        expected = 100 * (1 - (1 - loss / 100) ** 2)  # a round trip crosses two links
        out[f"loss_{loss}pct"] = {"configured_pct": loss, "expected_rtt_loss_pct":
                                  round(expected, 2), "measured_rtt_loss_pct": round(lost, 2),
                                  "ratio": round(lost / expected, 3)}
    return out


def _two_pods(link: dict[str, Any]) -> dict[str, Any]:
    doc = scenario_doc(2, 0, topology={"link": link})
    doc["workloads"] = [{"apiVersion": "v1", "kind": "Pod", "metadata": {"name": n},
                         "spec": {"nodeName": node,
                                  "containers": [{"name": "c", "image": "kemu/sleep"}]}}
                        for n, node in (("a", "node1"), ("b", "node2"))]
    return doc


def _pings(built: Cluster, count: int) -> tuple[list[float], float]:
    """RTTs (ms) and the round-trip loss (%) of `count` pings from pod a to pod b."""
    a, b = built.pods["default/a"], built.pods["default/b"]
    out = run(a.netns, ["ping", "-n", "-c", str(count), "-i", "0.005", "-W", "1", b.ip],
              check=False, timeout=count * 0.01 + 60)
    sample = parse_ping(out.stdout)
    if not sample["sent"]:
        raise KemuError(f"ping from pod a: {sample['error']}")
    return sample["rtts_ms"], 100 * (sample["sent"] - sample["received"]) / sample["sent"]


def run_bench(out_dir: Path, log: Log, quick: bool = False, full: bool = False) -> dict[str, Any]:
    ladder = [(2, 10), (10, 100)] if quick else [(2, 10), (10, 100), (50, 500)]
    if full:
        ladder.append((100, 1000))
    started = time.time()
    results: dict[str, Any] = {"kemu_version": __version__, "started_at": started,
                               "quick": quick}
    out_dir.mkdir(parents=True, exist_ok=True)
    path = out_dir / "results.json"
    for name, section in (("dataplane", lambda: dataplane(log, quick)),
                          ("bringup", lambda: bringup(log, ladder)),
                          ("control_plane", lambda: control_plane(log)),
                          ("accuracy", lambda: accuracy(log, quick))):
        results[name] = section()
        results["duration_s"] = round(time.time() - started, 1)
        path.write_text(json.dumps(results, indent=2) + "\n")  # each section kept as it ends
    return results
