"""Manifests as users have them, unchanged: the Kubernetes documentation's nginx Deployment
(a real image kemu has no program for: a stand-in serves its ports), a multi-port Service with
named targetPorts, a readiness probe, a pod declaring several ports, a two-container pod whose
front reaches its neighbour on localhost."""

import json
import shutil
import textwrap
from pathlib import Path

import pytest

from .helpers import http_get, in_pod, pod, running_cluster, scenario_doc

pytestmark = pytest.mark.integration

# As https://kubernetes.io/docs/concepts/workloads/controllers/deployment/ gives it, with a
# readiness probe and a second, named port added.
NGINX = {
    "apiVersion": "apps/v1", "kind": "Deployment",
    "metadata": {"name": "nginx-deployment", "labels": {"app": "nginx"}},
    "spec": {"replicas": 3, "selector": {"matchLabels": {"app": "nginx"}},
             "template": {"metadata": {"labels": {"app": "nginx"}}, "spec": {"containers": [{
                 "name": "nginx", "image": "nginx:1.14.2",
                 "ports": [{"containerPort": 80, "name": "http"},
                           {"containerPort": 9113, "name": "metrics"}],
                 "readinessProbe": {"httpGet": {"path": "/", "port": "http"},
                                    "periodSeconds": 2}}]}}}}
NGINX_SVC = {
    "apiVersion": "v1", "kind": "Service", "metadata": {"name": "nginx"},
    "spec": {"selector": {"app": "nginx"},
             "ports": [{"name": "web", "port": 80, "targetPort": "http"},
                       {"name": "metrics", "port": 9113, "targetPort": "metrics"}]}}

# kemu's own image, two declared ports: both serve.
METRICS = pod("metrics", node="node2")
METRICS["spec"]["containers"][0]["ports"] = [{"containerPort": 8080, "name": "http-web"},
                                             {"containerPort": 9100, "name": "prom"}]

# The seeds' two-container pod: an nginx front on :80 proxying to a legacy app that listens
# on localhost:8000 only; the containers share the pod's network namespace.
FRONT_CONF = textwrap.dedent("""\
    daemon off; pid /tmp/kemu-test-front.pid; error_log stderr;
    events {}
    http { access_log off;
           server { listen 80; location / { proxy_pass http://127.0.0.1:8000; } } }
    """)
LEGACY = {"apiVersion": "v1", "kind": "Pod",
          "metadata": {"name": "legacy", "labels": {"app": "legacy"}},
          "spec": {"nodeName": "node2", "containers": [
              {"name": "front", "image": "nginx:1.25",
               "command": ["nginx", "-c", "/tmp/kemu-test-front.conf"],
               "ports": [{"containerPort": 80}]},
              {"name": "app", "image": "kemu/http-echo",
               "args": [], "ports": [{"containerPort": 8000}]}]}}


# A program of the user's that never listens on the port it declares: the pod runs anyway,
# as in Kubernetes (a declared port is informational).
LAZY = pod("lazy", node="node1", image="busybox:1.36")
LAZY["spec"]["containers"][0]["command"] = ["sleep", "infinity"]

# A hostPort: the node's port 18080 leads to the pod's 8080 (the portmap CNI plugin).
HOSTPORT = pod("hostport", node="node2")
HOSTPORT["spec"]["containers"][0]["ports"] = [{"containerPort": 8080, "hostPort": 18080}]


# A Service without a selector, its endpoint given as an Endpoints object: node1's kube-proxy
# health server (node addresses are .2, .3, … of the underlay).
KP_HEALTH = [{"apiVersion": "v1", "kind": "Service", "metadata": {"name": "kp-health"},
              "spec": {"ports": [{"port": 80, "targetPort": 10256}]}},
             {"apiVersion": "v1", "kind": "Endpoints", "metadata": {"name": "kp-health"},
              "subsets": [{"addresses": [{"ip": "172.18.0.2"}], "ports": [{"port": 10256}]}]}]


