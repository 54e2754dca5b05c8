"""Service manifests, allocation, endpoints, kube-proxy rules, iptables sync."""

import ipaddress
from pathlib import Path

import pytest

from kemu.k8s.endpoints import Endpoint
from kemu.k8s.kube_proxy import iptables as kube_proxy
from kemu.k8s.store import PodStatus
from kemu.kernel.iptables import declared_chains, with_stale_deleted
from kemu.scenario.addressing import allocate
from kemu.scenario.manifests import parse_manifest
from kemu.scenario.objects import Container, ContainerPort, PodSpec, Service, ServicePort

GOLDEN = Path(__file__).parents[2] / "golden" / "render"
CIDR = ipaddress.IPv4Network("10.96.0.0/12")


def svc_doc(**spec):
    return {"apiVersion": "v1", "kind": "Service", "metadata": {"name": "web"},
            "spec": {"selector": {"app": "web"}, "ports": [{"port": 80}], **spec}}


def errors(doc):
    return [str(p) for p in parse_manifest(doc, "f.yaml", "doc").problems]


def test_service_parses_with_kubernetes_defaults():
    (svc,) = parse_manifest(svc_doc()).services
    assert svc.type == "ClusterIP" and svc.ports == (ServicePort(80, 80, "TCP", "", 0),)
    assert svc.session_affinity == "None" and svc.external_traffic_policy == "Cluster"


@pytest.mark.parametrize("spec, message", [
    ({"ports": [{"port": 80, "nodePort": 30001}]},
     "doc.spec.ports[0].nodePort: may not be used when `type` is 'ClusterIP'"),
    ({"type": "NodePort", "ports": [{"port": 80, "nodePort": 80}]},
     "doc.spec.ports[0].nodePort: must be a whole number 30000..32767, got 80"),
    ({"type": "NodePort", "clusterIP": "None"},
     "doc.spec.clusterIP: may not be set to 'None' for NodePort services"),
    ({"type": "ExternalName", "ports": []}, "doc.spec.externalName: an ExternalName service "
                                            "needs a DNS name"),
    ({"ports": [{"port": 80}, {"port": 81}]},
     "doc.spec.ports[0].name: a service with several ports must name each"),
    ({"internalTrafficPolicy": "Nearby"},
     "doc.spec.internalTrafficPolicy: must be Cluster or Local"),
    ({"externalTrafficPolicy": "Local"},
     "doc.spec.externalTrafficPolicy: may only be set for externally-accessible services"),
    ({"sessionAffinity": "Cookie"}, "doc.spec.sessionAffinity: must be None or ClientIP"),
    ({"ports": [{"port": 80, "protocol": "SCTP"}]}, "doc.spec.ports[0].protocol: must be TCP"),
    ({"ports": [{"port": 80, "targetPort": "Not_A_Name"}]}, "doc.spec.ports[0].targetPort"),
    ({"loadBalancerSourceRangez": []}, "doc.spec.loadBalancerSourceRangez: unknown field"),
])
def test_service_errors_name_the_document_and_field(spec, message):
    assert any(e.startswith(f"f.yaml: {message}") for e in errors(svc_doc(**spec))), \
        errors(svc_doc(**spec))


def test_policy_errors():
    doc = {"apiVersion": "networking.k8s.io/v1", "kind": "NetworkPolicy",
           "metadata": {"name": "p"},
           "spec": {"podSelector": {"matchExpressions": []},
                    "ingress": [{"from": [{"ipBlock": {"cidr": "10.0.0.0/8"},
                                           "podSelector": {}}]}]}}
    found = errors(doc)
    assert any("doc.spec.podSelector.matchExpressions: unknown field" in e for e in found)
    assert any("doc.spec.ingress[0].from[0]: ipBlock cannot be combined" in e for e in found)


def test_policy_types_default_like_kubernetes():
    doc = {"apiVersion": "networking.k8s.io/v1", "kind": "NetworkPolicy",
           "metadata": {"name": "p"}, "spec": {"podSelector": {}, "egress": [{}]}}
    (policy,) = parse_manifest(doc).policies
    assert policy.policy_types == ("Ingress", "Egress") and policy.egress[0].peers == ()
    # SetDefaults_NetworkPolicy: an empty egress list, or an empty policyTypes, is Ingress only.
    doc["spec"]["egress"] = []
    assert parse_manifest(doc).policies[0].policy_types == ("Ingress",)
    doc["spec"]["policyTypes"] = []
    assert parse_manifest(doc).policies[0].policy_types == ("Ingress",)


