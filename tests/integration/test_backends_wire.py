"""What each backend puts on the underlay wire and in the kernel, asserted on captures and on
the nodes' routing tables."""

import re
import signal
import struct
import subprocess
import time

import pytest

from .helpers import (
    Capture,
    eventually,
    in_node,
    in_pod,
    pod,
    reaches,
    read_pcap,
    running_cluster,
    scenario_doc,
)

pytestmark = pytest.mark.integration


def two_node_cluster(cni):
    return running_cluster(scenario_doc([pod("a", node="node1"), pod("c", node="node2")],
                                        cni=cni))


def ip(cluster, name):
    return cluster.pods[f"default/{name}"].ip


def capture_to_file(cluster, node, path, bpf):
    """tcpdump -w on the node's underlay interface; returns the process once it listens."""
    proc = subprocess.Popen([*cluster.exec_prefix(cluster.nodes[node]), "tcpdump", "-i",
                             "eth0", "-U", "-w", str(path), bpf], stderr=subprocess.PIPE,
                            text=True)
    while "listening on" not in proc.stderr.readline():
        assert proc.poll() is None, "tcpdump exited"
    return proc


def bulk_tcp(cluster, src, dst, seconds=1):
    server = subprocess.Popen([*cluster.exec_prefix(cluster.pods[f"default/{dst}"]), "iperf3",
                               "-s", "-1", "-p", "5302"], stdout=subprocess.DEVNULL)
    time.sleep(0.3)
    try:
        result = in_pod(cluster, src, "iperf3", "-c", ip(cluster, dst), "-p", "5302", "-t",
                        str(seconds))
        assert result.returncode == 0, result.stderr
    finally:
        server.kill()
        server.wait()


def ipv4(frame):
    """(header length, flags+fragment offset, protocol, src, dst, payload) of an Ethernet frame."""
    ip_packet = frame[14:]
    ihl = (ip_packet[0] & 0x0F) * 4
    total = struct.unpack("!H", ip_packet[2:4])[0]
    frag = struct.unpack("!H", ip_packet[6:8])[0]
    src, dst = ".".join(map(str, ip_packet[12:16])), ".".join(map(str, ip_packet[16:20]))
    return frag, ip_packet[9], src, dst, ip_packet[ihl:total]


class TestFlannelUDP:
    def test_one_inner_packet_per_datagram_and_no_fragments(self, tmp_path):
        with two_node_cluster("flannel-udp") as cluster:
            pcap = tmp_path / "underlay.pcap"
            tcpdump = capture_to_file(cluster, "node1", pcap, "ip")
            bulk_tcp(cluster, "a", "c")
            time.sleep(0.3)
            tcpdump.terminate()
            tcpdump.wait()
            datagrams = 0
            for frame in read_pcap(pcap):
                frag, proto, src, dst, payload = ipv4(frame)
                assert frag & 0x3FFF == 0, "an IP fragment crossed the underlay"
                assert proto == 17, f"non-UDP packet {src} > {dst} on the underlay"
                sport, dport, length = struct.unpack("!HHH", payload[:6])
                assert 8285 in (sport, dport)
                inner = payload[8:length]
                assert inner[0] >> 4 == 4  # the bare inner IPv4 packet, no extra header
                assert struct.unpack("!H", inner[2:4])[0] == len(inner)  # exactly one packet
                inner_src = ".".join(map(str, inner[12:16]))
                assert inner_src in (ip(cluster, "a"), ip(cluster, "c"))
                assert len(frame) - 14 <= 1500
                datagrams += 1
            assert datagrams > 1000  # a real bulk transfer went through

    def test_tun_device_and_routes(self):
        with two_node_cluster("flannel-udp") as cluster:
            link = in_node(cluster, "node1", "ip", "-d", "link", "show", "flannel0")
            assert "mtu 1472" in link and "tun" in link
            addr = in_node(cluster, "node1", "ip", "-o", "addr", "show", "flannel0")
            lease = cluster.leases.get("node1")
            assert f"{lease.subnet.network_address}/16" in addr
            routes = in_node(cluster, "node1", "ip", "route", "show")
            assert "10.244.0.0/16 dev flannel0" in routes
            assert f"{lease.subnet} dev cni0" in routes  # local pods win by the longer prefix

    def test_proxy_stops_with_the_cluster(self):
        with two_node_cluster("flannel-udp") as cluster:
            pids = [p.proc.pid for p in cluster.backend.proxies.values()]
            assert len(pids) == 2
        for pid in pids:
            assert not __import__("os").path.exists(f"/proc/{pid}")


@pytest.fixture(scope="class")
def calico():
    with running_cluster(scenario_doc([pod("a", node="node1"), pod("c", node="node2"),
                                       pod("d", node="node3")], nodes=3,
                                      cni="calico-bgp")) as running:
        yield running


