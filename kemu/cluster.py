"""An emulated Kubernetes cluster, built from a Scenario and torn down again.

Build order (teardown is the reverse, and runs whatever part of the build happened):
  1. underlay: the topology's Mininet switches, links and one host per node;
  2. per node: subnet lease, backend join (the node's cross-node data plane);
  3. per node: backend add_peers with every other node (routes to the other nodes' pods);
  4. per node: the CNI config the backend gives, written where a user can read it;
  5. per pod: its node's kubelet runs it (netns, CNI ADD, resolv.conf, containers);
  6. ready: every pod answers from its gateway and across nodes at steady-state latency;
  7. controllers: readiness → endpoints → kube-proxy rules, DNS records, policy rules.
"""

from __future__ import annotations

import ipaddress
import re
import subprocess
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from functools import partial
from typing import Any

from mininet.link import Link

from kemu import doctor
from kemu.backend import Backend, PodNetwork, get_backend
from kemu.cni import NetworkConfigList, find_cni_path
from kemu.controllers import Controllers
from kemu.errors import KemuError, NotReadyError
from kemu.ipam import Lease, SubnetLeaseStore, underlay_addresses
from kemu.kubelet import Kubelet, Pod
from kemu.node import K8sNode, KemuNet, ShapedLink, UnderlaySwitch
from kemu.registry import lookup
from kemu.scenario import Endpoint, Scenario
from kemu.state import RunState

UNDERLAY_MTU = 1500
PROBE_READY_TIMEOUT_S = 15.0  # how long a build waits for pods with readiness probes
READY_RTT_MS = 20.0  # frames held for ARP come back after ~200-1000 ms; steady state is <1 ms
_RTT = re.compile(r"time=([0-9.]+) ms")


