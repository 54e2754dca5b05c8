"""Services checked and allocated as the API server does; each expected value is upstream's
(pkg/apis/core/validation/validation.go ValidateService; pkg/registry/core/service/storage/
alloc.go and portallocator)."""

from pathlib import Path

import pytest
import yaml

from kemu.errors import ScenarioError
from kemu.scenario import parse_scenario
from kemu.scenario.manifests import parse_manifest

DATA = Path(__file__).parent / "data"


def service(name="web", **spec):
    return {"apiVersion": "v1", "kind": "Service", "metadata": {"name": name},
            "spec": {"selector": {"app": "web"}, "ports": [{"port": 80}], **spec}}


def errors(doc):
    return [f"{p.where}: {p.what}" for p in parse_manifest(doc, "f.yaml", "doc").problems]


def scenario(*workloads):
    return {"apiVersion": "kemu/v1", "kind": "Scenario", "metadata": {"name": "t"},
            "cluster": {"nodes": 1, "cni": {"plugin": "flannel-vxlan"},
                        "dns": {"enabled": False}},
            "workloads": list(workloads)}


def services(*workloads):
    return {s.name: s for s in parse_scenario(scenario(*workloads)).services}


def test_what_kubectl_get_prints_loads_without_a_word():
    doc = yaml.safe_load((DATA / "kubectl-get.yaml").read_text())
    parsed = parse_manifest(doc, "kubectl-get.yaml")
    assert parsed.problems == []
    assert [w for w in parsed.warnings if "metadata" in w.where or "status" in w.where] == []
    (svc,) = parsed.services
    assert svc.cluster_ip == "10.96.120.7" and [p.name for p in parsed.pods] == [
        "nginx-deployment-0", "nginx-deployment-1", "nginx-deployment-2"]


def test_one_service_port_over_tcp_and_udp_gets_one_node_port():
    """alloc.go initNodePorts: ports with the same `port` share a node port."""
    dns = service("dns", type="NodePort", ports=[
        {"name": "dns", "port": 53, "protocol": "UDP"},
        {"name": "dns-tcp", "port": 53, "protocol": "TCP"},
        {"name": "metrics", "port": 9153}])
    ports = services(dns)["dns"].ports
    assert ports[0].node_port == ports[1].node_port != ports[2].node_port


def test_a_node_port_number_is_taken_for_every_protocol():
    """portallocator: one bitmap over port numbers; the second is "already allocated"."""
    with pytest.raises(ScenarioError) as err:
        parse_scenario(scenario(
            service("a", type="NodePort", ports=[{"port": 53, "protocol": "UDP",
                                                  "nodePort": 30053}]),
            service("b", type="NodePort", ports=[{"port": 53, "nodePort": 30053}])))
    assert [p.what for p in err.value.problems] == [
        "spec.ports[0].nodePort: 30053: provided port is already allocated"]


def test_load_balancers_without_node_ports_and_with_health_check_node_ports():
    """allocateLoadBalancerNodePorts false: no node port unless asked for; LoadBalancer +
    Local: a healthCheckNodePort from the same range (alloc.go allocHealthCheckNodePort)."""
    out = services(
        service("plain", type="LoadBalancer", allocateLoadBalancerNodePorts=False),
        service("local", type="LoadBalancer", externalTrafficPolicy="Local"),
        service("given", type="LoadBalancer", externalTrafficPolicy="Local",
                healthCheckNodePort=31000))
    assert out["plain"].ports[0].node_port == 0 and out["plain"].health_check_node_port == 0
    assert out["local"].health_check_node_port not in (0, out["local"].ports[0].node_port)
    assert out["given"].health_check_node_port == 31000


@pytest.mark.parametrize("preset, warned", [("aws-nlb", "fails open"), ("custom", "drops"),
                                            ("gce", None)])