def test_readiness_probe():
    pod = {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "p"},
           "spec": {"containers": [{"name": "c", "image": "kemu/http-echo",
                                    "readinessProbe": {"httpGet": {"port": "http",
                                                                   "path": "/ok"},
                                                       "periodSeconds": 2}}]}}
    (parsed,) = parse_manifest(pod).pods
    probe = parsed.containers[0].readiness
    assert (probe.kind, probe.port, probe.path, probe.period_s) == ("httpGet", "http", "/ok", 2)
    pod["spec"]["containers"][0]["readinessProbe"] = {"grpc": {"port": 1}}
    assert any("give exactly one of tcpSocket, httpGet, exec" in e for e in errors(pod))


def test_allocation_is_deterministic_and_checks_clashes():
    services = [Service("a"), Service("b", cluster_ip="10.96.0.2"),
                Service("c", type="NodePort", ports=(ServicePort(80, 80),)),
                Service("h", cluster_ip="None"), Service("x", type="ExternalName")]
    out, problems = allocate(services, CIDR)
    assert problems == []
    assert [s.cluster_ip for s in out] == ["10.96.0.3", "10.96.0.2", "10.96.0.4", "None", ""]
    assert out[2].ports[0].node_port == 30000
    _, problems = allocate([Service("a", cluster_ip="10.96.0.1"),
                            Service("b", cluster_ip="10.1.0.1")], CIDR)
    assert [p for _, p in problems] == [  # upstream's allocator messages (alloc.go)
        "spec.clusterIPs[0]: failed to allocate IP 10.96.0.1: provided IP is already allocated",
        "spec.clusterIPs[0]: failed to allocate IP 10.1.0.1: provided IP is not in the valid "
        "range. The range of valid IPs is 10.96.0.0/12"]
    two = [Service(n, type="NodePort", ports=(ServicePort(80, 80, node_port=30007),))
           for n in "ab"]
    assert allocate(two, CIDR)[1] == [
        ("default/b", "spec.ports[0].nodePort: 30007: provided port is already allocated")]


def pod(name, ip, node, port_name="http", number=8080, ready=True, namespace="default"):
    spec = PodSpec(name, namespace, {"app": "web"},
                   (Container("c", "kemu/http-echo", ports=(ContainerPort(number, port_name),)),))
    return PodStatus(spec, ip, node, ready)


SERVICES = [
    Service("web", cluster_ip="10.96.0.2", selector={"app": "web"}, type="NodePort",
            ports=(ServicePort(80, "http", name="http", node_port=30080),),
            external_ips=("39.2.2.2",)),
    Service("sticky", cluster_ip="10.96.0.3", selector={"app": "web"},
            session_affinity="ClientIP", ports=(ServicePort(80, 8080, name="http"),)),
    Service("local", cluster_ip="10.96.0.4", selector={"app": "web"}, type="NodePort",
            external_traffic_policy="Local",
            ports=(ServicePort(80, 8080, name="http", node_port=30081),)),
    Service("empty", cluster_ip="10.96.0.5", selector={"app": "none"},
            ports=(ServicePort(53, 53, "UDP", "dns"),)),
]
EPS = [Endpoint("default/a", "10.244.0.2", "node1", 8080),
       Endpoint("default/b", "10.244.1.2", "node2", 8080),
       Endpoint("default/c", "10.244.2.2", "node3", 8080)]
ENDPOINTS = {("default/web", "http"): EPS, ("default/sticky", "http"): EPS,
             ("default/local", "http"): EPS[1:]}


def render(node="node1"):
    return kube_proxy.render(node, "10.0.0.1", "10.244.0.0/16", SERVICES, ENDPOINTS)


def test_kube_proxy_rules_match_golden(golden):
    golden(GOLDEN / "kube-proxy-small.rules", render())


def test_local_policy_and_empty_services():
    node1, node2 = render("node1"), render("node2")
    local = kube_proxy.chain("KUBE-SVL", "default/local:http", "tcp")
    assert f"-A {local} " not in node1  # no local endpoint on node1 ...
    assert "default/local:http has no local endpoints" in node1  # ... dropped in filter
    assert f"-A {local} -m comment --comment \"default/local:http -> 10.244.1.2:8080\"" in node2
    assert "-A KUBE-SERVICES -m comment --comment \"default/empty:dns has no endpoints\" " \
           "-m udp -p udp -d 10.96.0.5 --dport 53 -j REJECT" in node1


def test_stale_chains_are_deleted_in_the_same_transaction():
    before = render()
    after = kube_proxy.render("node1", "10.0.0.1", "10.244.0.0/16", SERVICES,
                              {**ENDPOINTS, ("default/web", "http"): EPS[:1]})
    gone = declared_chains(before)["nat"] - declared_chains(after)["nat"]
    assert len(gone) == 2  # two KUBE-SEP chains
    text = with_stale_deleted(after, declared_chains(before))
    for name in gone:
        assert f"-X {name}" in text
    assert text.index("-X ") < text.rindex("COMMIT")

