"""flannel's UDP backend: a TUN device and a userspace proxy per node.

Per node, as flanneld sets it up: the proxy creates the TUN device `flannel0`; it gets the
address `<subnet>.0` with the *cluster's* prefix length (so the kernel routes the whole pod
network into it), MTU = underlay MTU - 28 (outer IP 20 + UDP 8). The proxy sends each packet it
reads from flannel0, alone, in one UDP datagram to port 8285 of the node whose lease holds the
destination, and writes what it receives back into flannel0. Pods attach to `cni0` through the
`bridge` plugin, as with every flannel backend; local pods win over flannel0 by the longer
prefix of cni0's /24.

The proxy is C (plugins/flannel_udp_proxy.c, built by scripts/setup.sh), like flannel's own:
a Python loop moves about a tenth of what kernel VXLAN does, which would make every
UDP-vs-VXLAN comparison an artefact of Python.
"""

from __future__ import annotations

from typing import Any

from kemu.backend import PIPE, Backend, Daemon, K8sNode, Lease, PodNetwork, find_binary
from kemu_plugins.flannel import bridge_conflist, check_port

UDP_OVERHEAD = 28  # outer IP 20 + UDP 8; the inner packet travels as the bare payload
PROXY = "kemu-flannel-udp-proxy"
TUN = "flannel0"


class FlannelUDP(Backend):
    name = "flannel-udp"
    description = "flannel UDP: TUN flannel0 + userspace proxy, UDP 8285, cni0 bridge"
    encap_overhead = UDP_OVERHEAD
    requires = ("tun",)

    OPTIONS = {"port": 8285}

    def __init__(self, network: PodNetwork, options: dict[str, Any]):
        super().__init__(network, options)
        self.proxies: dict[str, Daemon] = {}

    @classmethod
    def check_options(cls, options: dict[str, Any], nodes: tuple[str, ...] = ()) -> list[str]:
        problems = [f"unknown option {key!r} (flannel-udp takes: {', '.join(cls.OPTIONS)})"
                    for key in options if key not in cls.OPTIONS]
        return problems + check_port(options, cls.OPTIONS["port"])

    @property
    def port(self) -> int:
        return int(self.options.get("port", self.OPTIONS["port"]))

    def join(self, node: K8sNode, lease: Lease) -> None:
        proxy = Daemon(node, "flannel-udp proxy",
                       [find_binary(PROXY, "plugins/flannel_udp_proxy.c"), TUN, str(self.port)],
                       self.network.state, self.network.run_dir / "nodes" / node.name /
                       "flannel-udp.log")
        self.proxies[node.name] = proxy
        proxy.start(stdin=PIPE, stdout=PIPE)
        proxy.ready()  # "ready": the TUN exists and the port is bound
        address = f"{lease.subnet.network_address}/{self.network.cluster_cidr.prefixlen}"
        node.ip_batch([
            f"link set {TUN} mtu {self.mtu}",
            f"address add {address} dev {TUN}",
            f"link set {TUN} up",
        ])

    def add_peers(self, node: K8sNode, peers: list[Lease]) -> None:
        self.proxies[node.name].send([f"add {p.subnet} {p.public_ip}" for p in peers])

    def remove_peers(self, node: K8sNode, peers: list[Lease]) -> None:
        if node.name in self.proxies and self.proxies[node.name].running():
            self.proxies[node.name].send([f"del {p.subnet}" for p in peers])

    def leave(self, node: K8sNode, lease: Lease) -> None:
        proxy = self.proxies.pop(node.name, None)
        if proxy:
            proxy.stop()  # flannel0 goes with it

    def stop(self) -> None:
        for proxy in self.proxies.values():
            proxy.stop()
        self.proxies.clear()

    def cni_config(self, node: K8sNode, lease: Lease) -> dict[str, Any]:
        return bridge_conflist(self, node, lease)

    def node_state(self, node: K8sNode) -> dict[str, Any]:
        proxy = self.proxies.get(node.name)
        return {"device": TUN, "proxy_pid": proxy.pid if proxy and proxy.proc else None,
                "routes": node.run("ip", "-o", "route", "show", "dev", TUN).splitlines()}

