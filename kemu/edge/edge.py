"""The edge of the emulated network: the world outside the cluster, as a scenario's `external:`
describes it. External hosts (namespaces, clients or servers running a built-in image) on an
Open vSwitch edge switch uplinked to the underlay, and the cloud's load balancer — the os-ken
app (app.py) programming that switch — configured as the cloud's controller would configure
it (config.py). Everything stays sealed: the hosts are namespaces, the switch and its ports
carry no address, OpenFlow runs over loopback.

Its part in a cluster's build, in order: `add_to` the topology (before Mininet builds it),
`attach` to the built network (the app's controller, a config without VIPs: the cloud makes
load balancers once Services exist), `start` (routes, the hosts' programs, the app connected),
`configure` with the Services' VIPs (the controllers' `sync` does nothing until then, and
follows every change after), `follow_gates` (the readiness gates of container-native load
balancers), `wait_settled` until every backend has been checked.
"""

from __future__ import annotations

import ipaddress
import json
import os
import socket
import threading
import time
from collections.abc import Callable
from typing import Any

from mininet.link import TCULink
from mininet.net import Mininet
from mininet.topo import Topo

from kemu.clock import patience
from kemu.edge.bgp import BGPRouting
from kemu.edge.config import Node, lb_config
from kemu.edge.switch import EdgeSwitch, LBController
from kemu.errors import NotReadyError
from kemu.files import write_atomic
from kemu.k8s.controllers import View
from kemu.k8s.endpoints import ready
from kemu.k8s.store import EndpointMap, PodStatus, Store
from kemu.kernel.node import UNDERLAY_INTF, ExternalHost, K8sNode
from kemu.kernel.processes import Process, stop_all
from kemu.kernel.records import RunState
from kemu.scenario.model import NEG_READINESS_GATE, ExternalSpec
from kemu.scenario.objects import Service

Log = Callable[[str], None]