class Cluster:
    def __init__(self, scenario: Scenario, state: RunState,
                 log: Callable[[str], None] = lambda message: None):
        self.scenario = scenario
        self.state = state
        self.log = log
        spec = scenario.cluster
        backend_cls = get_backend(spec.cni_plugin)
        self.backend: Backend = backend_cls(
            PodNetwork(spec.pod_cidr, UNDERLAY_MTU, state.dir, state), spec.cni_options)
        self.leases = SubnetLeaseStore(spec.pod_cidr, backend_cls.subnet_len)
        self.net: KemuNet | None = None
        self.nodes: dict[str, K8sNode] = {}
        self.kubelets: dict[str, Kubelet] = {}
        self.pods: dict[str, Pod] = {}
        self._joined: list[str] = []
        self.timings: dict[str, float] = {}  # how long each build phase took
        self.controllers: Controllers | None = None
        self.proxy_mode = ""

    # -- build -------------------------------------------------------------------------------

    def start(self) -> None:
        clock = _Stopwatch()
        self._build_underlay()
        self.timings["underlay_s"] = clock.lap()
        self.backend.start()
        for name, node in self.nodes.items():
            lease = self.leases.acquire(name, node_address(node))
            self._joined.append(name)
            self.backend.join(node, lease)
        for name, node in self.nodes.items():
            self.backend.add_peers(node, self._peers_of(name))
        cni_path = find_cni_path()
        for name, node in self.nodes.items():
            conf = NetworkConfigList(self.backend.cni_config(node, self.leases.get(name)),
                                     cni_path)
            conf.write(self.state.dir / "nodes" / name / "net.d",
                       f"10-{self.backend.name}.conflist")
            self.kubelets[name] = Kubelet(node, conf, self.state, self._resolv_conf
                                          if self.scenario.dns.enabled else None)
        self.timings["network_s"] = clock.lap()
        self.log(f"{len(self.nodes)} nodes up with {self.backend.name}")
        for spec in self.scenario.pods:
            self.pods[spec.key] = self.kubelets[self.scenario.placement[spec.key]].run_pod(spec)
        for pod in self.pods.values():
            self.kubelets[pod.node.name].wait_running(pod)
        self.timings["pods_s"] = clock.lap()
        # The pod network first, before policies may (rightly) refuse the readiness pings.
        self.wait_ready()
        self.timings["ready_s"] = clock.lap()
        self.proxy_mode = self._proxy_mode()
        self.controllers = Controllers(self)
        self.controllers.start()
        probed = [p.key for p in self.scenario.pods
                  if any(c.readiness for c in p.containers)]
        for key in self.controllers.wait_ready(probed, PROBE_READY_TIMEOUT_S):
            self.log(f"pod {key} is not ready after {PROBE_READY_TIMEOUT_S:.0f} s: it is not "
                     f"an endpoint of its services")
        self.timings["services_s"] = clock.lap()
        self.log(f"{len(self.pods)} pods ready in {clock.total():.1f} s")

    def _build_underlay(self) -> None:
        topo_spec = self.scenario.topology
        names = [n.name for n in self.scenario.cluster.nodes]
        addresses = underlay_addresses(topo_spec.underlay_cidr, len(names))
        link: dict[str, Any] = {}
        if topo_spec.link.bw_mbit:
            link = {"cls": ShapedLink, "bw": topo_spec.link.bw_mbit}
        topo_cls = lookup("kemu.topologies", topo_spec.name, "topology")
        topo = topo_cls(nodes=[(n, str(a)) for n, a in zip(names, addresses, strict=True)],
                        link=link)
        self.net = KemuNet(topo=topo, host=K8sNode, switch=UnderlaySwitch, link=Link,
                           controller=None, build=False, autoSetMacs=False)
        try:
            self.net.build()
        finally:
            # Mininet starts each host's and switch's shell while building; record them even
            # when the build fails halfway, so nothing escapes teardown or `kemu clean`.
            for node in (*self.net.hosts, *self.net.switches):
                if node.shell and node.pid:
                    self.state.record_process(node.pid, f"mininet {node.name}")
        self.net.start()
        self.nodes = {h.name: h for h in self.net.hosts}

    def wait_ready(self, timeout: float = 20.0) -> None:
        """Ready means answering at steady-state latency: right after start, frames wait in
        ARP queues for up to a second, and a measurement then would measure that."""
        probes: list[tuple[list[str], str, str]] = []
        for pod in self.pods.values():
            gateways = [ip.get("gateway") for ip in pod.cni_result.get("ips", [])]
            for gateway in filter(None, gateways):
                probes.append((self.exec_prefix(pod), gateway, f"pod {pod.spec.key}"))
        first_pod_on: dict[str, Pod] = {}
        for pod in self.pods.values():
            first_pod_on.setdefault(pod.node.name, pod)
        for a in first_pod_on.values():
            for b in first_pod_on.values():
                if a is not b:
                    probes.append((self.exec_prefix(a), b.ip, f"pod {a.spec.key}"))
        if not probes:
            return
        deadline = time.monotonic() + timeout
        with ThreadPoolExecutor(max_workers=min(16, len(probes))) as pool:
            waits = [pool.submit(_wait_steady, prefix, target, label, deadline)
                     for prefix, target, label in probes]
            failures = [f for f in (w.result() for w in waits) if f]
        if failures:
            raise NotReadyError("the pod network did not come up:\n  " + "\n  ".join(failures))

    def _peers_of(self, name: str) -> list[Lease]:
        return [lease for lease in self.leases.leases()
                if lease.node != name and lease.node in self._joined]

    # -- node events (a node's network agent stops and starts, pods stay) --------------------

    def node_leave(self, name: str) -> None:
        """The node's agent goes away: the others forget its lease, its data plane goes."""
        lease = self.leases.get(name)
        self._joined.remove(name)
        for other in self._joined:
            self.backend.remove_peers(self.nodes[other], [lease])
        self.backend.leave(self.nodes[name], lease)

    def node_join(self, name: str) -> None:
        """The node comes back with its lease (as flannel renews one) and is peered again."""
        lease = self.leases.get(name)
        self.backend.join(self.nodes[name], lease)
        self._joined.append(name)
        for other in self._joined:
            if other != name:
                self.backend.add_peers(self.nodes[other], [lease])
        self.backend.add_peers(self.nodes[name], self._peers_of(name))

    # -- use ---------------------------------------------------------------------------------

    def exec_prefix(self, where: Pod | K8sNode) -> list[str]:
        """argv prefix that runs a command inside a pod's or a node's network namespace."""
        if isinstance(where, Pod):
            return ["ip", "netns", "exec", where.netns]
        return ["nsenter", f"--net={where.netns_path}", "--"]

    def resolve(self, endpoint: Endpoint) -> Place:
        """Where a measurement endpoint is: how to run commands there, its address and port."""
        if endpoint.service:
            svc = next(s for s in self.scenario.services if s.key == endpoint.service)
            if endpoint.node_port:
                node = self.nodes[endpoint.node]
                return Place(self.exec_prefix(node), str(node_address(node)), endpoint.port)
            return Place([], svc.cluster_ip, endpoint.port)
        if endpoint.pod:
            pod = self.pods[endpoint.pod]
            ports = [p.container_port for c in pod.spec.containers for p in c.ports
                     if p.protocol == "TCP"]
            return Place(self.exec_prefix(pod), pod.ip, ports[0] if ports else 0)
        node = self.nodes[endpoint.node]
        return Place(self.exec_prefix(node), str(node_address(node)), 0)

    def _proxy_mode(self) -> str:
        """kube-proxy's mode: ipvs is asked for, but kemu programs iptables (the kernel may
        lack IPVS, and kemu has no IPVS proxier yet); say so rather than pretend."""
        if self.scenario.cluster.proxy_mode == "ipvs":
            reason = "kemu has no IPVS proxier yet" if doctor.module_available("ip_vs") else \
                "this kernel has no IPVS (kemu doctor)"
            self.log(f"kube-proxy: ipvs mode asked for, but {reason}: using iptables mode")
        return "iptables"

    def _resolv_conf(self, namespace: str) -> str:
        domain = self.scenario.dns.domain
        return (f"# Generated by kemu: cluster DNS, as kubelet's ClusterFirst policy.\n"
                f"search {namespace}.svc.{domain} svc.{domain} {domain}\n"
                f"nameserver {self.scenario.dns.cluster_ip}\n"
                f"options ndots:5\n")

    def crash_pod(self, key: str) -> None:
        """The pod's containers die (the sandbox stays): the controllers notice."""
        pod = self.pods[key]
        self.kubelets[pod.node.name].crash_pod(pod)

    def node_rules(self, node: str) -> str:
        """The node's iptables, as `iptables-save` prints them (kube-proxy's and policies')."""
        return self.nodes[node].run("iptables-save")

    def describe(self) -> dict[str, Any]:
        """The cluster as built, for results.json and `kemu status`."""
        return {
            "cni": self.backend.name,
            "kube_proxy_mode": self.proxy_mode or None,
            "mtu": self.backend.mtu,
            "encap_overhead": self.backend.encap_overhead,
            "timings": {k: round(v, 3) for k, v in self.timings.items()},
            "nodes": [{"name": lease.node, "underlay_ip": str(lease.public_ip),
                       "pod_subnet": str(lease.subnet), **_public(lease),
                       "dataplane": self.backend.node_state(self.nodes[lease.node])}
                      for lease in self.leases.leases()],
            "pods": [{"name": p.spec.name, "namespace": p.spec.namespace, "node": p.node.name,
                      "ip": p.ip, "ready": p.ready} for p in self.pods.values()],
            "services": [{"name": s.name, "namespace": s.namespace, "type": s.type,
                          "clusterIP": s.cluster_ip or None,
                          "ports": [{"name": p.name, "port": p.port, "protocol": p.protocol,
                                     "targetPort": p.target_port,
                                     **({"nodePort": p.node_port} if p.node_port else {}),
                                     "endpoints": [f"{e.ip}:{e.port}" for e in
                                                   (self.controllers.endpoints or {}).get(
                                                       (s.key, p.name), [])]
                                     if self.controllers else []}
                                    for p in s.ports],
                          **({"externalName": s.external_name} if s.external_name else {})}
                         for s in self.scenario.services],
        }

    # -- teardown ----------------------------------------------------------------------------

    def stop(self) -> list[str]:
        """Tear down whatever was built, in reverse. Returns the errors met (it goes on past
        them: a failed step must not leave the rest behind)."""
        errors: list[str] = []

        def attempt(what: str, step: Callable[[], object]) -> None:
            try:
                step()
            except (KemuError, OSError, subprocess.SubprocessError) as e:
                errors.append(f"{what}: {e}")

        if self.controllers:
            self.controllers.stop()

        for kubelet in self.kubelets.values():
            for pod in list(kubelet.pods.values()):
                attempt(f"pod {pod.spec.key}", partial(kubelet.kill_pod, pod))
        for name in reversed(self._joined):
            lease = self.leases.get(name)
            attempt(f"node {name}", partial(self.backend.leave, self.nodes[name], lease))
            self.leases.release(name)
        self._joined.clear()
        attempt("backend", self.backend.stop)
        if self.net is not None:
            attempt("mininet", self.net.stop)
            for node in (*self.net.hosts, *self.net.switches):
                self.state.forget_process(node.pid)
            self.net = None
        return errors