@pytest.fixture(scope="module")
def cluster(tmp_path_factory):
    if not shutil.which("nginx"):
        pytest.skip("nginx is not installed (scripts/setup.sh installs nginx-light)")
    conf = Path("/tmp/kemu-test-front.conf")
    conf.write_text(FRONT_CONF)
    workloads = [NGINX, NGINX_SVC, METRICS, LEGACY, HOSTPORT, *KP_HEALTH, LAZY,
                 pod("client", node="node1", port=0, image="kemu/sleep")]
    try:
        with running_cluster(scenario_doc(workloads, nodes=2)) as running:
            yield running
    finally:
        conf.unlink(missing_ok=True)
        Path("/tmp/kemu-test-front.pid").unlink(missing_ok=True)


def svc_ip(cluster, name):
    return next(s.cluster_ip for s in cluster.scenario.services if s.name == name)


def test_a_documentation_deployment_runs_on_stand_ins(cluster):
    described = {p["name"]: p for p in cluster.describe()["pods"]}
    for name in ("nginx-deployment-0", "nginx-deployment-1", "nginx-deployment-2"):
        assert described[name]["ready"]  # the HTTP readiness probe got its answer
        assert described[name]["stand_in_for"] == ["nginx:1.14.2"]
    assert "stand_in_for" not in described["metrics"]
    ip = svc_ip(cluster, "nginx")
    pods = {http_get(cluster, "client", f"http://{ip}:80/")["pod"] for _ in range(12)}
    assert pods <= {f"nginx-deployment-{i}" for i in range(3)} and len(pods) > 1
    # The Service's second port reaches the pods' second named port.
    assert http_get(cluster, "client", f"http://{ip}:9113/")["pod"].startswith("nginx-")


def test_every_declared_port_of_a_pod_serves(cluster):
    ip = cluster.pods["default/metrics"].ip
    for port in (8080, 9100):
        assert http_get(cluster, "client", f"http://{ip}:{port}/")["pod"] == "metrics"


def test_containers_of_a_pod_share_its_network_namespace(cluster):
    legacy = cluster.pods["default/legacy"]
    # From outside: the front answers on :80 with what the app behind it on localhost says.
    answer = http_get(cluster, "client", f"http://{legacy.ip}:80/hello")
    assert answer["pod"] == "legacy" and answer["path"] == "/hello"
    assert answer["client"] == "127.0.0.1"  # the app saw the front, over loopback
    out = in_pod(cluster, "legacy", "curl", "-sS", "http://localhost:8000/")
    assert json.loads(out.stdout)["pod"] == "legacy"


def test_a_host_port_reaches_the_pod_through_its_node(cluster):
    node2 = cluster.nodes["node2"].IP()
    out = cluster.nodes["node1"].run("curl", "-sS", "--max-time", "5", f"http://{node2}:18080/")
    assert json.loads(out)["pod"] == "hostport"
    # The portmap plugin's own chains, in the node (not in the host).
    assert "CNI-HOSTPORT-DNAT" in cluster.node_rules("node2")


def test_a_service_without_a_selector_reaches_the_endpoints_its_manifest_gives(cluster):
    out = in_pod(cluster, "client", "curl", "-sS", "--max-time", "5",
                 "http://kp-health.default.svc.cluster.local/healthz")
    assert out.returncode == 0, out.stderr
    assert json.loads(out.stdout)["nodeEligible"] is True
    slices = {s["service"]: s for s in cluster.describe()["endpointslices"]}
    assert slices["kp-health"]["endpoints"][0]["ip"] == "172.18.0.2"


def test_the_kubernetes_service_exists_and_nothing_answers_behind_it(cluster):
    out = in_pod(cluster, "client", "getent", "hosts", "kubernetes.default.svc.cluster.local")
    assert out.stdout.split()[0] == "10.96.0.1"
    out = in_pod(cluster, "client", "curl", "-sS", "--max-time", "5", "-k",
                 "https://kubernetes.default/")
    assert out.returncode == 7  # refused at once: kemu emulates no API server


def test_a_declared_port_nobody_listens_on_does_not_stop_the_pod(cluster):
    described = {p["name"]: p for p in cluster.describe()["pods"]}
    assert described["lazy"]["ready"]  # no probe: ready once running, as kubelet has it
    out = in_pod(cluster, "client", "curl", "-sS", "--max-time", "3",
                 f"http://{cluster.pods['default/lazy'].ip}:8080/")
    assert out.returncode == 7  # refused: nothing listens
