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

import contextlib
import ipaddress
import json
import os
import re
import socket
import subprocess
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, replace
from functools import partial
from pathlib import Path
from typing import Any

from mininet.link import Link, TCULink

from kemu import doctor, ingress, linkemu
from kemu.backend import Backend, PodNetwork, get_backend
from kemu.clock import patience
from kemu.cni import NetworkConfigList, find_cni_path
from kemu.controllers import Controllers, write_ingress_config
from kemu.errors import KemuError, NotReadyError
from kemu.external import ExternalSpec
from kemu.files import write_atomic
from kemu.ipam import Lease, SubnetLeaseStore, underlay_addresses
from kemu.kubelet import Kubelet, Pod
from kemu.lb.controller import EdgeSwitch, LBController
from kemu.node import (
    UNDERLAY_INTF,
    ExternalHost,
    K8sNode,
    KemuNet,
    ShapedLink,
    UnderlaySwitch,
)
from kemu.objects import NetworkPolicy, PodSpec, Service, owner_template, replacement, scale
from kemu.registry import lookup
from kemu.scenario import DNSConfig, Endpoint, LinkParams, Scenario
from kemu.scheduler import place
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
        self.pods_used = {p.key for p in scenario.pods}  # every pod this run has had
        self._joined: list[str] = []
        self.timings: dict[str, float] = {}  # how long each build phase took
        self.controllers: Controllers | None = None
        self.externals: dict[str, ExternalHost] = {}
        self.down_since: dict[str, float] = {}  # node → when it stopped answering
        self.ingress_certs: dict[str, tuple[Path, Path]] = {}
        self.link_method = ""
        self.links: dict[str, linkemu.EmulatedLink] = {}  # by name: node names, "wan", …
        self.external_processes: list[subprocess.Popen[bytes]] = []
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
        if self.scenario.ingresses:  # nginx starts on a configuration without endpoints yet
            directory = self.state.dir / "ingress"
            self.ingress_certs = ingress.write_certificates(
                list(self.scenario.ingresses), list(self.scenario.secrets), directory / "certs")
            write_ingress_config(directory, ingress.render(
                list(self.scenario.ingresses), list(self.scenario.services), {}, directory,
                self.ingress_certs))
        self._run_pods()
        self.timings["pods_s"] = clock.lap()
        # The pod network first, before policies may (rightly) refuse the readiness pings.
        self.wait_ready()
        self.timings["ready_s"] = clock.lap()
        self.proxy_mode = self._proxy_mode()
        self.controllers = Controllers(self)
        self.controllers.start()
        probed = [p.key for p in self.scenario.pods
                  if any(c.readiness for c in p.containers)]
        for key in self.controllers.wait_ready(probed, patience(PROBE_READY_TIMEOUT_S)):
            self.log(f"pod {key} is not ready after {PROBE_READY_TIMEOUT_S:.0f} s: it is not "
                     f"an endpoint of its services")
        if self.scenario.external:
            self._write_lb_config(vips=True)
            self._wait_lb_settled()
        self.timings["services_s"] = clock.lap()
        self.log(f"{len(self.pods)} pods ready in {clock.total():.1f} s")

    def _run_pods(self) -> None:
        """Every node's kubelet starts its pods, the nodes in parallel (as in a cluster)."""
        per_node: dict[str, list[Any]] = {name: [] for name in self.kubelets}
        for spec in self.scenario.pods:
            per_node[self.scenario.placement[spec.key]].append(spec)

        def start(name: str) -> list[Pod]:
            kubelet = self.kubelets[name]
            pods = [kubelet.run_pod(spec) for spec in per_node[name]]
            for pod in pods:
                kubelet.wait_running(pod)
            return pods

        with ThreadPoolExecutor(max_workers=min(8, len(per_node) or 1)) as pool:
            for pods in pool.map(start, [n for n in per_node if per_node[n]]):
                self.pods.update({p.spec.key: p for p in pods})
        # Keep the scenario's order (results, readiness probes read it).
        self.pods = {spec.key: self.pods[spec.key] for spec in self.scenario.pods}

    def _build_underlay(self) -> None:
        topo_spec = self.scenario.topology
        names = [n.name for n in self.scenario.cluster.nodes]
        addresses = underlay_addresses(topo_spec.underlay_cidr, len(names))
        netem = doctor.netem_available()
        self.link_method = linkemu.method(topo_spec.link, netem) or \
            linkemu.method(topo_spec.wan or topo_spec.link, netem)
        topo_cls = lookup("kemu.topologies", topo_spec.name, "topology")
        topo = topo_cls(nodes=[(n, str(a)) for n, a in zip(names, addresses, strict=True)],
                        link=_mininet_link(topo_spec.link, netem, both_ends=False),
                        wan=_mininet_link(topo_spec.wan, netem, both_ends=True),
                        labels={n.name: n.labels for n in self.scenario.cluster.nodes})
        external = self.scenario.external
        if external:
            self._add_edge(topo, external)
        self.net = KemuNet(topo=topo, host=K8sNode, switch=UnderlaySwitch, link=Link,
                           controller=None, build=False, autoSetMacs=False)
        try:
            self.net.build()
            if external:
                self.net.addController("lb", controller=LBController, state=self.state,
                                       config=self.state.dir / "lb.json",
                                       log=self.state.dir / "lb.log")
        finally:
            # Mininet starts each host's and switch's shell while building; record them even
            # when the build fails halfway, so nothing escapes teardown or `kemu clean`.
            for node in (*self.net.hosts, *self.net.switches, *self.net.controllers):
                if node.shell and node.pid:
                    self.state.record_process(node.pid, f"mininet {node.name}")
        self.nodes = {h.name: h for h in self.net.hosts if isinstance(h, K8sNode)}
        self.externals = {h.name: h for h in self.net.hosts if isinstance(h, ExternalHost)}
        if external:  # no VIP yet: the cloud creates load balancers once Services exist
            self._write_lb_config(vips=False)
        self.net.start()
        if self.link_method == "delay-line":
            self.log(f"link delay/jitter/loss: no sch_netem here, using kemu's delay line "
                     f"({linkemu.CEILING})")
        for name, (a, b) in topo.named_links.items():
            link = self.net.linksBetween(self.net[a], self.net[b])[0]
            wan = name not in self.nodes
            params = (topo_spec.wan or LinkParams()) if wan else topo_spec.link
            self.links[name] = linkemu.EmulatedLink(
                name, link, [link.intf1, link.intf2] if wan else [link.intf1], params, netem,
                self.state, self.state.dir / "delay-line")
            self.links[name].start()
        if external:
            self._route_edge(external)

    def _add_edge(self, topo: Any, external: ExternalSpec) -> None:
        """The edge: an OpenFlow switch with the external hosts, uplinked to the underlay."""
        edge = f"e{self.state.run_id}"  # an OVS bridge name: short, and this run's own
        self.state.record_ovs_bridge(edge)
        topo.addSwitch(edge, cls=EdgeSwitch)
        for name, address in external.host_addresses().items():
            topo.addHost(name, cls=ExternalHost, ip=f"{address}/{external.cidr.prefixlen}")
            topo.addLink(name, edge, intfName1=UNDERLAY_INTF, cls=TCULink)
        topo.addLink(edge, topo.uplink, cls=TCULink)

    def _route_edge(self, external: ExternalSpec) -> None:
        """Nodes and external hosts share the L2 segment through the uplink: on-link routes
        both ways; pods reach the outside through their node's SNAT."""
        cidr, pod_cidr = str(external.cidr), str(self.scenario.cluster.pod_cidr)
        for node in self.nodes.values():
            node.run("ip", "route", "add", cidr, "dev", UNDERLAY_INTF)
            node.run("iptables", "-t", "nat", "-A", "POSTROUTING", "-s", pod_cidr, "-d", cidr,
                     "-m", "comment", "--comment", "kemu: pods reach the outside via SNAT",
                     "-j", "MASQUERADE")
        vips = [s.load_balancer_ip for s in self.scenario.services
                if s.load_balancer_ip and ipaddress.IPv4Address(s.load_balancer_ip)
                not in external.cidr]
        for host in self.externals.values():
            host.ip_batch([f"route add {self.scenario.topology.underlay_cidr} dev "
                           f"{UNDERLAY_INTF}"] +
                          [f"route add {vip}/32 dev {UNDERLAY_INTF}" for vip in vips])
        for spec in external.hosts:
            if spec.argv:
                self._start_external(spec)
        self._wait_edge(external)

    def _wait_edge(self, external: ExternalSpec, timeout: float = 15.0) -> None:
        """Ready: the switch is connected to the app, and every node knows the health
        checker's MAC (else the first checks would time out on ARP and flap)."""
        deadline = time.monotonic() + patience(timeout)
        while not (self.load_balancer_state() or {}).get("connected"):
            if time.monotonic() > deadline:
                raise NotReadyError("the edge switch did not connect to the load-balancer app")
            time.sleep(0.1)
        procs = [subprocess.Popen([*self.exec_prefix(n), "ping", "-c", "1", "-W", "1",
                                   external.checker_ip], stdout=subprocess.DEVNULL)
                 for n in (*self.nodes.values(), *self.externals.values())]
        for proc in procs:
            proc.wait()

    def _start_external(self, spec: Any) -> None:
        host = self.externals[spec.name]
        log = self.state.dir / "external" / f"{spec.name}.log"
        log.parent.mkdir(parents=True, exist_ok=True)
        with open(log, "ab") as out:
            proc = subprocess.Popen([*self.exec_prefix(host), *spec.argv],
                                    stdout=out, stderr=out, start_new_session=True,
                                    env={**os.environ, "POD_NAME": spec.name})
        self.state.record_process(proc.pid, f"external host {spec.name}")
        self.external_processes.append(proc)

    def _write_lb_config(self, vips: bool) -> None:
        """What the cloud's controller tells its load balancer (see lb_config)."""
        external = self.scenario.external
        assert external
        nodes = [(name, str(node_address(node)), node.intf(UNDERLAY_INTF).MAC())
                 for name, node in self.nodes.items()]
        config = lb_config(external, self.services if vips else [], nodes)
        write_atomic(self.state.dir / "lb.json", json.dumps(config, indent=1))

    def _wait_lb_settled(self) -> None:
        """Ready: every backend has been checked and found as it should be (a node with no
        local endpoint of a Local service stays unhealthy: that is its steady state)."""
        external = self.scenario.external
        assert external and self.controllers
        endpoints = self.controllers.endpoints or {}
        expected: dict[tuple[str, int], set[str]] = {}
        budget = 5.0
        for svc in self.scenario.services:
            if svc.type != "LoadBalancer" or not svc.load_balancer_ip:
                continue
            health = external.load_balancer.health(svc.external_traffic_policy)
            budget = max(budget, 1 + health["interval"] * (health["healthy_threshold"] + 1)
                         + health["timeout"] + 5)
            for port in svc.ports:
                eps = endpoints.get((svc.key, port.name), [])
                local = svc.external_traffic_policy == "Local"
                expected[(svc.load_balancer_ip, port.port)] = \
                    {e.node for e in eps} if local else (set(self.nodes) if eps else set())
        deadline = time.monotonic() + patience(budget)
        while True:
            state = self.load_balancer_state() or {}
            settled = all(
                all(b["checks"] > 0 for b in vip["backends"]) and
                {b["node"] for b in vip["backends"] if b["healthy"]} ==
                expected.get((vip["ip"], vip["port"]), set())
                for vip in state.get("vips", [])) and len(state.get("vips", [])) == \
                len(expected)
            if settled:
                return
            if time.monotonic() > deadline:
                self.log("load balancer: backends not all as expected after "
                         f"{budget:.0f} s; measuring anyway")
                return
            time.sleep(0.1)

    def _link_emulation(self) -> dict[str, Any]:
        """How the scenario's link parameters are realised (results.json says it)."""
        link = self.scenario.topology.link
        out: dict[str, Any] = {"rate": "tbf" if link.bw_mbit else None,
                               "delay_jitter_loss": self.link_method or None}
        if self.link_method == "delay-line":
            out["ceiling"] = linkemu.CEILING
        out["links"] = {name: link.describe() for name, link in self.links.items()}
        return out

    def load_balancer_state(self) -> dict[str, Any] | None:
        """The load-balancer app's own view (VIPs, backends, health, events)."""
        if not self.net or not self.net.controllers:
            return None
        port = self.net.controllers[0].state_port
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=2) as conn:
                conn.sendall(b"GET / HTTP/1.0\r\n\r\n")
                data = b""
                while chunk := conn.recv(65536):
                    data += chunk
            state: dict[str, Any] = json.loads(data.split(b"\r\n\r\n", 1)[1])
            return state
        except (OSError, ValueError, IndexError):
            return None

    def node_down(self, name: str) -> None:
        """The node stops answering on the network (its processes and state stay)."""
        rules = ["-N KEMU-NODE-DOWN", "-A KEMU-NODE-DOWN -i lo -j RETURN",
                 "-A KEMU-NODE-DOWN -o lo -j RETURN", "-A KEMU-NODE-DOWN -j DROP"]
        rules += [f"-I {chain} 1 -j KEMU-NODE-DOWN" for chain in ("INPUT", "OUTPUT", "FORWARD")]
        with self._exclusive():
            self.nodes[name].run("iptables-restore", "--wait", "--noflush",
                                 input="*filter\n" + "\n".join(rules) + "\nCOMMIT\n")
            self.down_since[name] = time.monotonic()

    def node_ready(self, name: str) -> bool:
        """The node lifecycle controller's view: a node that stopped answering is Ready
        until its heartbeats have been missing for the grace period."""
        since = self.down_since.get(name)
        return since is None or time.monotonic() - since < self.scenario.cluster.node_grace_s

    def node_up(self, name: str) -> None:
        rules = [f"-D {chain} -j KEMU-NODE-DOWN" for chain in ("INPUT", "OUTPUT", "FORWARD")]
        rules += ["-F KEMU-NODE-DOWN", "-X KEMU-NODE-DOWN"]
        with self._exclusive():
            self.nodes[name].run("iptables-restore", "--wait", "--noflush",
                                 input="*filter\n" + "\n".join(rules) + "\nCOMMIT\n")
            self.down_since.pop(name, None)

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
        # Across nodes, a ring (each node's first pod to the next node's): every node's
        # tunnel or routes carry traffic both ways, in n probes rather than n².
        ring = list(first_pod_on.values())
        if len(ring) > 1:
            for a, b in zip(ring, ring[1:] + ring[:1], strict=True):
                probes.append((self.exec_prefix(a), b.ip, f"pod {a.spec.key}"))
        if not probes:
            return
        deadline = time.monotonic() + patience(timeout)
        # The links' own share of a round trip: the slowest node link, and every WAN link.
        delays = {name: link.params.delay_ms + link.params.jitter_ms
                  for name, link in self.links.items()}
        steady_ms = READY_RTT_MS + 2 * (max((d for n, d in delays.items() if n in self.nodes),
                                            default=0.0) +
                                        sum(d for n, d in delays.items() if n not in self.nodes))
        with ThreadPoolExecutor(max_workers=min(32, len(probes))) as pool:
            waits = [pool.submit(_wait_steady, prefix, target, label, deadline, steady_ms)
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

    # -- changes during a run: a scenario's events -------------------------------------------

    def set_link(self, name: str, up: bool) -> None:
        self.links[name].set_carrier(up)
        if name in self.nodes:  # a node cut off stops its heartbeats too (as node_down)
            if up:
                self.down_since.pop(name, None)
            else:
                self.down_since.setdefault(name, time.monotonic())

    def change_link(self, name: str, changes: dict[str, Any]) -> None:
        self.links[name].change(changes)

    def delete_pod(self, key: str) -> str:
        """kubectl delete pod: the pod goes (containers, CNI DEL, sandbox); if a Deployment
        owns it, its replacement starts under a new name, which is returned."""
        pod = self.pods[key]
        template = owner_template(self.scenario.templates, key)
        new = replacement(template, set(self.pods), self.pods_used) if template else ""
        self._remove_pod(pod)
        if template:
            self._create_pod(replace(template, name=new.split("/", 1)[1]))
        return new

    def scale(self, deployment: str, replicas: int) -> tuple[list[str], list[str]]:
        """kubectl scale: the Deployment's pods made or deleted; returns (made, deleted)."""
        template = self.scenario.templates[deployment]
        add, remove = scale(template, set(self.pods), replicas, self.pods_used)
        for key in remove:
            self._remove_pod(self.pods[key])
        for key in add:
            self._create_pod(replace(template, name=key.split("/", 1)[1]))
        return add, remove

    def _remove_pod(self, pod: Pod) -> None:
        with self._exclusive():  # the control loop reads the kubelets' pods
            try:
                self.kubelets[pod.node.name].kill_pod(pod)
            finally:  # gone from the cluster's view even if a CNI DEL failed
                del self.pods[pod.spec.key]

    def _create_pod(self, spec: PodSpec) -> None:
        """Scheduled where the scheduler would put it now (not on a node that is down), run
        by that node's kubelet."""
        load = {name: 0 for name in self.nodes}
        for pod in self.pods.values():
            load[pod.node.name] += 1
        up = [n for n in self.scenario.cluster.nodes if n.name not in self.down_since]
        kubelet = self.kubelets[place(spec, up, {n.name: load[n.name] for n in up})]
        self.pods_used.add(spec.key)  # taken, even if starting it fails
        with self._exclusive():
            pod = kubelet.run_pod(spec)
        kubelet.wait_running(pod)
        self.pods[spec.key] = pod

    def apply(self, objects: tuple[Service | NetworkPolicy, ...]) -> None:
        """kubectl apply of new Services and NetworkPolicies: the controllers take them up."""
        assert self.controllers
        with self._exclusive():
            for obj in objects:
                if isinstance(obj, Service):
                    self.controllers.services.append(obj)
                else:
                    self.controllers.policies.append(obj)
            self.controllers.endpoints = None  # re-render everything on the next step
        if self.scenario.external and any(isinstance(o, Service) for o in objects):
            self._write_lb_config(vips=True)

    def delete(self, kind: str, key: str) -> None:
        """kubectl delete service|networkpolicy."""
        assert self.controllers
        with self._exclusive():
            if kind == "Service":
                self.controllers.services = [s for s in self.controllers.services
                                             if s.key != key]
            else:
                self.controllers.policies = [p for p in self.controllers.policies
                                             if p.key != key]
            self.controllers.endpoints = None
        if self.scenario.external and kind == "Service":
            self._write_lb_config(vips=True)

    @property
    def services(self) -> list[Service]:
        """The Services as they are now (events add and delete some)."""
        return self.controllers.services if self.controllers else list(self.scenario.services)

    def _service(self, key: str) -> Service:
        svc = next((s for s in self.services if s.key == key), None)
        if svc is None:
            raise KemuError(f"service {key} does not exist now (not applied yet, or deleted "
                            f"by an event)")
        return svc

    # -- use ---------------------------------------------------------------------------------

    def exec_prefix(self, where: Pod | K8sNode | ExternalHost) -> list[str]:
        """argv prefix that runs a command inside a pod's or a node's network namespace."""
        if isinstance(where, Pod):
            return ["ip", "netns", "exec", where.netns]
        return ["nsenter", f"--net={where.netns_path}", "--"]

    def resolve(self, endpoint: Endpoint) -> Place:
        """Where a measurement endpoint is: how to run commands there, its address and port."""
        if endpoint.external:
            host = self.externals[endpoint.external]
            spec = next(h for h in self.scenario.external.hosts  # type: ignore[union-attr]
                        if h.name == endpoint.external)
            return Place(self.exec_prefix(host), host.IP(), spec.port)
        if endpoint.load_balancer:
            svc = self._service(endpoint.service)
            return Place([], svc.load_balancer_ip, endpoint.port)
        if endpoint.service:
            svc = self._service(endpoint.service)
            if endpoint.node_port:
                node = self.nodes[endpoint.node]
                return Place(self.exec_prefix(node), str(node_address(node)), endpoint.port)
            return Place([], svc.cluster_ip, endpoint.port)
        if endpoint.pod:
            pod = self.pods.get(endpoint.pod)
            if pod is None:
                raise KemuError(f"pod {endpoint.pod} does not exist now (deleted by an event?)")
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
        return resolv_conf(self.scenario.dns, namespace)

    def crash_pod(self, key: str) -> None:
        """The pod's containers die (the sandbox stays): the controllers notice."""
        pod = self.pods[key]
        with self._exclusive():
            self.kubelets[pod.node.name].crash_pod(pod)

    def _exclusive(self) -> Any:
        """Changes from outside the control loop wait for a reconcile in progress."""
        return self.controllers.lock if self.controllers else contextlib.nullcontext()

    def node_rules(self, node: str) -> str:
        """The node's iptables, as `iptables-save` prints them (kube-proxy's and policies')."""
        return self.nodes[node].run("iptables-save")

    def describe(self) -> dict[str, Any]:
        """The cluster as built, for results.json."""
        return {
            "cni": self.backend.name,
            "kube_proxy_mode": self.proxy_mode or None,
            "mtu": self.backend.mtu,
            "encap_overhead": self.backend.encap_overhead,
            "link_emulation": self._link_emulation(),
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
                          **({"externalName": s.external_name} if s.external_name else {}),
                          **({"loadBalancerIP": s.load_balancer_ip}
                             if s.load_balancer_ip else {})}
                         for s in self.services],
            **({"load_balancer": self.load_balancer_state(),
                "external_hosts": {n: h.IP() for n, h in self.externals.items()}}
               if self.externals or self.scenario.external else {}),
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
        for proc in self.external_processes:
            proc.kill()
            proc.wait()
            self.state.forget_process(proc.pid)
        self.external_processes.clear()

        for kubelet in self.kubelets.values():
            attempt(f"pods of {kubelet.node.name}", kubelet.remove_all)
        for name in reversed(self._joined):
            lease = self.leases.get(name)
            attempt(f"node {name}", partial(self.backend.leave, self.nodes[name], lease))
            self.leases.release(name)
        self._joined.clear()
        attempt("backend", self.backend.stop)
        for link in self.links.values():
            attempt(f"delay lines of link {link.name}", link.stop)
        if self.net is not None:
            net = self.net
            attempt("mininet", net.stop)
            for node in (*net.hosts, *net.switches, *net.controllers):
                if node.pid and not Path(f"/proc/{node.pid}").exists():
                    self.state.forget_process(node.pid)  # else `kemu clean` still finds it
            self.net = None
        return errors


