"""What the cloud's controller tells its load balancer: nodes as backends, or — container-native,
gce-neg — the pods, checked as ingress-gce checks network endpoint groups (pkg/healthchecks:
HTTP on the serving port, the readiness probe's path, 15 s / 15 s, 1 / 2), and the readiness
gate GKE's webhook adds to their pods."""

import ipaddress

from kemu.edge.config import lb_config, with_neg_gate
from kemu.k8s.store import PodStatus
from kemu.scenario import parse_scenario
from kemu.scenario.model import NEG_READINESS_GATE, ExternalSpec, LoadBalancerSpec
from kemu.scenario.objects import Container, ContainerPort, PodSpec, Probe, Service, ServicePort

NODES = [("node1", "172.18.0.2", "02:00:00:00:00:01"), ("node2", "172.18.0.3", "02:00:00:00:00:02")]
WEB = Service("web", cluster_ip="10.96.0.5", selector={"app": "web"}, type="LoadBalancer",
              load_balancer_ip="192.168.100.200",
              ports=(ServicePort(80, "http", name="http", node_port=30080),))


def external(preset):
    return ExternalSpec(ipaddress.IPv4Network("192.168.100.0/24"), (),
                        LoadBalancerSpec(preset, ipaddress.IPv4Network("192.168.100.192/27")))


def pod(name, ip, node, ready=True, probe=None, terminating=False):
    spec = PodSpec(name, labels={"app": "web"}, containers=(Container(
        "c", "kemu/http-echo", ports=(ContainerPort(8080, "http"),), readiness=probe),))
    return PodStatus(spec, ip, node, False, containers_ready=ready, terminating=terminating)


def test_nodes_are_the_backends_of_a_node_port_load_balancer():
    (vip,) = lb_config(external("gce"), [WEB], NODES)["vips"]
    assert [(b["node"], b["port"], b["check_port"]) for b in vip["backends"]] == [
        ("node1", 30080, 10256), ("node2", 30080, 10256)]


def test_container_native_backends_are_the_pods_with_ready_containers():
    pods = [pod("web-0", "10.244.0.2", "node1",
                probe=Probe("httpGet", "http", "/healthz")),
            pod("web-1", "10.244.1.2", "node2"),
            pod("web-2", "10.244.1.3", "node2", ready=False),  # not in the group yet
            pod("web-3", "10.244.0.3", "node1", terminating=True)]
    config = lb_config(external("gce-neg"), [WEB], NODES, pods)
    (vip,) = config["vips"]
    assert vip["mode"] == "pods" and config["network"] == "192.168.100.0/24"
    assert [(b["pod"], b["ip"], b["mac"], b["port"], b["path"]) for b in vip["backends"]] == [
        ("default/web-0", "10.244.0.2", "02:00:00:00:00:01", 8080, "/healthz"),
        ("default/web-1", "10.244.1.2", "02:00:00:00:00:02", 8080, "/")]
    health = vip["health"]
    assert (health["interval"], health["timeout"], health["healthy_threshold"],
            health["unhealthy_threshold"], health["fail_open"]) == (15, 15, 1, 2, False)


def test_pods_behind_a_container_native_load_balancer_get_its_readiness_gate():
    spec = PodSpec("web-0", labels={"app": "web"})
    assert with_neg_gate(spec, [WEB], external("gce-neg")).readiness_gates == (
        NEG_READINESS_GATE,)
    assert with_neg_gate(spec, [WEB], external("gce")) == spec
    other = PodSpec("db-0", labels={"app": "db"})
    assert with_neg_gate(other, [WEB], external("gce-neg")) == other


def test_a_readiness_gate_nothing_sets_is_said():
    doc = {"apiVersion": "kemu/v1", "kind": "Scenario", "metadata": {"name": "t"},
           "cluster": {"nodes": 1, "cni": {"plugin": "flannel-vxlan"}, "dns": {"enabled": False}},
           "workloads": [{"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "p"},
                          "spec": {"readinessGates": [{"conditionType": "www.example.com/ok"}],
                                   "containers": [{"name": "c", "image": "kemu/sleep"}]}}]}
    (warning,) = [w.what for w in parse_scenario(doc).warnings if "readiness gate" in w.what]
    assert "'www.example.com/ok' of pod default/p, so they never become Ready" in warning


def test_what_gce_neg_cannot_do_is_said():
    doc = {"apiVersion": "kemu/v1", "kind": "Scenario", "metadata": {"name": "t"},
           "cluster": {"nodes": 1, "cni": {"plugin": "flannel-vxlan"}, "dns": {"enabled": False}},
           "external": {"loadBalancer": {"preset": "gce-neg"}},
           "workloads": [{"apiVersion": "v1", "kind": "Service", "metadata": {"name": "s"},
                          "spec": {"type": "LoadBalancer", "selector": {"app": "s"},
                                   "loadBalancerSourceRanges": ["203.0.113.0/24"],
                                   "ports": [{"port": 53, "protocol": "UDP"}]}}]}
    warnings = " | ".join(w.what for w in parse_scenario(doc).warnings)
    assert "loadBalancerSourceRanges" in warnings and "not enforced" in warnings
    assert "a UDP port's pods are never healthy" in warnings
