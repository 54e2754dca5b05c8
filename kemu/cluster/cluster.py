"""One emulated cluster, built from a Scenario and torn down again (lifecycle.py: `running`,
the one way every user of a cluster builds it and has it torn down).

Build order (teardown is the reverse, and undoes whatever part of the build happened):
  1. underlay: the topology's Mininet switches, links and one host per node, and the edge
     (external hosts, the load balancer's switch and app) when there is one;
  2. pod network: per node a subnet lease and the backend's join, then every node's peers,
     then each node's CNI config (network.py);
  3. pods: created in the store, run by their node's kubelet (netns, CNI ADD, resolv.conf,
     containers), the nodes in parallel;
  4. ready: every pod answers from its gateway and across nodes at steady-state latency;
  5. controllers: readiness → endpoints → kube-proxy's and the policy agent's rules, DNS
     records, the ingress configuration; pods with readiness probes are waited for;
  6. the edge's load balancer is given the Services' VIPs and its health checks settle.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any

from kemu.clock import patience
from kemu.cluster import addons, kube_proxy
from kemu.cluster.describe import describe
from kemu.cluster.kubelet import Kubelet, Pod
from kemu.cluster.network import Network
from kemu.cluster.readiness import wait_ready
from kemu.cluster.rollout import RollingUpdate
from kemu.cluster.underlay import Underlay
from kemu.cluster.workloads import Workloads
from kemu.edge.edge import Edge
from kemu.edge.resolver import Resolver
from kemu.errors import CommandError, KemuError
from kemu.k8s.controllers import Controllers
from kemu.k8s.kube_proxy import KubeProxy
from kemu.k8s.kube_proxy.iptables import JUMPS as PROXY_JUMPS
from kemu.k8s.network_policy import JUMPS as POLICY_JUMPS
from kemu.k8s.network_policy import PolicyAgent
from kemu.k8s.store import Store
from kemu.kernel import doctor
from kemu.kernel.exec import Netns
from kemu.kernel.iptables import ChainSet
from kemu.kernel.node import ExternalHost, K8sNode
from kemu.kernel.records import RunState
from kemu.scenario.model import NEG_READINESS_GATE, MeasurementEnd, Scenario
from kemu.scenario.objects import (
    Service,
)

Log = Callable[[str], None]
ZONE_LABEL = "topology.kubernetes.io/zone"
PROBE_READY_TIMEOUT_S = 15.0  # how long a build waits for pods with readiness probes


@dataclass(frozen=True)
class Place:
    """A measurement end in the live cluster: where to run commands there (None for a
    Service's virtual address, which has no namespace), its address and port."""

    where: Netns | None
    ip: str
    port: int


class Cluster(Workloads):
    def __init__(self, scenario: Scenario, state: RunState, log: Log = lambda message: None):
        self.scenario, self.state, self.log = scenario, state, log
        spec = scenario.cluster
        self.store = Store([n.name for n in spec.nodes],
                           [*scenario.services, *scenario.policies, *scenario.namespaces,
                            *scenario.ingresses, *scenario.ingress_classes,
                            *scenario.secrets, *scenario.slices])
        self.templates = dict(scenario.templates)  # Deployment key → its pods' template
        self.rollouts = dict(scenario.rollouts)  # Deployment key → its strategy
        self.zones = {n.name: n.labels.get(ZONE_LABEL, "") for n in spec.nodes}
        self.updates: dict[str, RollingUpdate] = {}  # Deployment key → its rollout
        self.underlay = Underlay(scenario, state, log)
        self.network = Network(spec, state)
        self.edge = Edge(scenario.external, scenario.topology.underlay_cidr, state, log) \
            if scenario.external else None
        self.resolver = Resolver(scenario.dns.upstream, scenario.topology.underlay_cidr, state)
        self.kubelets: dict[str, Kubelet] = {}
        self.controllers: Controllers | None = None
        self.pods_used = {p.key for p in scenario.pods}  # every pod this run has had
        self.timings: dict[str, float] = {}  # how long each build phase took
        self.proxy_mode = ""
        self.proxies: list[KubeProxy] = []

    # -- what it is made of --------------------------------------------------------------------

    @property
    def nodes(self) -> dict[str, K8sNode]:
        return self.underlay.nodes

    @property
    def links(self) -> dict[str, Any]:
        return self.underlay.links

    @property
    def externals(self) -> dict[str, ExternalHost]:
        return self.edge.hosts if self.edge else {}

    @property
    def backend(self) -> Any:
        return self.network.backend

    @property
    def leases(self) -> Any:
        return self.network.leases

    @property
    def pods(self) -> dict[str, Pod]:
        """The pods as their nodes run them, in the order they were created."""
        with self.store.lock:  # a deleted pod leaves its kubelet under this lock
            return {s.spec.key: self.kubelets[s.node].pods[s.spec.key]
                    for s in self.store.pods()
                    if s.node in self.kubelets and s.spec.key in self.kubelets[s.node].pods}

    @property
    def services(self) -> list[Service]:
        """The Services as they are now (events add and delete some)."""
        return self.store.services()

    # -- build ---------------------------------------------------------------------------------

    def start(self) -> None:
        clock = _Stopwatch()
        topo = self.underlay.plan()
        self.resolver.add_to(topo)
        if self.edge:
            self.edge.add_to(topo)
        self.underlay.build(self.edge)
        self.underlay.start()
        assert self.underlay.net
        self.resolver.start(self.underlay.net, self.nodes, str(self.scenario.cluster.pod_cidr))
        if self.edge:
            self.edge.start(self.nodes, self.scenario.topology.underlay_cidr,
                            self.scenario.cluster.pod_cidr, list(self.scenario.services))
        self.timings["underlay_s"] = clock.lap()
        configs = self.network.start(self.nodes)
        self.kubelets = {name: Kubelet(node, configs[name], self.state, self.store,
                                       self.scenario.dns)
                         for name, node in self.nodes.items()}
        self.timings["network_s"] = clock.lap()
        self.log(f"{len(self.nodes)} nodes up with {self.backend.name}")
        ingress = addons.ingress_controller(self.scenario, self.state) \
            if self.scenario.ingresses else None  # nginx starts on it without endpoints yet
        self._create_pods(list(self.scenario.pods), dict(self.scenario.placement))
        self.timings["pods_s"] = clock.lap()
        # The pod network first, before policies may (rightly) refuse the readiness pings.
        wait_ready(self.pods.values(), self.underlay.link_rtt_ms())
        self.timings["ready_s"] = clock.lap()
        self.proxy_mode = self._proxy_mode()
        per_node = self._node_agents()
        cluster_wide: list[Any] = [addons.dns_records(self.scenario, self.state)] \
            if self.scenario.dns.enabled else []
        if self.edge:
            cluster_wide.append(self.edge)  # the cloud's controller follows the cluster
        self.controllers = Controllers(
            self.store, self.scenario.cluster.node_grace_s, per_node,
            cluster_wide + ([ingress] if ingress else []),
            [k.update_readiness for k in self.kubelets.values()],
            self.zones,
            self.scenario.cluster.timing.slice_batch_s)
        self.controllers.start()
        if self.edge:  # before waiting for pods whose readiness gates it sets
            with self.store.lock:  # one snapshot, not interleaved with the controllers' sync
                self.edge.configure(self.services, self.nodes, self.store.pods(),
                                    self.store.endpoints())
            self.edge.follow_gates(self.store)
        probed = [p.key for p in self.scenario.pods if any(c.readiness for c in p.containers)]
        for key in self.controllers.wait_ready(probed, patience(PROBE_READY_TIMEOUT_S)):
            self.log(f"pod {key} is not ready after {PROBE_READY_TIMEOUT_S:.0f} s: it is not "
                     f"an endpoint of its services")
        if self.edge:
            self.edge.wait_settled(self.services, self.store.endpoints(), list(self.nodes))
            # Pods behind a container-native load balancer are Ready once it found them
            # healthy (their readiness gate).
            gated = [p.spec.key for p in self.store.pods()
                     if NEG_READINESS_GATE in p.spec.readiness_gates]
            for key in self.controllers.wait_ready(gated, patience(PROBE_READY_TIMEOUT_S)):
                self.log(f"pod {key} is not ready after {PROBE_READY_TIMEOUT_S:.0f} s: the "
                         f"load balancer has not found it healthy")
        self.timings["services_s"] = clock.lap()
        self.log(f"{len(self.pods)} pods ready in {clock.total():.1f} s")

    def _node_agents(self) -> list[Any]:
        """Each node's kube-proxy and, where the cluster has a policy engine (calico's, or
        canal), its NetworkPolicy agent, hooked into its chains: the policies' last, so they
        come first (before KUBE-FORWARD accepts what kube-proxy marked, as a policy engine's
        chains do in a cluster). The nodes in parallel."""
        cidr = str(self.scenario.cluster.pod_cidr)

        enforced = bool(self.scenario.cluster.policy_engine)  # flannel alone enforces none

        def agents(name: str) -> list[Any]:
            node = self.nodes[name]
            proxy_chains, policy_chains = ChainSet(node, PROXY_JUMPS), ChainSet(node, POLICY_JUMPS)
            proxy_chains.install()
            if enforced:
                policy_chains.install()
            proxy = kube_proxy.setup(node, cidr, proxy_chains, self.scenario.cluster.timing,
                                     self.zones.get(name, ""))
            return [proxy, *([PolicyAgent(name, policy_chains)] if enforced else [])]

        with ThreadPoolExecutor(max_workers=min(8, len(self.nodes) or 1)) as pool:
            made = list(pool.map(agents, self.nodes))
        self.proxies += [node_agents[0] for node_agents in made]
        return [agent for node_agents in made for agent in node_agents]

    def _proxy_mode(self) -> str:
        """kube-proxy's mode: ipvs is asked for, but kemu programs iptables (the kernel may
        lack IPVS, and kemu has no IPVS proxier yet); say so rather than pretend."""
        if self.scenario.cluster.proxy_mode == "ipvs":
            reason = "kemu has no IPVS proxier yet" if doctor.module_available("ip_vs") else \
                "this kernel has no IPVS (kemu doctor)"
            self.log(f"kube-proxy: ipvs mode asked for, but {reason}: using iptables mode")
        return "iptables"

    # -- nodes and links: faults --------------------------------------------------------------

    def node_down(self, name: str) -> None:
        """The node stops answering on the network (its processes and state stay)."""
        rules = ["-N KEMU-NODE-DOWN", "-A KEMU-NODE-DOWN -i lo -j RETURN",
                 "-A KEMU-NODE-DOWN -o lo -j RETURN", "-A KEMU-NODE-DOWN -j DROP"]
        rules += [f"-I {chain} 1 -j KEMU-NODE-DOWN" for chain in ("INPUT", "OUTPUT", "FORWARD")]
        with self.store.lock:
            self.nodes[name].run("iptables-restore", "--wait", "--noflush",
                                 input="*filter\n" + "\n".join(rules) + "\nCOMMIT\n")
            self.store.set_node(name, unreachable_since=time.monotonic())

    def node_up(self, name: str) -> None:
        rules = [f"-D {chain} -j KEMU-NODE-DOWN" for chain in ("INPUT", "OUTPUT", "FORWARD")]
        rules += ["-F KEMU-NODE-DOWN", "-X KEMU-NODE-DOWN"]
        with self.store.lock:
            self.nodes[name].run("iptables-restore", "--wait", "--noflush",
                                 input="*filter\n" + "\n".join(rules) + "\nCOMMIT\n")
            self.store.set_node(name, unreachable_since=None)

    def set_link(self, name: str, up: bool) -> None:
        self.links[name].set_carrier(up)
        if name in self.nodes:  # a node cut off stops its heartbeats too (as node_down)
            lost = self.store.node(name).unreachable_since
            self.store.set_node(name, unreachable_since=None if up else
                                lost or time.monotonic())

    def change_link(self, name: str, changes: dict[str, Any]) -> None:
        self.links[name].change(changes)

    def node_leave(self, name: str) -> None:
        """The node's network agent goes away (its pods stay): see Network.leave."""
        self.network.leave(name)

    def node_join(self, name: str) -> None:
        self.network.join(name)

    # -- use ----------------------------------------------------------------------------------

    def netns(self, where: Pod | K8sNode | ExternalHost) -> Netns:
        return where.netns

    def exec_prefix(self, where: Pod | K8sNode | ExternalHost) -> list[str]:
        """argv prefix that runs a command inside a pod's or a node's network namespace."""
        return where.netns.prefix()

    def resolve(self, end: MeasurementEnd) -> Place:
        """Where a measurement end is now: its namespace, address and port."""
        if end.external:
            assert self.scenario.external and self.edge
            host = self.edge.hosts[end.external]
            spec = next(h for h in self.scenario.external.hosts if h.name == end.external)
            return Place(host.netns, host.IP(), spec.port)
        if end.service:
            svc = next((s for s in self.services if s.key == end.service), None)
            if svc is None:
                raise KemuError(f"service {end.service} does not exist now (not applied yet, "
                                f"or deleted by an event)")
            if end.load_balancer:
                return Place(None, svc.load_balancer_ip, end.port)
            if end.node_port:
                node = self.nodes[end.node]
                return Place(node.netns, node.IP(), end.port)
            return Place(None, svc.cluster_ip, end.port)
        if end.pod:
            pod = self.pods.get(end.pod)
            if pod is None:
                raise KemuError(f"pod {end.pod} does not exist now (not made yet by an "
                                f"event, or deleted by one)")
            ports = [p.container_port for c in pod.spec.containers for p in c.ports
                     if p.protocol == "TCP"]
            return Place(pod.netns, pod.ip, ports[0] if ports else 0)
        node = self.nodes[end.node]
        return Place(node.netns, node.IP(), 0)

    def load_balancer_state(self) -> dict[str, Any] | None:
        """The load-balancer app's own view (VIPs, backends, health, events)."""
        return self.edge.state_of_app() if self.edge else None

    def node_rules(self, node: str) -> str:
        """The node's iptables, as `iptables-save` prints them (kube-proxy's and policies')."""
        return self.nodes[node].run("iptables-save")

    def check(self) -> None:
        """Raise what went wrong in the background: a reconcile, a pod's deletion."""
        if self.controllers:
            self.controllers.check()
        failures = [f for kubelet in self.kubelets.values() for f in kubelet.failures]
        failures += [u.error for u in self.updates.values() if u.error]
        if failures:
            raise KemuError("; ".join(failures))

    def describe(self) -> dict[str, Any]:
        """The cluster as built and as it is now, for results.json (describe.py)."""
        return describe(self)

    # -- teardown -----------------------------------------------------------------------------

    def stop(self) -> list[str]:
        """Tear down whatever was built, in reverse. Returns the errors met (it goes on past
        them: a failed step must not leave the rest behind)."""
        errors: list[str] = []

        def attempt(what: str, step: Callable[[], object]) -> None:
            try:
                step()
            except (KemuError, CommandError, OSError) as e:
                errors.append(f"{what}: {e}")

        for update in self.updates.values():
            update.stop()
        if self.controllers:
            self.controllers.stop()
        with ThreadPoolExecutor(max_workers=min(8, len(self.proxies) or 1)) as pool:
            list(pool.map(lambda p: attempt(f"kube-proxy of {p.node}", p.stop), self.proxies))
        if self.edge:
            attempt("external hosts", self.edge.stop)
        attempt("the nodes' resolver", self.resolver.stop)
        for name, kubelet in self.kubelets.items():
            attempt(f"pods of {name}", kubelet.remove_all)
        self.network.stop(attempt)
        self.underlay.stop(attempt)
        return errors


class _Stopwatch:
    def __init__(self) -> None:
        self.start = self.last = time.monotonic()

    def lap(self) -> float:
        now, last = time.monotonic(), self.last
        self.last = now
        return now - last

    def total(self) -> float:
        return time.monotonic() - self.start
