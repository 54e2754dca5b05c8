"""flannel's VXLAN backend, programmed the way flanneld programs it.

Per node: a kernel VXLAN device `flannel.<VNI>` (VNI 1, UDP 8472 — the Linux default port, not
IANA's 4789), `nolearning`, bound to the underlay interface, holding the address `<subnet>.0/32`,
MTU = underlay MTU - 50. Its MAC (the VTEP MAC) is published in the node's lease.
Per remote node, in flanneld's order (ARP, then FDB, then route, so the route never points at
an unresolvable next hop; each kind batched over all peers):
    ip neigh replace <peer subnet>.0 lladdr <peer VTEP MAC> dev flannel.1 nud permanent
    bridge fdb replace <peer VTEP MAC> dev flannel.1 dst <peer underlay IP> self permanent
    ip route replace <peer subnet> via <peer subnet>.0 dev flannel.1 onlink
Pods attach through the `bridge` plugin to `cni0` with host-local IPAM over the node's subnet,
as flannel's CNI plugin delegates it.
"""

from __future__ import annotations

import hashlib
from typing import Any

from kemu.backend import UNDERLAY_INTF, Backend, K8sNode, Lease
from kemu_plugins.flannel import bridge_conflist, check_port

VXLAN_OVERHEAD = 50  # outer Ethernet 14 + IP 20 + UDP 8 + VXLAN 8


def vtep_mac(node_name: str) -> str:
    """A stable, locally administered unicast MAC per node (flanneld picks one at random and
    keeps it; determinism makes runs comparable)."""
    digest = hashlib.sha256(node_name.encode()).digest()
    return ":".join(f"{b:02x}" for b in (0x0E, *digest[:5]))


class FlannelVXLAN(Backend):
    name = "flannel-vxlan"
    description = "flannel VXLAN: kernel VXLAN device flannel.1 (VNI 1, UDP 8472), cni0 bridge"
    encap_overhead = VXLAN_OVERHEAD
    requires = ("vxlan",)

    OPTIONS = {"vni": 1, "port": 8472}

    @classmethod
    def check_options(cls, options: dict[str, Any], nodes: tuple[str, ...] = ()) -> list[str]:
        problems = [f"unknown option {key!r} (flannel-vxlan takes: {', '.join(cls.OPTIONS)})"
                    for key in options if key not in cls.OPTIONS]
        vni = options.get("vni", 1)
        if not isinstance(vni, int) or not 0 < vni < 2**24:
            problems.append(f"vni must be 1..16777215, got {vni!r}")
        return problems + check_port(options, cls.OPTIONS["port"])

    @property
    def vni(self) -> int:
        return int(self.options.get("vni", self.OPTIONS["vni"]))

    @property
    def port(self) -> int:
        return int(self.options.get("port", self.OPTIONS["port"]))

    @property
    def device(self) -> str:
        return f"flannel.{self.vni}"

    def join(self, node: K8sNode, lease: Lease) -> None:
        mac = vtep_mac(node.name)
        dev = self.device
        node.ip_batch([
            f"link add {dev} address {mac} type vxlan id {self.vni} local {lease.public_ip} "
            f"dev {UNDERLAY_INTF} dstport {self.port} nolearning",
            f"link set {dev} mtu {self.mtu}",
            f"address add {lease.subnet.network_address}/32 dev {dev}",
            f"link set {dev} up",
        ])
        lease.backend_data = {"VtepMAC": mac}

    def add_peers(self, node: K8sNode, peers: list[Lease]) -> None:
        # In flanneld's order for every peer — ARP, then FDB, then the route — with all peers'
        # entries of a kind in one batch (three processes, however many peers).
        dev = self.device
        node.ip_batch([f"neigh replace {p.subnet.network_address} lladdr "
                       f"{p.backend_data['VtepMAC']} dev {dev} nud permanent" for p in peers])
        node.run("bridge", "-batch", "-", input="".join(
            f"fdb replace {p.backend_data['VtepMAC']} dev {dev} dst {p.public_ip} self "
            f"permanent\n" for p in peers))
        node.ip_batch([f"route replace {p.subnet} via {p.subnet.network_address} dev {dev} "
                       f"onlink" for p in peers])

    def remove_peers(self, node: K8sNode, peers: list[Lease]) -> None:
        # Route first, then FDB and ARP: the reverse of add_peers (flanneld's order on expiry).
        for peer in peers:
            gateway = peer.subnet.network_address
            node.run("ip", "route", "del", str(peer.subnet), "via", str(gateway), "dev",
                     self.device, "onlink", check=False)
            if mac := peer.backend_data.get("VtepMAC"):
                node.run("bridge", "fdb", "del", mac, "dev", self.device, "dst",
                         str(peer.public_ip), "self", check=False)
            node.run("ip", "neigh", "del", str(gateway), "dev", self.device, check=False)

    def leave(self, node: K8sNode, lease: Lease) -> None:
        node.run("ip", "link", "del", self.device, check=False)

    def cni_config(self, node: K8sNode, lease: Lease) -> dict[str, Any]:
        return bridge_conflist(self, node, lease)

    def node_state(self, node: K8sNode) -> dict[str, Any]:
        return {
            "device": self.device,
            "vtep_mac": vtep_mac(node.name),
            "routes": node.run("ip", "-o", "route", "show", "dev", self.device).splitlines(),
            "fdb": node.run("bridge", "fdb", "show", "dev", self.device).splitlines(),
        }
