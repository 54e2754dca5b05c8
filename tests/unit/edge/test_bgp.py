"""MetalLB's BGP mode: what each speaker announces (metallb speaker/bgp_controller.go
ShouldAnnounce: every node for Cluster, nodes with a ready local endpoint for Local, nothing
without endpoints) and the BIRD configurations, checked by BIRD itself."""

import subprocess

import pytest

from kemu.edge.bgp import announced, render_router, render_speaker
from kemu.k8s.endpoints import Endpoint
from kemu.scenario.objects import Service, ServicePort


def lb(name, ip, policy="Cluster"):
    return Service(name, cluster_ip="10.96.0.9", selector={"app": name}, type="LoadBalancer",
                   load_balancer_ip=ip, external_traffic_policy=policy,
                   ports=(ServicePort(80, 8080, name="http", node_port=30080),))


SERVICES = [lb("web", "192.168.100.200"), lb("local", "192.168.100.201", "Local"),
            lb("empty", "192.168.100.202")]
ENDPOINTS = {("default/web", "http"): [Endpoint("default/web-0", "10.244.0.2", "node1", 8080)],
             ("default/local", "http"): [Endpoint("default/l-0", "10.244.1.2", "node2", 8080)]}


@pytest.mark.parametrize("node, vips", [("node1", ["192.168.100.200"]),
                                        ("node2", ["192.168.100.200", "192.168.100.201"])])
def test_what_a_speaker_announces(node, vips):
    assert announced(SERVICES, ENDPOINTS, node) == vips


def test_the_configurations_are_birds(tmp_path):
    router = render_router("172.18.255.254", {"node1": "172.18.0.2", "node-2": "172.18.0.3"},
                           90)
    assert "merge paths on;" in router and "hold time 90; keepalive time 30;" in router
    assert "protocol bgp node_2 from speaker { neighbor 172.18.0.3 port 1179 as 64512; }" \
        in router
    speaker = render_speaker("node1", "172.18.0.2", "172.18.255.254", ["192.168.100.200"], 3)
    assert "route 192.168.100.200/32 blackhole;" in speaker
    assert 'export where proto = "vips"; next hop self;' in speaker
    for name, text in (("router", router), ("speaker", speaker)):
        path = tmp_path / f"{name}.conf"
        path.write_text(text)
        check = subprocess.run(["bird", "-p", "-c", str(path)], capture_output=True, text=True)
        assert check.returncode == 0, check.stderr