class Edge:
    def __init__(self, spec: ExternalSpec, underlay: ipaddress.IPv4Network, state: RunState,
                 log: Log):
        self.spec, self.state, self.log = spec, state, log
        self.hosts: dict[str, ExternalHost] = {}
        self.programs: list[Process] = []
        self.controller: LBController | None = None
        self.config_path = state.dir / "lb.json"
        self.nodes: list[Node] = []  # the nodes as the cloud knows them: name, IP, MAC
        self.written = ""
        self.reflector: threading.Thread | None = None
        self.stopping = threading.Event()
        self.net: Mininet | None = None
        self.bgp = BGPRouting(spec, underlay, state) \
            if spec.load_balancer.mode == "bgp" else None

    def add_to(self, topo: Topo) -> None:
        """An OpenFlow switch with the external hosts, uplinked to the underlay."""
        switch = f"e{self.state.run_id}"  # an OVS bridge name: short, and this run's own
        self.state.record_ovs_bridge(switch)
        topo.addSwitch(switch, cls=EdgeSwitch)
        for name, address in self.spec.host_addresses().items():
            topo.addHost(name, cls=ExternalHost, ip=f"{address}/{self.spec.cidr.prefixlen}")
            topo.addLink(name, switch, intfName1=UNDERLAY_INTF, cls=TCULink)
        topo.addLink(switch, topo.uplink, cls=TCULink)
        if self.bgp:
            self.bgp.add_to(topo, switch)

    def attach(self, net: Mininet) -> None:
        """The load-balancer app as the network's controller (Mininet starts it)."""
        self.net = net
        self.controller = net.addController(
            "lb", controller=LBController, state=self.state, config=self.config_path,
            log=self.state.dir / "lb.log")
        names = {h.name for h in self.spec.hosts}
        self.hosts = {h.name: h for h in net.hosts if isinstance(h, ExternalHost)
                      and h.name in names}
        self._write([], [])  # no VIPs yet

    def start(self, nodes: dict[str, K8sNode], underlay_cidr: ipaddress.IPv4Network,
              pod_cidr: ipaddress.IPv4Network, services: list[Service]) -> None:
        """Nodes and external hosts share the L2 segment through the uplink: on-link routes
        both ways; pods reach the outside through their node's SNAT. Then the hosts'
        programs, and the app connected."""
        cidr = str(self.spec.cidr)
        for node in nodes.values():
            node.run("ip", "route", "add", cidr, "dev", UNDERLAY_INTF)
            node.run("iptables", "-t", "nat", "-A", "POSTROUTING", "-s", str(pod_cidr), "-d",
                     cidr, "-m", "comment", "--comment", "kemu: pods reach the outside via SNAT",
                     "-j", "MASQUERADE")
        vips = [s.load_balancer_ip for s in services
                if s.load_balancer_ip and ipaddress.IPv4Address(s.load_balancer_ip)
                not in self.spec.cidr] if not self.bgp else []  # bgp: routed via the router
        for host in self.hosts.values():
            host.ip_batch([f"route add {underlay_cidr} dev {UNDERLAY_INTF}"] +
                          [f"route add {vip}/32 dev {UNDERLAY_INTF}" for vip in vips])
        if self.bgp:
            assert self.net is not None
            self.bgp.start(self.net, nodes, self.hosts.values())
        for spec in self.spec.hosts:
            if spec.argv:
                host = self.hosts[spec.name]
                self.programs.append(Process(
                    host.netns, spec.argv, f"external host {spec.name}", self.state,
                    self.state.dir / "external" / f"{spec.name}.log",
                    {**os.environ, "POD_NAME": spec.name}).start())
        self._wait_connected(nodes)

    def _wait_connected(self, nodes: dict[str, K8sNode], timeout: float = 15.0) -> None:
        """Ready: the switch is connected to the app, and every node knows the health
        checker's MAC (else the first checks would time out on ARP and flap)."""
        deadline = time.monotonic() + patience(timeout)
        while not (self.state_of_app() or {}).get("connected"):
            if time.monotonic() > deadline:
                raise NotReadyError("the edge switch did not connect to the load-balancer app")
            time.sleep(0.1)
        # At once: nothing answers these pings (the app answers only the checker's ARP), so
        # each waits its full second.
        pings = [Process(host.netns, ["ping", "-c", "1", "-W", "1", self.spec.checker_ip],
                         f"ping from {host.name}").start()
                 for host in (*nodes.values(), *self.hosts.values())]
        for ping in pings:
            ping.wait()

    def configure(self, services: list[Service], nodes: dict[str, K8sNode],
                  pods: list[PodStatus], endpoints: EndpointMap) -> None:
        """What the cloud's controller tells its load balancer, for these Services and pods
        (the app reloads the file when it changes), or MetalLB's speakers announce. Called
        under the store's lock, as `sync` is."""
        self.nodes = [(name, node.IP(), node.intf(UNDERLAY_INTF).MAC())
                      for name, node in nodes.items()]
        self._write(services, pods)
        if self.bgp:
            self.bgp.update(services, endpoints)

    def _write(self, services: list[Service], pods: list[PodStatus]) -> None:
        text = json.dumps(lb_config(self.spec, services, self.nodes, pods), indent=1)
        if text != self.written:
            write_atomic(self.config_path, text)
            self.written = text

    def sync(self, view: View) -> None:
        """The cloud's controller following the cluster: Services made, changed or deleted,
        and (container-native) the pods behind them."""
        if self.nodes:
            self._write(view.services, view.pods)
            if self.bgp:
                self.bgp.update(view.services, view.endpoints)

    def follow_gates(self, store: Store) -> None:
        """Container-native: the readiness reflector of network endpoint groups
        (ingress-gce pkg/neg/readiness) in a thread of its own: twice a second, a pod's gate
        condition is set True once the load balancer finds it healthy, and stays so (kemu
        has no 10-minute give-up: a pod never found healthy stays out)."""
        if self.spec.load_balancer.mode != "pods" or self.reflector:
            return

        def reflect() -> None:
            while not self.stopping.wait(0.5):
                healthy = {b["pod"] for vip in (self.state_of_app() or {}).get("vips", [])
                           for b in vip["backends"] if b["healthy"] and b.get("pod")}
                for pod in store.pods():
                    if NEG_READINESS_GATE in pod.spec.readiness_gates and \
                            NEG_READINESS_GATE not in pod.conditions and pod.spec.key in healthy:
                        store.update_pod(pod.spec.key,
                                         conditions=pod.conditions | {NEG_READINESS_GATE})

        self.reflector = threading.Thread(target=reflect, name="neg-readiness", daemon=True)
        self.reflector.start()

    def wait_settled(self, services: list[Service], endpoints: EndpointMap,
                     nodes: list[str]) -> None:
        """Ready: every backend has been checked and found as it should be (a node with no
        local endpoint of a Local service stays unhealthy: that is its steady state; every node
        whose kube-proxy answers is healthy to a check of kube-proxy's health; every pod of a
        container-native one is healthy)."""
        if self.bgp:
            if not self.bgp.wait_routes(services, endpoints):
                self.log("metallb-bgp: the router does not route every VIP over its "
                         "announcing nodes yet; measuring anyway")
            return
        expected: dict[tuple[str, str, int], set[str] | None] = {}  # None: every backend
        budget = 5.0
        for svc in services:
            if svc.type != "LoadBalancer" or not svc.load_balancer_ip:
                continue
            health = self.spec.load_balancer.health(svc.external_traffic_policy)
            budget = max(budget, 1 + health["interval"] * (health["healthy_threshold"] + 1)
                         + health["timeout"] + 5)
            for port in svc.ports:
                if port.protocol not in ("TCP", "UDP"):
                    continue
                eps = ready(endpoints.get((svc.key, port.name), []))
                healthy: set[str] | None = {e.node for e in eps} \
                    if svc.external_traffic_policy == "Local" \
                    else set(nodes) if eps or health["port"] == "healthz" else set()
                if port.protocol == "UDP" and health["port"] == "traffic":
                    healthy = set()  # a TCP check of a UDP node port: nothing answers
                if self.spec.load_balancer.mode == "pods":  # a UDP port's pods never pass
                    healthy = None if port.protocol == "TCP" else set()
                expected[(svc.load_balancer_ip, port.protocol, port.port)] = healthy

        def as_expected(vip: dict[str, Any]) -> bool:
            want = expected.get((vip["ip"], vip["protocol"], vip["port"]), set())
            backends = vip["backends"]
            return all(b["checks"] > 0 for b in backends) and (
                all(b["healthy"] for b in backends) if want is None
                else {b["node"] for b in backends if b["healthy"]} == want)

        deadline = time.monotonic() + patience(budget)
        while True:
            vips = (self.state_of_app() or {}).get("vips", [])
            if len(vips) == len(expected) and all(as_expected(vip) for vip in vips):
                return
            if time.monotonic() > deadline:
                self.log(f"load balancer: backends not all as expected after {budget:.0f} s; "
                         f"measuring anyway")
                return
            time.sleep(0.1)

    def state_of_app(self) -> dict[str, Any] | None:
        """The load-balancer app's own view (VIPs, backends, health, events)."""
        if self.controller is None:
            return None
        try:
            with socket.create_connection(("127.0.0.1", self.controller.state_port),
                                          timeout=2) as conn:
                conn.sendall(b"GET / HTTP/1.0\r\n\r\n")
                data = b""
                while chunk := conn.recv(65536):
                    data += chunk
            state: dict[str, Any] = json.loads(data.split(b"\r\n\r\n", 1)[1])
            return state
        except (OSError, ValueError, IndexError):
            return None

    def stop(self) -> None:
        """The hosts' programs; the switch, hosts and app go with Mininet's network."""
        self.stopping.set()
        if self.reflector:
            self.reflector.join()
        if self.bgp:
            self.bgp.stop()
        stop_all(self.programs, grace=0)
        self.programs.clear()
