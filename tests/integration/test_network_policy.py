"""NetworkPolicy blocks what it must and allows what it must, in every backend."""

import subprocess
import sys

import pytest

from kemu.registry import backends as available_backends

from .helpers import in_pod, pod, running_cluster, scenario_doc

pytestmark = pytest.mark.integration


def labelled(name, node, labels, namespace="default", extra_port=False):
    p = pod(name, node=node)
    p["metadata"]["labels"] = labels
    p["metadata"]["namespace"] = namespace
    if extra_port:
        p["spec"]["containers"].append({"name": "iperf", "image": "kemu/iperf3",
                                        "ports": [{"containerPort": 5201}]})
    return p


def policy(name, spec, namespace="default"):
    return {"apiVersion": "networking.k8s.io/v1", "kind": "NetworkPolicy",
            "metadata": {"name": name, "namespace": namespace}, "spec": spec}


WORKLOADS = [
    {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": "tools",
                                                           "labels": {"team": "ops"}}},
    labelled("db", "node2", {"app": "db"}, extra_port=True),
    labelled("api", "node1", {"app": "api"}),
    labelled("intruder", "node3", {"app": "intruder"}),
    labelled("ops", "node1", {"app": "ops"}, namespace="tools"),
    labelled("locked", "node3", {"app": "locked"}),
    labelled("quiet", "node2", {"app": "quiet"}, namespace="tools"),
    labelled("guarded", "node3", {"app": "guarded"}),  # beside intruder, on one bridge
    policy("guarded-from-api", {
        "podSelector": {"matchLabels": {"app": "guarded"}},
        "ingress": [{"from": [{"podSelector": {"matchLabels": {"app": "api"}}}]}]}),
    {"apiVersion": "v1", "kind": "Service", "metadata": {"name": "db"},
     "spec": {"selector": {"app": "db"}, "ports": [{"port": 80, "targetPort": 8080}]}},
    policy("db-from-api-and-ops", {
        "podSelector": {"matchLabels": {"app": "db"}},
        "ingress": [{"from": [{"podSelector": {"matchLabels": {"app": "api"}}},
                              {"namespaceSelector": {"matchLabels": {"team": "ops"}}}],
                     "ports": [{"protocol": "TCP", "port": 8080}]}]}),
    policy("locked-egress", {
        "podSelector": {"matchLabels": {"app": "locked"}}, "policyTypes": ["Egress"],
        # node1 leases the first subnet (a /24 or a /26): the except covers its pods, api too.
        "egress": [{"to": [{"ipBlock": {"cidr": "10.244.0.0/16",
                                        "except": ["10.244.0.0/26"]}}]}]}),
    policy("deny-all", {"podSelector": {}, "policyTypes": ["Ingress"]}, namespace="tools"),
]


@pytest.fixture(scope="module", params=sorted(available_backends()))
def cluster(request):
    with running_cluster(scenario_doc(WORKLOADS, nodes=3, cni=request.param)) as running:
        yield running


def ip(cluster, key):
    return cluster.pods[key if "/" in key else f"default/{key}"].ip


def reaches(cluster, source, url, namespace="default"):
    result = cluster.pods[f"{namespace}/{source}"].exec(
        "curl", "-s", "-o", "/dev/null", "--max-time", "1", url, timeout=10)
    return result.returncode == 0


def test_ingress_allows_the_selected_pod_on_the_allowed_port(cluster):
    assert reaches(cluster, "api", f"http://{ip(cluster, 'db')}:8080/")


def test_ingress_blocks_other_pods(cluster):
    assert not reaches(cluster, "intruder", f"http://{ip(cluster, 'db')}:8080/")


def connects(prefix, address, port):
    """A TCP connection within a second (and nothing more)."""
    code = ("import socket, sys; socket.create_connection((sys.argv[1], int(sys.argv[2])), "
            "timeout=1).close()")
    return subprocess.run([*prefix, sys.executable, "-c", code, address, str(port)],
                          capture_output=True).returncode == 0


def test_ingress_blocks_other_ports_even_for_allowed_pods(cluster):
    db = cluster.pods["default/db"]
    # The port is open (the node itself is never policed), yet api may not reach it.
    assert connects(cluster.exec_prefix(cluster.nodes["node2"]), db.ip, 5201)
    assert not connects(cluster.exec_prefix(cluster.pods["default/api"]), db.ip, 5201)
    assert connects(cluster.exec_prefix(cluster.pods["default/api"]), db.ip, 8080)


def test_namespace_selector(cluster):
    assert reaches(cluster, "ops", f"http://{ip(cluster, 'db')}:8080/", namespace="tools")


def test_policy_applies_behind_a_service(cluster):
    db_service = next(s.cluster_ip for s in cluster.scenario.services if s.name == "db")
    assert reaches(cluster, "api", f"http://{db_service}:80/")
    assert not reaches(cluster, "intruder", f"http://{db_service}:80/")


def test_egress_ip_block_with_except(cluster):
    assert reaches(cluster, "locked", f"http://{ip(cluster, 'intruder')}:8080/")
    assert not reaches(cluster, "locked", f"http://{ip(cluster, 'api')}:8080/")


def test_default_deny_in_a_namespace(cluster):
    assert not reaches(cluster, "api", f"http://{ip(cluster, 'tools/quiet')}:8080/")


def test_unselected_pods_are_open(cluster):
    assert reaches(cluster, "intruder", f"http://{ip(cluster, 'api')}:8080/")
    assert reaches(cluster, "db", f"http://{ip(cluster, 'api')}:8080/")  # db's egress is free


def test_same_node_traffic_is_policed_too(cluster):
    """intruder and guarded share node3 (one bridge in the flannel backends): the policy
    still stops intruder, and still lets api in from another node."""
    assert cluster.pods["default/intruder"].node is cluster.pods["default/guarded"].node
    assert not reaches(cluster, "intruder", f"http://{ip(cluster, 'guarded')}:8080/")
    assert reaches(cluster, "api", f"http://{ip(cluster, 'guarded')}:8080/")
    assert reaches(cluster, "intruder", f"http://{ip(cluster, 'locked')}:8080/")  # unselected
    result = in_pod(cluster, "api", "iptables", "-S")  # pods have no rules of their own
    assert "KEMU" not in result.stdout
