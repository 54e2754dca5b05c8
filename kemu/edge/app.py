"""The cloud's load balancer, as a Ryu application on the edge switch (OpenFlow 1.3).

kemu writes what the cloud controller would configure — one entry per LoadBalancer Service
port: its external IP (VIP), its members (`backends`, as the clouds call them) and the health
check — to a JSON file; this app programs the switch from it, proactively:

  VIP:port → select group, one bucket per healthy member node: the frame goes to that node
             (destination MAC rewritten), the packet keeps the VIP as its destination — a
             passthrough load balancer, as GCE's network load balancer is: each node's
             kube-proxy takes VIP traffic by its load-balancer-IP rules, and replies leave with
             the VIP as source. The switch hashes each flow's 5-tuple to a bucket, so a
             connection stays on one node.
  ARP for a VIP or the health checker's address → answered by the app
  everything else → the switch's own L2 learning (NORMAL)

`pods` mode (container-native, GKE's network endpoint groups): the members are pods; a bucket
also rewrites the destination to the pod's address and port (its node's MAC takes it there),
and a flow per pod port rewrites its replies to the outside back to the VIP. `l2` mode
(MetalLB's layer 2): no rewriting; the app answers ARP for the VIP with the MAC of one healthy
node (the leader, chosen as MetalLB chooses it) and announces a new leader by gratuitous ARP.
`bgp` mode (MetalLB's BGP): the switch does nothing for the VIP; a router routes it (bgp.py).

Health checks are made inline, as hardware load balancers do, from the checker's address to
each member's checked port (as the preset says): a `tcp` check sends a SYN and reads a
SYN-ACK (healthy) or RST / silence; an `http` check completes the handshake, sends a GET for
the path and reads the status line (200-399 healthy). Thresholds turn results into health.
State (VIPs, members, health, checks made, events) is served as JSON on the state port. The
same module runs under upstream Ryu (`ryu-manager kemu.edge.app`): only import names differ.
"""

from __future__ import annotations

import hashlib
import ipaddress
import json
import os
import random
import time
from typing import Any

try:  # os-ken, the maintained fork (runs on Python 3.10+)
    from os_ken.base import app_manager
    from os_ken.controller import ofp_event
    from os_ken.controller.handler import CONFIG_DISPATCHER, MAIN_DISPATCHER, set_ev_cls
    from os_ken.lib import hub
    from os_ken.lib.packet import arp, ether_types, ethernet, ipv4, packet, tcp
    from os_ken.ofproto import ofproto_v1_3
    AppBase = app_manager.OSKenApp
except ImportError:  # upstream Ryu
    from ryu.base import app_manager
    from ryu.controller import ofp_event
    from ryu.controller.handler import (
        CONFIG_DISPATCHER,
        MAIN_DISPATCHER,
        set_ev_cls,
    )
    from ryu.lib import hub
    from ryu.lib.packet import arp, ether_types, ethernet, ipv4, packet, tcp
    from ryu.ofproto import ofproto_v1_3
    AppBase = app_manager.RyuApp

VIP_MAC = "0e:4b:4c:42:00:01"  # the load balancer's own (virtual) MAC
PRIO_NORMAL, PRIO_ARP, PRIO_LB, PRIO_HEALTH = 0, 100, 200, 250
HISTORY = 10000  # events kept


def _key(vip: dict[str, Any]) -> tuple[str, str, int]:
    """A VIP's entry: address, protocol and port (a port number may serve TCP and UDP)."""
    return vip["ip"], vip.get("protocol", "TCP"), vip["port"]


