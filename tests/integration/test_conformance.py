"""The contract every registered CNI backend is held to, on real namespaces: pods reach each
other on one node and across nodes over ICMP, TCP and UDP; pods reach other nodes; packets at
the backend's MTU pass with DF set and one byte more fails cleanly (no black hole); a node that
leaves becomes unreachable and is reachable again when it rejoins."""

import json
import subprocess
import time

import pytest

from kemu.registry import backends as available_backends

from .helpers import eventually, http_get, in_pod, pod, reaches, running_cluster, scenario_doc

pytestmark = pytest.mark.integration


@pytest.fixture(scope="module", params=sorted(available_backends()))
def cluster(request):
    with running_cluster(scenario_doc(
            [pod("a", node="node1"), pod("b", node="node1"), pod("c", node="node2"),
             pod("d", node="node3")], nodes=3, cni=request.param)) as running:
        yield running


def ip(cluster, name):
    return cluster.pods[f"default/{name}"].ip


@pytest.mark.parametrize("target", ["b", "c"], ids=["same-node", "cross-node"])
def test_icmp(cluster, target):
    result = in_pod(cluster, "a", "ping", "-c", "3", "-i", "0.1", "-W", "2", ip(cluster, target))
    assert "3 received" in result.stdout, result.stdout + result.stderr


@pytest.mark.parametrize("target", ["b", "c"], ids=["same-node", "cross-node"])
def test_tcp_without_nat(cluster, target):
    reply = http_get(cluster, "a", f"http://{ip(cluster, target)}:8080/")
    assert reply["pod"] == target and reply["client"] == ip(cluster, "a")


@pytest.mark.parametrize("target", ["b", "c"], ids=["same-node", "cross-node"])
def test_udp(cluster, target):
    server = subprocess.Popen([*cluster.exec_prefix(cluster.pods[f"default/{target}"]),
                               "iperf3", "-s", "-1", "-p", "5301"], stdout=subprocess.DEVNULL)
    try:
        time.sleep(0.3)
        result = in_pod(cluster, "a", "iperf3", "-c", ip(cluster, target), "-p", "5301", "-u",
                        "-b", "20M", "-t", "1", "-J")
        received = json.loads(result.stdout)["end"]["sum_received"]
        assert received["packets"] > 100 and received["lost_percent"] < 5
    finally:
        server.kill()
        server.wait()


def test_pod_reaches_other_nodes(cluster):
    for node in ("node2", "node3"):
        assert reaches(cluster, "a", str(cluster.nodes[node].IP()))


def test_mtu_boundary_is_clean(cluster):
    mtu = cluster.backend.mtu
    payload = mtu - 28  # IP 20 + ICMP 8
    at_limit = in_pod(cluster, "a", "ping", "-c", "1", "-W", "2", "-M", "do", "-s",
                      str(payload), ip(cluster, "c"))
    assert at_limit.returncode == 0, f"{payload}-byte DF ping lost at MTU {mtu}"
    over = in_pod(cluster, "a", "ping", "-c", "1", "-W", "2", "-M", "do", "-s",
                  str(payload + 1), ip(cluster, "c"))
    assert over.returncode != 0 and f"message too long, mtu={mtu}" in over.stderr


def test_node_leave_and_join(cluster):
    assert reaches(cluster, "a", ip(cluster, "d"))
    cluster.node_leave("node3")
    try:
        assert eventually(lambda: not reaches(cluster, "a", ip(cluster, "d")))
        assert reaches(cluster, "a", ip(cluster, "c"))  # the rest of the cluster is untouched
    finally:
        cluster.node_join("node3")
    assert eventually(lambda: reaches(cluster, "a", ip(cluster, "d")), timeout=15)
    assert eventually(lambda: reaches(cluster, "d", ip(cluster, "c")), timeout=15)
