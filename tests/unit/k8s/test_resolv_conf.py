"""A pod's resolv.conf from its dnsPolicy and dnsConfig, as kubelet makes it
(pkg/kubelet/network/dns/dns.go), and the API server's checks of those fields."""

from kemu.k8s.resolv_conf import resolv_conf
from kemu.scenario.manifests import parse_manifest
from kemu.scenario.model import DNSConfig
from kemu.scenario.objects import PodDNSConfig, PodSpec

DNS = DNSConfig(True, "10.96.0.10", "cluster.local")


def lines(pod, dns=DNS):
    return resolv_conf(pod, dns).splitlines()[1:]  # after kemu's comment


def test_cluster_first_is_the_default():
    assert lines(PodSpec("p", "shop")) == [
        "search shop.svc.cluster.local svc.cluster.local cluster.local",
        "nameserver 10.96.0.10", "options ndots:5"]


def test_dns_config_is_merged_into_the_policys():
    config = PodDNSConfig(("1.2.3.4", "10.96.0.10"), ("my.dns.search.suffix",),
                          (("ndots", "2"), ("edns0", None)))
    assert lines(PodSpec("p", "shop", dns_config=config)) == [
        "search shop.svc.cluster.local svc.cluster.local cluster.local my.dns.search.suffix",
        "nameserver 10.96.0.10", "nameserver 1.2.3.4", "options ndots:2 edns0"]


def test_none_takes_only_the_dns_config_and_default_the_nodes():
    # The Kubernetes documentation's example (Pod's DNS Config): dnsPolicy None.
    config = PodDNSConfig(("192.0.2.1",), ("ns1.svc.cluster-domain.example",),
                          (("ndots", "2"),))
    assert lines(PodSpec("p", dns_policy="None", dns_config=config)) == [
        "search ns1.svc.cluster-domain.example", "nameserver 192.0.2.1", "options ndots:2"]
    assert lines(PodSpec("p", dns_policy="Default")) == []  # kemu's nodes have no resolver
    # Without cluster DNS, ClusterFirst falls back to Default.
    assert lines(PodSpec("p"), DNSConfig(enabled=False)) == []


def errors(spec):
    doc = {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "p"},
           "spec": {"containers": [{"name": "c", "image": "nginx"}], **spec}}
    return [str(p) for p in parse_manifest(doc, "f.yaml", "doc").problems]


def test_dns_fields_are_checked_as_the_api_server_does():
    assert errors({"dnsPolicy": "None"}) == [
        "f.yaml: doc.spec.dnsConfig: must provide at least one DNS nameserver when dnsPolicy "
        "is set to None"]
    assert errors({"dnsPolicy": "Cluster"})[0].startswith(
        "f.yaml: doc.spec.dnsPolicy: Unsupported value: 'Cluster'")
    assert "more than 3 nameservers" in errors(
        {"dnsConfig": {"nameservers": ["1.1.1.1", "1.1.1.2", "1.1.1.3", "1.1.1.4"]}})[0]
    assert errors({"hostNetwork": True})[0].startswith("f.yaml: doc.spec.hostNetwork: not "
                                                       "supported")
    assert errors({"hostNetwork": False, "dnsPolicy": "ClusterFirstWithHostNet"}) == []
