"""The EndpointSlice controller's slices and what their readers make of them
(pkg/controller/endpointslice; discovery.k8s.io/v1 conditions)."""

from dataclasses import replace

from kemu.k8s.endpoints import Endpoint
from kemu.k8s.endpointslices import controller_slices, endpoint_map
from kemu.k8s.store import PodStatus
from kemu.scenario.objects import Container, ContainerPort, PodSpec, Service, ServicePort

WEB = Service("web", selector={"app": "web"}, ports=(ServicePort(80, "http", name="http"),))


def pod(name, ip, node="n1", number=8080, port_name="http", ready=True, terminating=False,
        namespace="default"):
    spec = PodSpec(name, namespace, {"app": "web"},
                   (Container("c", "kemu/http-echo",
                              ports=(ContainerPort(number, port_name),)),))
    return PodStatus(spec, ip, node, ready, terminating=terminating)


def test_every_selected_pod_is_an_endpoint_with_its_conditions():
    pods = [pod("a", "10.244.0.2"), pod("b", "10.244.0.3", ready=False),
            pod("c", "10.244.0.4", terminating=True),  # still answering while it goes
            pod("d", "10.244.0.5", ready=False, terminating=True),
            pod("e", "10.244.0.6", namespace="other"), pod("f", "")]  # no address yet
    (only,) = controller_slices(WEB, pods, {"n1": "zone-a"})
    assert only.service == "web" and only.ports == (("http", 8080, "TCP"),)
    conditions = [(e.ip, e.ready, e.serving, e.terminating, e.zone) for e in only.endpoints]
    assert conditions == [("10.244.0.2", True, True, False, "zone-a"),
                          ("10.244.0.3", False, False, False, "zone-a"),
                          ("10.244.0.4", False, True, True, "zone-a"),
                          ("10.244.0.5", False, False, True, "zone-a")]
    # publishNotReadyAddresses: ready, whatever the pod says.
    (published,) = controller_slices(replace(WEB, publish_not_ready=True), pods)
    assert all(e.ready for e in published.endpoints)


def test_pods_whose_ports_resolve_alike_share_slices_of_at_most_100():
    pods = [pod(f"p{i}", f"10.244.{i // 200}.{i % 200 + 2}") for i in range(230)]
    pods.append(pod("odd", "10.244.9.2", number=9090))  # its named port is another number
    slices = controller_slices(WEB, pods)
    assert sorted((s.ports[0][1], len(s.endpoints)) for s in slices) == \
        [(8080, 30), (8080, 100), (8080, 100), (9090, 1)]
    assert len({s.name for s in slices}) == 4 and all(s.name.startswith("web-") for s in slices)
    assert controller_slices(Service("x", ports=WEB.ports), pods) == []  # no selector


def test_readers_get_each_ports_endpoints():
    eps = endpoint_map([WEB], controller_slices(WEB, [pod("a", "10.244.0.2"),
                                                      pod("b", "10.244.1.2", "n2", 9090)]))
    assert eps[("default/web", "http")] == [
        Endpoint("default/a", "10.244.0.2", "n1", 8080),
        Endpoint("default/b", "10.244.1.2", "n2", 9090)]


def parse(doc):
    from kemu.scenario.manifests import parse_manifest

    parsed = parse_manifest(doc, "f.yaml", "doc")
    return parsed.slices, [str(p) for p in parsed.problems]


def test_a_selectorless_services_endpoints_come_from_manifests():
    # The Kubernetes documentation's "Services without selectors", both forms.
    (slice_,), problems = parse({
        "apiVersion": "discovery.k8s.io/v1", "kind": "EndpointSlice",
        "metadata": {"name": "my-service-1", "labels": {
            "kubernetes.io/service-name": "my-service"}},
        "addressType": "IPv4", "ports": [{"name": "", "appProtocol": "http", "protocol": "TCP",
                                          "port": 9376}],
        "endpoints": [{"addresses": ["10.4.5.6"]},
                      {"addresses": ["10.1.2.3"], "conditions": {"ready": False}}]})
    assert problems == []
    assert (slice_.service, slice_.ports) == ("my-service", (("", 9376, "TCP"),))
    # Conditions left out read as kube-proxy reads them: ready and serving unless false.
    assert [(e.ip, e.ready, e.serving) for e in slice_.endpoints] == \
        [("10.4.5.6", True, True), ("10.1.2.3", False, True)]
    (mirrored,), _ = parse({"apiVersion": "v1", "kind": "Endpoints",
                            "metadata": {"name": "my-service"},
                            "subsets": [{"addresses": [{"ip": "192.0.2.42"}],
                                         "ports": [{"port": 9376}]}]})
    assert mirrored.managed_by == "endpointslicemirroring-controller.k8s.io"
    service = Service("my-service", ports=(ServicePort(80, 9376),))
    assert endpoint_map([service], [mirrored])[("default/my-service", "")][0].ip == "192.0.2.42"
    _, problems = parse({"apiVersion": "v1", "kind": "Endpoints", "metadata": {"name": "x"},
                         "subsets": [{"addresses": [{"ip": "127.0.0.1"}]}]})
    assert problems == ["f.yaml: doc.subsets[0].addresses[0].ip: 127.0.0.1: may not be in the "
                        "loopback or link-local range"]


def test_the_kubernetes_service_has_the_chain_name_every_cluster_has():
    from kemu.k8s.kube_proxy.iptables import chain

    # default/kubernetes:https, tcp: the KUBE-SVC chain found on every kube-proxy node.
    assert chain("KUBE-SVC", "default/kubernetes:https", "tcp") == "KUBE-SVC-NPX46M4PTMTKRN6Y"
