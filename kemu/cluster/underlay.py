"""The nodes and the network between them: the topology's Mininet switches, links and one host
per node (kernel/node.py), and every named link's emulation — rate with tbf, delay, jitter and
loss with netem or kemu's delay line (kernel/links.py)."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

from mininet.link import Link

from kemu import registry
from kemu.kernel import doctor, links
from kemu.kernel.node import UNDERLAY_INTF, K8sNode, KemuNet, ShapedLink, UnderlaySwitch
from kemu.kernel.records import RunState
from kemu.scenario.addressing import underlay_addresses
from kemu.scenario.model import LinkParams, Scenario
from kemu.topology import Topology

if TYPE_CHECKING:
    from kemu.edge.edge import Edge

Log = Callable[[str], None]


class Underlay:
    def __init__(self, scenario: Scenario, state: RunState, log: Log):
        self.scenario, self.state, self.log = scenario, state, log
        self.netem = doctor.netem_available()
        spec = scenario.topology
        self.link_method = links.method(spec.link, self.netem) or \
            links.method(spec.wan or spec.link, self.netem)
        self.net: KemuNet | None = None
        self.topo: Topology | None = None
        self.nodes: dict[str, K8sNode] = {}
        self.links: dict[str, links.EmulatedLink] = {}  # by name: node names, "wan", …

    def plan(self) -> Topology:
        """The topology, as data: one host per node at its underlay address."""
        spec = self.scenario.topology
        names = [n.name for n in self.scenario.cluster.nodes]
        addresses = underlay_addresses(spec.underlay_cidr, len(names))
        topology_cls = registry.lookup("kemu.topologies", spec.name, "topology")
        self.topo = topology_cls(
            nodes=[(n, str(a)) for n, a in zip(names, addresses, strict=True)],
            link=_mininet_link(spec.link, self.netem, both_ends=False),
            wan=_mininet_link(spec.wan, self.netem, both_ends=True),
            labels={n.name: n.labels for n in self.scenario.cluster.nodes})
        return self.topo

    def build(self, edge: Edge | None = None) -> None:
        """Mininet builds the planned topology (with the edge, when there is one)."""
        assert self.topo is not None
        self.net = KemuNet(topo=self.topo, host=K8sNode, switch=UnderlaySwitch, link=Link,
                           controller=None, build=False, autoSetMacs=False)
        try:
            self.net.build()
            if edge:
                edge.attach(self.net)
        finally:
            # Mininet starts each host's and switch's shell while building; record them even
            # when the build fails halfway, so nothing escapes teardown or `kemu clean`.
            for node in (*self.net.hosts, *self.net.switches, *self.net.controllers):
                if node.shell and node.pid:
                    self.state.record_process(node.pid, f"mininet {node.name}")
        self.nodes = {h.name: h for h in self.net.hosts if isinstance(h, K8sNode)}

    def start(self) -> None:
        """Switches and controllers up; each named link with its emulation."""
        assert self.net is not None and self.topo is not None
        self.net.start()
        # A cluster's nodes reach ClusterIPs through their default route; kemu's sealed nodes
        # have none, so the service range gets a route of its own (kube-proxy's OUTPUT rules
        # send the packet to an endpoint before it leaves; without one it is rejected).
        service_cidr = self.scenario.cluster.service_cidr
        for node in self.nodes.values():
            node.run("ip", "route", "add", str(service_cidr), "dev", UNDERLAY_INTF)
        if self.link_method == "delay-line":
            self.log(f"link delay/jitter/loss: no sch_netem here, using kemu's delay line "
                     f"({links.CEILING})")
        spec = self.scenario.topology
        for name, (a, b) in self.topo.named_links.items():
            link = self.net.linksBetween(self.net[a], self.net[b])[0]
            wan = name not in self.nodes
            self.links[name] = links.EmulatedLink(
                name, link, [link.intf1, link.intf2] if wan else [link.intf1],
                (spec.wan or LinkParams()) if wan else spec.link, self.netem, self.state,
                self.state.dir / "delay-line")
            self.links[name].start()

    def link_rtt_ms(self) -> float:
        """The links' own share of a round trip between two pods: the slowest node link's
        (twice: out and back), and every WAN link's."""
        delays = {name: link.params.delay_ms + link.params.jitter_ms
                  for name, link in self.links.items()}
        return 2 * (max((d for n, d in delays.items() if n in self.nodes), default=0.0) +
                    sum(d for n, d in delays.items() if n not in self.nodes))

    def describe(self) -> dict[str, Any]:
        """How the scenario's link parameters are realised (results.json says it)."""
        link = self.scenario.topology.link
        out: dict[str, Any] = {"rate": "tbf" if link.bw_mbit else None,
                               "delay_jitter_loss": self.link_method or None}
        if self.link_method == "delay-line":
            out["ceiling"] = links.CEILING
        out["links"] = {name: link.describe() for name, link in self.links.items()}
        return out

    def stop(self, attempt: Callable[[str, Callable[[], object]], None]) -> None:
        for link in self.links.values():
            attempt(f"delay lines of link {link.name}", link.stop)
        if self.net is not None:
            net = self.net
            attempt("mininet", net.stop)
            for node in (*net.hosts, *net.switches, *net.controllers):
                if node.pid and not Path(f"/proc/{node.pid}").exists():
                    self.state.forget_process(node.pid)  # else `kemu clean` still finds it
            self.net = None


def _mininet_link(params: LinkParams | None, netem: bool, both_ends: bool) -> dict[str, Any]:
    """Mininet addLink options for a link: rate on both ends; netem where it sends (the
    node's end of a node's link, both ends of a link between switches)."""
    if params is None:
        return {}
    impair = links.netem_params(params) if links.method(params, netem) == "netem" else {}
    if not (params.bw_mbit or impair):
        return {}
    rate = {"bw": params.bw_mbit} if params.bw_mbit else {}
    return {"cls": ShapedLink, "params1": {**rate, **impair},
            "params2": {**rate, **(impair if both_ends else {})}}
