"""A 2-node flannel-vxlan cluster on real namespaces: pods reach each other within and across
nodes, the wire carries VXLAN, the node's kernel holds flanneld's routes, and nothing leaks
into the host's own network."""

import re

import pytest

from .helpers import (
    Capture,
    http_get,
    in_node,
    in_pod,
    pod,
    root_links,
    running_cluster,
    scenario_doc,
)

pytestmark = pytest.mark.integration

TWO_CONTAINERS = pod("duo", node="node1")
TWO_CONTAINERS["spec"]["containers"].append(
    {"name": "sidecar", "image": "kemu/iperf3", "ports": [{"containerPort": 5201}]})


@pytest.fixture(scope="module")
def cluster():
    before = root_links()
    with running_cluster(scenario_doc([
        pod("a", node="node1"), pod("b", node="node1"), pod("c", node="node2"), TWO_CONTAINERS,
    ])) as running:
        running.root_links_before = before
        yield running


def ip_of(cluster, name):
    return cluster.pods[f"default/{name}"].ip


def test_pods_get_addresses_from_their_nodes_subnet(cluster):
    leases = {lease.node: lease.subnet for lease in cluster.leases.leases()}
    for name, node in (("a", "node1"), ("b", "node1"), ("c", "node2")):
        assert cluster.pods[f"default/{name}"].node.name == node
        assert __import__("ipaddress").ip_address(ip_of(cluster, name)) in leases[node]


def test_same_node_ping(cluster):
    result = in_pod(cluster, "a", "ping", "-c", "2", "-i", "0.2", "-W", "2", ip_of(cluster, "b"))
    assert result.returncode == 0 and "2 received" in result.stdout


def test_cross_node_ping(cluster):
    result = in_pod(cluster, "a", "ping", "-c", "2", "-i", "0.2", "-W", "2", ip_of(cluster, "c"))
    assert result.returncode == 0 and "2 received" in result.stdout


def test_cross_node_tcp_keeps_pod_source_ip(cluster):
    reply = http_get(cluster, "a", f"http://{ip_of(cluster, 'c')}:8080/hello")
    assert reply["pod"] == "c" and reply["path"] == "/hello"
    assert reply["client"] == ip_of(cluster, "a")  # pod-to-pod is never NATed


def test_pod_to_other_node(cluster):
    node2 = str(cluster.nodes["node2"].IP())
    result = in_pod(cluster, "a", "ping", "-c", "1", "-W", "2", node2)
    assert result.returncode == 0


def test_containers_of_a_pod_share_its_network_namespace(cluster):
    # The sidecar's iperf3 server and the main HTTP server both listen in the one pod netns.
    assert http_get(cluster, "duo", "http://127.0.0.1:8080/")["client"] == "127.0.0.1"
    assert cluster.pods["default/duo"].listening(5201)
    lo = in_pod(cluster, "duo", "ip", "-o", "link", "show", "lo").stdout
    assert "UP" in lo  # the loopback CNI plugin brought it up


def test_vxlan_on_the_underlay(cluster):
    node1 = cluster.nodes["node1"]
    # tcpdump reads port 8472 as OTV by default; -T vxlan decodes it as what flannel sends.
    capture = Capture(cluster.exec_prefix(node1), "eth0", "udp port 8472", count=2,
                      decode=("-T", "vxlan"))
    in_pod(cluster, "a", "ping", "-c", "2", "-i", "0.2", ip_of(cluster, "c"))
    wire = capture.stop()
    assert "VXLAN, flags [I] (0x08), vni 1" in wire
    assert f"{ip_of(cluster, 'a')} > {ip_of(cluster, 'c')}: ICMP echo request" in wire
    node1_ip, node2_ip = str(node1.IP()), str(cluster.nodes["node2"].IP())
    assert f"{node1_ip}." in wire and f"{node2_ip}.8472" in wire


def test_kernel_state_is_what_flanneld_programs(cluster):
    leases = {lease.node: lease for lease in cluster.leases.leases()}
    peer = leases["node2"]
    gateway = peer.subnet.network_address
    link = in_node(cluster, "node1", "ip", "-d", "link", "show", "flannel.1")
    assert "mtu 1450" in link and "vxlan id 1" in link and "dstport 8472" in link
    assert "nolearning" in link
    routes = in_node(cluster, "node1", "ip", "route", "show")
    assert f"{peer.subnet} via {gateway} dev flannel.1 onlink" in routes
    neigh = in_node(cluster, "node1", "ip", "neigh", "show", "dev", "flannel.1")
    assert re.search(rf"{gateway} lladdr {peer.backend_data['VtepMAC']} PERMANENT", neigh)
    fdb = in_node(cluster, "node1", "bridge", "fdb", "show", "dev", "flannel.1")
    assert f"{peer.backend_data['VtepMAC']} dst {peer.public_ip} self permanent" in fdb
    cni0 = in_node(cluster, "node1", "ip", "-o", "addr", "show", "cni0")
    assert f"{leases['node1'].subnet.network_address + 1}/24" in cni0


def test_mtu_df_at_the_limit_passes_and_one_byte_more_fails_cleanly(cluster):
    target = ip_of(cluster, "c")
    ok = in_pod(cluster, "a", "ping", "-c", "1", "-W", "2", "-M", "do", "-s", "1422", target)
    assert ok.returncode == 0, ok.stdout + ok.stderr
    too_big = in_pod(cluster, "a", "ping", "-c", "1", "-W", "2", "-M", "do", "-s", "1423", target)
    assert too_big.returncode != 0 and "message too long, mtu=1450" in too_big.stderr


def test_sealed_from_the_host_network(cluster):
    """Scenario addresses never appear on the host's own interfaces, and the host's root
    namespace gained no device."""
    capture = Capture([], "any", "host 39.2.2.2 or net 10.244.0.0/16 or net 172.18.0.0/16 "
                                 "or net 10.96.0.0/12")
    for target in ("39.2.2.2", "10.96.0.1", ip_of(cluster, "c")):
        in_pod(cluster, "a", "ping", "-c", "1", "-W", "1", target)
    in_node(cluster, "node1", "ping", "-c", "1", "-W", "1", str(cluster.nodes["node2"].IP()))
    leaked = capture.stop()
    assert leaked.strip() == ""
    unreachable = in_pod(cluster, "a", "ping", "-c", "1", "-W", "1", "39.2.2.2")
    assert unreachable.returncode != 0
    assert root_links() == cluster.root_links_before