class TestCalicoBGP:
    @pytest.fixture
    def cluster(self, calico):
        return calico

    def test_plain_pod_packets_on_the_wire(self, cluster):
        capture = Capture(cluster.exec_prefix(cluster.nodes["node1"]), "eth0",
                          "icmp or udp", count=2)
        in_pod(cluster, "a", "ping", "-c", "2", "-i", "0.2", ip(cluster, "c"))
        wire = capture.stop()
        assert f"{ip(cluster, 'a')} > {ip(cluster, 'c')}: ICMP echo request" in wire
        assert "UDP" not in wire  # no encapsulation

    def test_blocks_routes_and_pod_host_routes(self, cluster):
        blocks = {lease.node: lease for lease in cluster.leases.leases()}
        assert all(lease.subnet.prefixlen == 26 for lease in blocks.values())
        routes = in_node(cluster, "node1", "ip", "route", "show")
        assert f"blackhole {blocks['node1'].subnet} proto bird" in routes
        for peer in ("node2", "node3"):
            assert re.search(rf"{blocks[peer].subnet} via {blocks[peer].public_ip} dev eth0 "
                             rf"proto bird", routes), routes
        assert re.search(rf"{ip(cluster, 'a')} dev veth\w+ scope host", routes)  # ptp's /32
        # Routed, not bridged: the pod reaches even its own block through the node, never
        # on-link (ptp removes the connected route and routes the block via the gateway).
        inside = in_pod(cluster, "a", "ip", "route", "show").stdout
        gateway = blocks["node1"].subnet.network_address + 1
        assert f"default via {gateway} dev eth0" in inside
        assert f"{blocks['node1'].subnet} via {gateway} dev eth0" in inside
        assert "proto kernel" not in inside

    def test_mesh_sessions_established(self, cluster):
        for node in cluster.nodes.values():
            protocols = cluster.backend.birdc(node, "show", "protocols")
            assert len(re.findall(r"Mesh_\S+\s+BGP\s+---\s+up\s+\S+\s+Established",
                                  protocols)) == 2, protocols

    def test_killed_bird_withdraws_routes_and_restart_restores_them(self, cluster):
        node3 = cluster.nodes["node3"]
        block = str(cluster.leases.get("node3").subnet)

        def learned_on_node1():
            return block in in_node(cluster, "node1", "ip", "route", "show", "proto", "bird")

        assert learned_on_node1()
        bird = cluster.backend.birds["node3"]
        bird.proc.send_signal(signal.SIGKILL)
        bird.proc.wait()
        started = time.monotonic()
        assert eventually(lambda: not learned_on_node1(), timeout=10)
        withdrawn_after = time.monotonic() - started
        assert not reaches(cluster, "a", ip(cluster, "d"))
        cluster.backend.birds.pop("node3").stop()
        cluster.backend.start_bird(node3, cluster.leases.get("node3"))
        cluster.backend.add_peers(node3, [cluster.leases.get(n) for n in ("node1", "node2")])
        started = time.monotonic()
        assert eventually(learned_on_node1, timeout=10)
        converged_after = time.monotonic() - started
        assert eventually(lambda: reaches(cluster, "a", ip(cluster, "d")))
        print(f"withdrawn after {withdrawn_after:.2f} s, back after {converged_after:.2f} s")


def test_calico_route_reflector_topology():
    """node1 reflects; node2 and node3 each have one session (to node1) yet learn each other's
    block, with the originator (not the reflector) as next hop."""
    doc = scenario_doc([pod("a", node="node2"), pod("d", node="node3")], nodes=3,
                       cni="calico-bgp")
    doc["cluster"]["cni"]["options"] = {"routeReflectors": ["node1"]}
    with running_cluster(doc) as cluster:
        node2, node3 = cluster.nodes["node2"], cluster.nodes["node3"]
        protocols = cluster.backend.birdc(node2, "show", "protocols")
        assert re.findall(r"(\w+_172_18_0_\d+)\s+BGP\s+---\s+up\s+\S+\s+Established",
                          protocols) == ["Reflector_172_18_0_2"]
        reflector = cluster.backend.birdc(cluster.nodes["node1"], "show", "protocols")
        assert len(re.findall(r"Client_\S+\s+BGP\s+---\s+up", reflector)) == 2
        block3 = cluster.leases.get("node3").subnet
        routes = in_node(cluster, "node2", "ip", "route", "show", "proto", "bird")
        assert f"{block3} via {node3.IP()} dev eth0" in routes
        assert reaches(cluster, "a", ip(cluster, "d"))


def test_host_gw_routes_via_underlay_and_plain_packets():
    with two_node_cluster("host-gw") as cluster:
        peer = cluster.leases.get("node2")
        routes = in_node(cluster, "node1", "ip", "route", "show")
        assert f"{peer.subnet} via {peer.public_ip} dev eth0" in routes
        capture = Capture(cluster.exec_prefix(cluster.nodes["node1"]), "eth0", "icmp", count=1)
        in_pod(cluster, "a", "ping", "-c", "1", ip(cluster, "c"))
        assert f"{ip(cluster, 'a')} > {ip(cluster, 'c')}: ICMP echo request" in capture.stop()