@dataclass(frozen=True)
class Place:
    """A measurement endpoint, resolved: argv prefix to run there, address, port."""

    prefix: list[str]
    ip: str
    port: int


def node_address(node: K8sNode) -> ipaddress.IPv4Address:
    return ipaddress.IPv4Address(node.IP())


def _public(lease: Lease) -> dict[str, Any]:
    return {"backend_data": lease.backend_data} if lease.backend_data else {}


class _Stopwatch:
    def __init__(self) -> None:
        self.start = self.last = time.monotonic()

    def lap(self) -> float:
        now, last = time.monotonic(), self.last
        self.last = now
        return now - last

    def total(self) -> float:
        return time.monotonic() - self.start


def _wait_steady(prefix: list[str], target: str, label: str, deadline: float) -> str:
    """Ping until one reply comes at steady-state latency; '' when it did, else the failure."""
    last = "no reply"
    while time.monotonic() < deadline:
        out = subprocess.run([*prefix, "ping", "-n", "-c", "1", "-W", "1", target],
                             capture_output=True, text=True)
        match = _RTT.search(out.stdout)
        if match and float(match.group(1)) < READY_RTT_MS:
            return ""
        last = f"rtt {match.group(1)} ms" if match else (out.stderr.strip() or "no reply")
        time.sleep(0.05)
    return f"{label} → {target}: {last}"
