"""The nodes' resolver: a host of the outside world on the underlay's first address (where a
datacenter's or a cloud VPC's resolver sits for its machines), running upstream_dns.py. CoreDNS
forwards names outside the cluster to it; pods with dnsPolicy Default ask it directly."""

from __future__ import annotations

import ipaddress
import json
import sys

from mininet.link import TCULink
from mininet.net import Mininet
from mininet.topo import Topo

from kemu.files import write_atomic
from kemu.kernel.node import UNDERLAY_INTF, ExternalHost, K8sNode
from kemu.kernel.processes import PIPE, Process
from kemu.kernel.records import RunState
from kemu.scenario.model import RESOLVER_HOST, UpstreamDNS


class Resolver:
    def __init__(self, spec: UpstreamDNS, underlay: ipaddress.IPv4Network, state: RunState):
        self.spec, self.state = spec, state
        self.address = ipaddress.IPv4Interface(f"{spec.ip}/{underlay.prefixlen}")
        self.program: Process | None = None

    @property
    def ip(self) -> str:
        return str(self.address.ip)

    def add_to(self, topo: Topo) -> None:
        topo.addHost(RESOLVER_HOST, cls=ExternalHost, ip=str(self.address))
        topo.addLink(RESOLVER_HOST, topo.uplink, intfName1=UNDERLAY_INTF, cls=TCULink)

    def start(self, net: Mininet, nodes: dict[str, K8sNode], pod_cidr: str) -> None:
        """The server up and answering every node. Pods reach it through their node's SNAT,
        as they reach anything outside the pod network (flannel's ipMasq, calico's
        natOutgoing)."""
        host = net.get(RESOLVER_HOST)
        for node in nodes.values():
            node.run("iptables", "-t", "nat", "-A", "POSTROUTING", "-s", pod_cidr, "-d",
                     f"{self.ip}/32", "-m", "comment", "--comment",
                     "kemu: pods reach the node's resolver via SNAT", "-j", "MASQUERADE")
        records = self.state.dir / "dns" / "upstream.json"
        records.parent.mkdir(parents=True, exist_ok=True)
        write_atomic(records, json.dumps({name: list(ips) for name, ips
                                          in self.spec.records.items()}, indent=1))
        self.program = Process(host.netns, [
            sys.executable, "-m", "kemu.edge.upstream_dns", "--records", str(records),
            "--latency-ms", str(self.spec.latency_ms),
            "--failure-rate", str(self.spec.failure_rate),
            "--failure-mode", self.spec.failure_mode],
            "the nodes' resolver", self.state, self.state.dir / "dns" / "upstream.log")
        self.program.start(stdout=PIPE, text=True)
        self.program.read_until(lambda said: "ready" in said, "the nodes' resolver did not start")
        self.program.drain()

    def stop(self) -> None:
        if self.program:
            self.program.stop(grace=0)
            self.program = None