class Member:
    def __init__(self, spec: dict[str, Any], health: dict[str, Any]):
        self.node, self.ip, self.mac, self.port = spec["node"], spec["ip"], spec["mac"], \
            spec["port"]
        self.check_port = spec.get("check_port") or spec["port"]
        self.pod = spec.get("pod", "")  # container-native: the pod it is
        self.path = spec.get("path") or health.get("path") or "/"
        self.check = spec.get("check") or health.get("check")  # tcp | http
        # A new node is trusted until checks say otherwise; a new endpoint of a network
        # endpoint group serves only once a check has found it healthy.
        self.healthy = not self.pod
        self.ok = self.bad = 0
        self.checks = 0
        # The first check waits a second: until then the nodes may not know the checker's
        # MAC, and a reply held in an ARP queue would count as a failure.
        self.next_check = time.time() + 1.0
        self.pending: tuple[int, float] | None = None  # (source port, deadline)
        self.requested = False  # http: the request is sent, the status line awaited
        self.health = health
        self.changed_at = time.time()


class LoadBalancer(AppBase):  # type: ignore[misc, valid-type]
    OFP_VERSIONS = [ofproto_v1_3.OFP_VERSION]

    def __init__(self, *args: Any, **kwargs: Any):
        super().__init__(*args, **kwargs)
        self.config_path = os.environ["KEMU_LB_CONFIG"]
        self.datapath: Any = None
        self.config: dict[str, Any] = {"vips": [], "checker": {}}
        self.mtime = 0.0
        self.members: dict[tuple[str, str, int], list[Member]] = {}
        self.leaders: dict[str, str] = {}  # l2 mode: VIP → node announcing it
        self.replies: dict[tuple[str, str, int], tuple[str, int]] = {}  # pods: → VIP, port
        self.groups: dict[tuple[str, str, int], int] = {}  # VIP entry → its group's id
        self.history: list[dict[str, Any]] = []
        hub.spawn(self._loop)
        hub.spawn(self._serve_state, int(os.environ.get("KEMU_LB_STATE_PORT", "0")))

    # -- switch ----------------------------------------------------------------------------

    @set_ev_cls(ofp_event.EventOFPSwitchFeatures, CONFIG_DISPATCHER)
    def switch_features(self, ev: Any) -> None:
        self.datapath = ev.msg.datapath
        parser, ofp = self.datapath.ofproto_parser, self.datapath.ofproto
        self._flow(PRIO_NORMAL, parser.OFPMatch(), [parser.OFPActionOutput(ofp.OFPP_NORMAL)])
        self._apply(force=True)

    def _flow(self, priority: int, match: Any, actions: list[Any]) -> None:
        """Add or replace one flow (same priority and match: OpenFlow replaces it)."""
        dp = self.datapath
        parser, ofp = dp.ofproto_parser, dp.ofproto
        inst = [parser.OFPInstructionActions(ofp.OFPIT_APPLY_ACTIONS, actions)]
        dp.send_msg(parser.OFPFlowMod(dp, priority=priority, match=match, instructions=inst))

    # -- configuration ---------------------------------------------------------------------

    def _reload(self) -> bool:
        try:
            mtime = os.stat(self.config_path).st_mtime
            if mtime == self.mtime:
                return False
            with open(self.config_path) as f:
                self.config, self.mtime = json.load(f), mtime
            return True
        except (OSError, ValueError):
            return False

    def _apply(self, force: bool = False) -> None:
        """Program every VIP from the config (and health), replacing what was there."""
        if self.datapath is None:
            return
        parser, ofp = self.datapath.ofproto_parser, self.datapath.ofproto
        checker = self.config.get("checker", {})
        if checker.get("ip"):
            self._flow(PRIO_ARP, parser.OFPMatch(eth_type=ether_types.ETH_TYPE_ARP,
                                                 arp_tpa=checker["ip"]),
                       [parser.OFPActionOutput(ofp.OFPP_CONTROLLER, ofp.OFPCML_NO_BUFFER)])
            self._flow(PRIO_HEALTH, parser.OFPMatch(eth_type=ether_types.ETH_TYPE_IP,
                                                    ipv4_dst=checker["ip"], ip_proto=6),
                       [parser.OFPActionOutput(ofp.OFPP_CONTROLLER, ofp.OFPCML_NO_BUFFER)])
        known = {}
        for vip in self.config["vips"]:
            key = _key(vip)
            # A member is its node, or its pod: a new pod with an old one's IP starts afresh.
            old = {(b.pod, b.ip, b.port): b for b in self.members.get(key, [])}
            members = [old.get((s.get("pod", ""), s["ip"], s["port"])) or Member(s, vip["health"])
                       for s in vip["backends"]]
            for b, spec in zip(members, vip["backends"], strict=True):
                b.health, b.check_port = vip["health"], spec.get("check_port") or spec["port"]
                b.path = spec.get("path") or vip["health"].get("path") or "/"
                b.check = spec.get("check") or vip["health"].get("check")
            known[key] = members
            self._program(vip, members)
        self._forget([key for key in self.members if key not in known])
        self.members = known
        for address in {vip["ip"] for vip in self.config["vips"] if vip["mode"] == "l2"}:
            self._elect(address)
        # A pod port two VIP ports reach answers from the first of them (kemu warns).
        replies: dict[tuple[str, str, int], tuple[str, int]] = {}
        for vip in sorted(self.config["vips"], key=_key):
            if vip["mode"] == "pods":
                for b in known[_key(vip)]:
                    replies.setdefault((b.ip, vip.get("protocol", "TCP"), b.port),
                                       (vip["ip"], vip["port"]))
        self._replies(replies)

    def _l4(self, protocol: str, direction: str, port: int, **fields: Any) -> Any:
        """An IPv4 match on a TCP or UDP port (`direction`: dst or src)."""
        number, name = (17, "udp") if protocol == "UDP" else (6, "tcp")
        return self.datapath.ofproto_parser.OFPMatch(
            eth_type=ether_types.ETH_TYPE_IP, ip_proto=number,
            **{f"{name}_{direction}": port}, **fields)

    def _program(self, vip: dict[str, Any], members: list[Member]) -> None:
        if vip["mode"] == "bgp":
            return  # the VIP is routed: the switch only switches
        parser, ofp = self.datapath.ofproto_parser, self.datapath.ofproto
        arp_match = parser.OFPMatch(eth_type=ether_types.ETH_TYPE_ARP, arp_tpa=vip["ip"])
        self._flow(PRIO_ARP, arp_match,
                   [parser.OFPActionOutput(ofp.OFPP_CONTROLLER, ofp.OFPCML_NO_BUFFER)])
        if vip["mode"] == "l2":
            return  # elected per address, once every entry of it is known
        live = [b for b in members if b.healthy]
        if not live and vip["health"].get("fail_open"):
            live = members  # as AWS NLB and GCE do: with no healthy backend, send to all
        buckets = [parser.OFPBucket(weight=1, actions=[
            parser.OFPActionSetField(eth_dst=b.mac), *self._to_pod(vip, b),
            parser.OFPActionOutput(ofp.OFPP_NORMAL)]) for b in live]
        key = _key(vip)
        group_id = self.groups.setdefault(key, max(self.groups.values(), default=0) + 1)
        for command in (ofp.OFPGC_ADD, ofp.OFPGC_MODIFY):  # ADD fails harmlessly if it exists
            self.datapath.send_msg(parser.OFPGroupMod(self.datapath, command, ofp.OFPGT_SELECT,
                                                      group_id, buckets))
        match = self._l4(vip.get("protocol", "TCP"), "dst", vip["port"], ipv4_dst=vip["ip"])
        self._flow(PRIO_LB, match, [parser.OFPActionGroup(group_id)] if live else [])

    def _forget(self, keys: list[tuple[str, str, int]]) -> None:
        """The flows and groups of VIP entries no longer configured (a Service deleted)."""
        parser, ofp = self.datapath.ofproto_parser, self.datapath.ofproto
        addresses = {vip["ip"] for vip in self.config["vips"]}
        for address, protocol, port in keys:
            self._delete(PRIO_LB, self._l4(protocol, "dst", port, ipv4_dst=address))
            if (address, protocol, port) in self.groups:
                self.datapath.send_msg(parser.OFPGroupMod(
                    self.datapath, ofp.OFPGC_DELETE, ofp.OFPGT_SELECT,
                    self.groups.pop((address, protocol, port))))
            if address not in addresses:
                self._delete(PRIO_ARP, parser.OFPMatch(eth_type=ether_types.ETH_TYPE_ARP,
                                                       arp_tpa=address))
                self.leaders.pop(address, None)

    def _delete(self, priority: int, match: Any) -> None:
        parser, ofp = self.datapath.ofproto_parser, self.datapath.ofproto
        self.datapath.send_msg(parser.OFPFlowMod(
            self.datapath, command=ofp.OFPFC_DELETE_STRICT, priority=priority,
            out_port=ofp.OFPP_ANY, out_group=ofp.OFPG_ANY, match=match))

    def _to_pod(self, vip: dict[str, Any], b: Member) -> list[Any]:
        """Container-native: the packet's destination rewritten to the pod (its node's MAC
        takes it there)."""
        if vip["mode"] != "pods":
            return []
        parser = self.datapath.ofproto_parser
        port = {"udp_dst": b.port} if vip.get("protocol") == "UDP" else {"tcp_dst": b.port}
        return [parser.OFPActionSetField(ipv4_dst=b.ip), parser.OFPActionSetField(**port)]

    def _replies(self, wanted: dict[tuple[str, str, int], tuple[str, int]]) -> None:
        """Container-native: a pod's replies to the outside leave with the VIP as their
        source: one flow per (pod IP, protocol, port) → (VIP, port); changed ones replaced,
        stale ones deleted."""
        parser, ofp = self.datapath.ofproto_parser, self.datapath.ofproto
        network = ipaddress.IPv4Network(self.config.get("network", "0.0.0.0/0"))
        outside = (str(network.network_address), str(network.netmask))
        for (ip, protocol, port), vip in wanted.items():
            if self.replies.get((ip, protocol, port)) != vip:
                field = "udp_src" if protocol == "UDP" else "tcp_src"
                self._flow(PRIO_LB, self._l4(protocol, "src", port, ipv4_src=ip,
                                             ipv4_dst=outside), [
                    parser.OFPActionSetField(ipv4_src=vip[0]),
                    parser.OFPActionSetField(**{field: vip[1]}),
                    parser.OFPActionOutput(ofp.OFPP_NORMAL)])
        for ip, protocol, port in set(self.replies) - set(wanted):
            self._delete(PRIO_LB, self._l4(protocol, "src", port, ipv4_src=ip,
                                           ipv4_dst=outside))
        self.replies = wanted

    def _elect(self, address: str) -> None:
        """l2 mode, as MetalLB's speakers decide (speaker/layer2_controller.go,
        ShouldAnnounce): the nodes healthy for every port of the address, sorted by
        sha256(node + "#" + IP); the first announces, and a node back in the list takes its
        addresses back. A change is announced by gratuitous ARP. (MetalLB also announces
        nothing for a Service without a ready endpoint; kemu's checks do not see endpoints.)"""
        entries = [self.members[_key(vip)] for vip in self.config["vips"]
                   if vip["ip"] == address]
        macs = {b.node: b.mac for members in entries for b in members}
        healthy = set(macs)
        for members in entries:
            healthy &= {b.node for b in members if b.healthy}
        ranked = sorted(healthy, key=lambda n: hashlib.sha256(f"{n}#{address}".encode()).digest())
        leader = ranked[0] if ranked else ""
        if self.leaders.get(address) == leader:
            return
        self.leaders[address] = leader
        if leader:
            self._send_arp(arp.ARP_REPLY, macs[leader], address, "ff:ff:ff:ff:ff:ff", address,
                           self.datapath.ofproto.OFPP_FLOOD)
            self._event("leader", address, leader)

    # -- packets ---------------------------------------------------------------------------

    @set_ev_cls(ofp_event.EventOFPPacketIn, MAIN_DISPATCHER)
    def packet_in(self, ev: Any) -> None:
        pkt = packet.Packet(ev.msg.data)
        in_port = ev.msg.match["in_port"]
        request = pkt.get_protocol(arp.arp)
        if request and request.opcode == arp.ARP_REQUEST:
            mac = self._arp_owner(request.dst_ip)
            if mac:
                self._send_arp(arp.ARP_REPLY, mac, request.dst_ip, request.src_mac,
                               request.src_ip, in_port)
            return
        segment, ip = pkt.get_protocol(tcp.tcp), pkt.get_protocol(ipv4.ipv4)
        if segment and ip:
            payload = pkt.protocols[-1] if isinstance(pkt.protocols[-1], bytes) else b""
            self._health_reply(ip, segment, payload)

    def _arp_owner(self, address: str) -> str:
        if address == self.config.get("checker", {}).get("ip"):
            return VIP_MAC
        for vip in self.config["vips"]:
            if vip["ip"] == address:
                if vip["mode"] == "bgp":
                    return ""  # routed through the BGP router, never ARPed for
                if vip["mode"] != "l2":
                    return VIP_MAC
                leader = self.leaders.get(address)
                member = next((b for b in self.members.get(_key(vip), [])
                               if b.node == leader), None)
                return member.mac if member else ""
        return ""

    def _send(self, pkt: Any, port: int) -> None:
        pkt.serialize()
        dp = self.datapath
        parser, ofp = dp.ofproto_parser, dp.ofproto
        dp.send_msg(parser.OFPPacketOut(dp, buffer_id=ofp.OFP_NO_BUFFER,
                                        in_port=ofp.OFPP_CONTROLLER,
                                        actions=[parser.OFPActionOutput(port)], data=pkt.data))

    def _send_arp(self, opcode: int, src_mac: str, src_ip: str, dst_mac: str, dst_ip: str,
                  port: int) -> None:
        """`src_mac` goes in the ARP payload (who has the address); the frame itself always
        comes from the load balancer's MAC, or the switch would learn a node's MAC at the
        controller port and misdeliver that node's traffic."""
        pkt = packet.Packet()
        pkt.add_protocol(ethernet.ethernet(dst=dst_mac, src=VIP_MAC,
                                           ethertype=ether_types.ETH_TYPE_ARP))
        pkt.add_protocol(arp.arp(opcode=opcode, src_mac=src_mac, src_ip=src_ip,
                                 dst_mac=dst_mac, dst_ip=dst_ip))
        self._send(pkt, port)

    def _send_tcp(self, member: Member, sport: int, bits: int, seq: int = 0,
                  ack: int = 0, payload: bytes = b"") -> None:
        checker = self.config["checker"]
        pkt = packet.Packet()
        pkt.add_protocol(ethernet.ethernet(dst=member.mac, src=VIP_MAC,
                                           ethertype=ether_types.ETH_TYPE_IP))
        pkt.add_protocol(ipv4.ipv4(src=checker["ip"], dst=member.ip, proto=6))
        pkt.add_protocol(tcp.tcp(src_port=sport, dst_port=member.check_port, seq=seq, ack=ack,
                                 bits=bits, window_size=8192))
        if payload:
            pkt.add_protocol(payload)
        self._send(pkt, self.datapath.ofproto.OFPP_NORMAL)

    # -- health ----------------------------------------------------------------------------

    def _loop(self) -> None:
        while True:
            if self._reload():
                self._apply()
            now = time.time()
            changed = False
            for members in self.members.values():
                for b in members:
                    if b.pending and now > b.pending[1]:
                        changed |= self._result(b, False)  # no answer in time
                    if self.datapath is not None and not b.pending and now >= b.next_check:
                        sport = random.randint(20000, 60000)
                        b.pending, b.requested = (sport, now + b.health["timeout"]), False
                        b.next_check = now + b.health["interval"]
                        self._send_tcp(b, sport, tcp.TCP_SYN, seq=random.randint(0, 2**31))
            if changed:
                self._apply()
            hub.sleep(0.05)

    def _health_reply(self, ip: Any, segment: Any, payload: bytes) -> None:
        for members in self.members.values():
            for b in members:
                if b.pending and ip.src == b.ip and segment.src_port == b.check_port and \
                        segment.dst_port == b.pending[0]:
                    self._answer(b, segment, payload)
                    return

    def _answer(self, b: Member, segment: Any, payload: bytes) -> None:
        """One segment of a check's connection: its verdict, or the next step (http)."""
        sport = segment.dst_port
        syn_ack = bool(segment.bits & tcp.TCP_SYN and segment.bits & tcp.TCP_ACK)
        verdict: bool | None = None
        if b.check == "http" and syn_ack and not b.requested:
            request = (f"GET {b.path} HTTP/1.1\r\nHost: {b.ip}:"
                       f"{b.check_port}\r\nUser-Agent: kemu-lb-health\r\n"
                       f"Connection: close\r\n\r\n").encode()
            self._send_tcp(b, sport, tcp.TCP_ACK | tcp.TCP_PSH, seq=segment.ack,
                           ack=segment.seq + 1, payload=request)
            b.requested = True
            return
        if b.check == "http" and b.requested and payload:
            status = payload.split(b"\r\n", 1)[0].split()
            verdict = len(status) > 1 and status[1].isdigit() and 200 <= int(status[1]) < 400
            self._send_tcp(b, sport, tcp.TCP_RST, seq=segment.ack)
        elif b.check != "http":
            verdict = syn_ack
            if syn_ack:  # close the half-open connection, as a checker would
                self._send_tcp(b, sport, tcp.TCP_RST, seq=segment.ack)
        elif segment.bits & (tcp.TCP_RST | tcp.TCP_FIN):
            verdict = False  # refused, or closed without an answer
        if verdict is not None and self._result(b, verdict):
            self._apply()

    def _result(self, b: Member, ok: bool) -> bool:
        """Count a check; True when the member's health flipped."""
        b.pending = None
        b.checks += 1
        b.ok, b.bad = (b.ok + 1, 0) if ok else (0, b.bad + 1)
        if b.healthy and b.bad >= b.health["unhealthy_threshold"]:
            b.healthy, b.changed_at = False, time.time()
            self._event("unhealthy", b.ip, b.node)
            return True
        if not b.healthy and b.ok >= b.health["healthy_threshold"]:
            b.healthy, b.changed_at = True, time.time()
            self._event("healthy", b.ip, b.node)
            return True
        return False

    def _event(self, kind: str, address: str, node: str) -> None:
        self.history.append({"time": time.time(), "event": kind, "address": address,
                            "node": node})
        del self.history[:-HISTORY]  # a long run's flapping must not grow it without end
        self.logger.info("%s %s (%s)", kind, node, address)

    # -- state -----------------------------------------------------------------------------

    def state(self) -> dict[str, Any]:
        return {
            "connected": self.datapath is not None,
            "vips": [{"service": vip["service"], "ip": vip["ip"], "port": vip["port"],
                      "protocol": vip.get("protocol", "TCP"),
                      "mode": vip["mode"], "leader": self.leaders.get(vip["ip"]),
                      "backends": [{"node": b.node, "pod": b.pod, "ip": b.ip, "port": b.port,
                                    "healthy": b.healthy, "since": b.changed_at,
                                    "checks": b.checks}
                                   for b in self.members.get(_key(vip), [])]}
                     for vip in self.config["vips"]],
            "events": self.history,
        }

    def _serve_state(self, port: int) -> None:
        """GET anything → the state as JSON (on loopback: kemu asks, nobody else)."""
        def handle(sock: Any, address: Any) -> None:
            sock.recv(4096)
            body = json.dumps(self.state()).encode()
            sock.sendall(b"HTTP/1.0 200 OK\r\nContent-Type: application/json\r\n"
                         b"Content-Length: " + str(len(body)).encode() + b"\r\n\r\n" + body)
            sock.close()
        if port:
            hub.StreamServer(("127.0.0.1", port), handle).serve_forever()