@dataclass(frozen=True)
class Place:
    """A measurement endpoint, resolved: argv prefix to run there, address, port."""

    prefix: list[str]
    ip: str
    port: int


def _mininet_link(params: LinkParams | None, netem: bool, both_ends: bool) -> dict[str, Any]:
    """Mininet addLink options for a link: rate on both ends; netem where it sends (the
    node's end of a node's link, both ends of a link between switches)."""
    if params is None:
        return {}
    impair = linkemu.netem_params(params) if linkemu.method(params, netem) == "netem" else {}
    if not (params.bw_mbit or impair):
        return {}
    rate = {"bw": params.bw_mbit} if params.bw_mbit else {}
    return {"cls": ShapedLink, "params1": {**rate, **impair},
            "params2": {**rate, **(impair if both_ends else {})}}


def lb_config(external: ExternalSpec, services: list[Service],
              nodes: list[tuple[str, str, str]]) -> dict[str, Any]:
    """What the cloud's controller tells its load balancer: per LoadBalancer service port,
    the VIP, every node (name, underlay IP, MAC) as a backend on its node port, and the
    health check."""
    lb = external.load_balancer
    entries = []
    for svc in services:
        if svc.type != "LoadBalancer" or not svc.load_balancer_ip:
            continue
        for port in svc.ports:
            if port.protocol != "TCP":
                continue
            entries.append({
                "service": svc.key, "ip": svc.load_balancer_ip, "port": port.port,
                "mode": lb.mode, "health": lb.health(svc.external_traffic_policy),
                "backends": [{"node": name, "ip": ip, "mac": mac, "port": port.node_port}
                             for name, ip, mac in nodes],
            })
    return {"checker": {"ip": external.checker_ip}, "vips": entries}


def resolv_conf(dns: DNSConfig, namespace: str) -> str:
    """A pod's /etc/resolv.conf under cluster DNS, as kubelet's ClusterFirst policy writes it."""
    domain = dns.domain
    return (f"# Generated by kemu: cluster DNS, as kubelet's ClusterFirst policy.\n"
            f"search {namespace}.svc.{domain} svc.{domain} {domain}\n"
            f"nameserver {dns.cluster_ip}\n"
            f"options ndots:5\n")


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


def _wait_steady(prefix: list[str], target: str, label: str, deadline: float,
                 steady_ms: float) -> str:
    """Ping until one reply comes at steady-state latency; '' when it did, else the failure.
    (With loss configured, some pings are lost: the loop simply tries again.)"""
    last = "no reply"
    while time.monotonic() < deadline:
        out = subprocess.run([*prefix, "ping", "-n", "-c", "1", "-W", "1", target],
                             capture_output=True, text=True)
        match = _RTT.search(out.stdout)
        if match and float(match.group(1)) < steady_ms:
            return ""
        last = f"rtt {match.group(1)} ms" if match else (out.stderr.strip() or "no reply")
        time.sleep(0.05)
    return f"{label} → {target}: {last}"