def test_a_udp_load_balancer_checked_by_tcp_on_its_node_port_is_said(preset, warned):
    """A TCP check of a UDP node port finds nothing listening: every node unhealthy. Said
    before building, with what the load balancer then does."""
    doc = scenario(service("dns", type="LoadBalancer",
                           ports=[{"port": 53, "protocol": "UDP"}]))
    doc["external"] = {"loadBalancer": {"preset": preset}}
    warnings = [p.what for p in parse_scenario(doc).warnings if "UDP" in p.what]
    if warned:
        assert len(warnings) == 1 and warned in warnings[0]
    else:
        assert warnings == []


@pytest.mark.parametrize("spec, message", [
    ({"type": "ExternalName", "externalName": "api.payments.example."}, None),
    ({"type": "ExternalName", "externalName": "Api.Payments"},
     "doc.spec.externalName: an ExternalName service needs a DNS name"),
    ({"externalIPs": ["39.2.2.2"], "externalTrafficPolicy": "Local"}, None),
    ({"externalTrafficPolicy": "Local"},
     "doc.spec.externalTrafficPolicy: may only be set for externally-accessible services"),
    ({"type": "NodePort", "healthCheckNodePort": 31000},
     "doc.spec.healthCheckNodePort: may only be set when `type` is 'LoadBalancer'"),
    ({"clusterIP": "10.96.0.9", "clusterIPs": ["10.96.0.9"], "ipFamilies": ["IPv4"],
      "ipFamilyPolicy": "PreferDualStack"}, None),
    ({"clusterIP": "10.96.0.9", "clusterIPs": ["10.96.0.8"]},
     "doc.spec.clusterIPs: first value must match `clusterIP`"),
    ({"clusterIP": "10.96.0.9", "clusterIPs": ["10.96.0.9", "fd00::9"]},
     "doc.spec.clusterIPs: this cluster is IPv4 single-stack"),
    ({"ipFamilyPolicy": "RequireDualStack"},
     "doc.spec.ipFamilyPolicy: this cluster is not configured for dual-stack services"),
    ({"ipFamilies": ["IPv6"]}, "doc.spec.ipFamilies[0]: IPv6 is not configured on this cluster"),
    ({"clusterIP": "10.96.x"}, "doc.spec.clusterIP: must be a valid IPv4 address or None"),
    ({"type": "NodePort", "clusterIP": "None"},
     "doc.spec.clusterIP: may not be set to 'None' for NodePort services"),
    ({"loadBalancerClass": "example.com/lb"},
     "doc.spec.loadBalancerClass: may only be used when `type` is 'LoadBalancer'"),
    ({"type": "LoadBalancer", "loadBalancerSourceRanges": ["10.0.0.0/33"]},
     "doc.spec.loadBalancerSourceRanges[0]: not an IPv4 CIDR"),
    ({"ports": [{"port": 80}, {"port": 80, "name": "b"}]}, "doc.spec.ports[0].name"),
    ({"ports": [{"name": "a", "port": 80}, {"name": "b", "port": 80}]},
     "doc.spec.ports[1]: duplicate port 80/TCP"),
    ({"ports": [{"port": 80, "nodePort": 30080}]},
     "doc.spec.ports[0].nodePort: may not be used when `type` is 'ClusterIP'"),
    ({"externalIPs": ["127.0.0.1"]}, "doc.spec.externalIPs[0]: may not be a special address"),
    ({"sessionAffinityConfig": {"clientIP": {"timeoutSeconds": 60}}},
     "doc.spec.sessionAffinityConfig: must not be set when `sessionAffinity` is None"),
])
def test_service_checks_as_the_api_server(spec, message):
    found = errors(service(**spec))
    if message is None:
        assert found == []
    else:
        assert any(e.startswith(message) for e in found), found


def test_a_service_name_starts_with_a_letter():
    assert any(e.startswith("doc.metadata.name: a Service's name must start with a letter")
               for e in errors(service("9lives")))
