"""NetworkPolicy blocks what it must and allows what it must, in every backend — with the
policy engine a real cluster has: calico's own, canal (calico's engine) on flannel — and is
not enforced where nothing enforces it (flannel alone)."""

import subprocess
import sys

import pytest

from kemu.registry import backends as available_backends

from .helpers import eventually, in_pod, pod, running_cluster, scenario_doc

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
    labelled("intruder", "node3", {"app": "intruder"}, extra_port=True),
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
    # Egress to a named port: 8080 is "web" on api, 5201 is "web" on intruder.
    labelled("picky", "node1", {"app": "picky"}),
    policy("picky-egress", {
        "podSelector": {"matchLabels": {"app": "picky"}}, "policyTypes": ["Egress"],
        "egress": [{"ports": [{"port": "web"}]}]}),
]
for item in WORKLOADS:  # name the ports the egress policy above uses
    if item.get("kind") == "Pod" and item["metadata"]["name"] in ("api", "intruder"):
        item["spec"]["containers"][-1]["ports"][0]["name"] = "web"


def with_engine(doc, backend):
    """calico brings its own engine; flannel needs canal to enforce anything."""
    if backend != "calico-bgp":
        doc["cluster"]["networkPolicy"] = {"engine": "canal"}
    return doc


@pytest.fixture(scope="module", params=sorted(available_backends()))
def cluster(request):
    doc = with_engine(scenario_doc(WORKLOADS, nodes=3, cni=request.param), request.param)
    with running_cluster(doc) as running:
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


def test_egress_named_ports_resolve_on_each_destination(cluster):
    # "web" is 8080 on api and 5201 on intruder: picky may reach exactly those.
    picky = cluster.exec_prefix(cluster.pods["default/picky"])
    assert reaches(cluster, "picky", f"http://{ip(cluster, 'api')}:8080/")
    assert connects(picky, ip(cluster, "intruder"), 5201)
    assert not connects(picky, ip(cluster, "intruder"), 8080)


def test_egress_to_the_pods_own_node_is_policed(cluster):
    # picky's egress allows only "web" ports; its own node's kube-proxy health server is not.
    node1 = cluster.nodes["node1"].IP()
    assert cluster.pods["default/picky"].node.name == "node1"
    assert not connects(cluster.exec_prefix(cluster.pods["default/picky"]), node1, 10256)
    assert connects(cluster.exec_prefix(cluster.pods["default/api"]), node1, 10256)


SHOP = [
    {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": "shop"}},
    {**labelled("api", "node2", {"app": "api"}, namespace="shop")},
    {"apiVersion": "apps/v1", "kind": "Deployment",
     "metadata": {"name": "client", "namespace": "shop"},
     "spec": {"replicas": 1, "selector": {"matchLabels": {"role": "client"}},
              "template": {"metadata": {"labels": {"role": "client"}}, "spec": {
                  "containers": [{"name": "c", "image": "kemu/sleep"}]}}}},
    policy("deny", {"podSelector": {}, "policyTypes": ["Ingress"]}, namespace="shop"),
    policy("client-to-api", {"podSelector": {"matchLabels": {"app": "api"}},
                             "ingress": [{"from": [{"podSelector": {"matchLabels": {
                                 "role": "client"}}}], "ports": [{"port": 8080}]}]},
           namespace="shop"),
]
LATE = {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "late", "namespace": "shop"},
        "spec": {"nodeName": "node1", "containers": [{"name": "web", "image": "kemu/http-echo",
                                                      "ports": [{"containerPort": 8080}]}]}}


@pytest.mark.parametrize("backend", ["flannel-vxlan", "calico-bgp"])
def test_policies_follow_pods_as_they_come(backend):
    """The issue's example: a second client pod (no Service selects it) may reach api at once,
    and a new unlabelled pod in shop is isolated at once."""
    doc = with_engine(scenario_doc(SHOP, nodes=2, cni=backend), backend)
    doc["events"] = [{"at": 0, "action": "scale", "deployment": "shop/client", "replicas": 2},
                     {"at": 1, "action": "apply", "manifest": LATE}]
    with running_cluster(doc) as cluster:
        from kemu.experiment.timeline import apply_event
        api = f"http://{ip(cluster, 'shop/api')}:8080/"
        apply_event(cluster, cluster.scenario.events[0])
        assert eventually(lambda: reaches(cluster, "client-1", api, namespace="shop"))
        apply_event(cluster, cluster.scenario.events[1])
        late = f"http://{ip(cluster, 'shop/late')}:8080/"
        assert eventually(lambda: not reaches(cluster, "client-0", late, namespace="shop"))


def test_flannel_alone_enforces_nothing_and_says_so():
    doc = scenario_doc(SHOP, nodes=2, cni="flannel-vxlan")
    from kemu.scenario import parse_scenario
    spec = parse_scenario(doc)
    assert any("enforces no NetworkPolicy" in w.what for w in spec.warnings)
    with running_cluster(doc) as cluster:
        assert cluster.describe()["network_policy_engine"] is None
        unlabelled = pod("outsider", node="node1")
        cluster.apply((parse_scenario(scenario_doc([unlabelled])).pods[0],))
        assert eventually(lambda: reaches(cluster, "outsider",
                                          f"http://{ip(cluster, 'shop/api')}:8080/"))
