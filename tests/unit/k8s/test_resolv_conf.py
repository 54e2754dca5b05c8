"""A pod's resolv.conf from its dnsPolicy and dnsConfig, as kubelet makes it
(pkg/kubelet/network/dns/dns.go), its /etc/hosts (pkg/kubelet/kubelet_pods.go), and the API
server's checks of those fields."""

from kemu.k8s.hosts_file import hosts_file
from kemu.k8s.resolv_conf import resolv_conf
from kemu.scenario.manifests import parse_manifest
from kemu.scenario.model import DNSConfig, UpstreamDNS
from kemu.scenario.objects import PodDNSConfig, PodSpec

NODE_RESOLVER = UpstreamDNS("172.18.0.1")
DNS = DNSConfig(True, "10.96.0.10", "cluster.local", upstream=NODE_RESOLVER)


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
    # Default: the node's resolver (kemu's: the underlay's first address).
    assert lines(PodSpec("p", dns_policy="Default")) == ["nameserver 172.18.0.1"]
    # Without cluster DNS, ClusterFirst falls back to Default.
    assert lines(PodSpec("p"), DNSConfig(enabled=False, upstream=NODE_RESOLVER)) == [
        "nameserver 172.18.0.1"]


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
    assert errors({"hostname": "Web_1", "subdomain": "ok"}) == [
        "f.yaml: doc.spec.hostname: a lowercase RFC 1123 label must consist of lower case "
        "alphanumeric characters or '-', and must start and end with an alphanumeric "
        "character, got 'Web_1'"]
    assert errors({"hostAliases": [{"ip": "nope", "hostnames": ["a"]}]})[0].startswith(
        "f.yaml: doc.spec.hostAliases[0].ip:")


def test_hosts_file_as_kubelet_writes_it():
    pod = PodSpec("web-0", "shop", hostname="db-0", subdomain="db",
                  host_aliases=(("10.1.2.3", ("foo.local", "bar.local")),))
    text = hosts_file(pod, "10.244.1.5", "cluster.local")
    assert text.startswith("# Kubernetes-managed hosts file.\n127.0.0.1\tlocalhost\n")
    assert "10.244.1.5\tdb-0.db.shop.svc.cluster.local\tdb-0\n" in text
    assert text.endswith("# Entries added by HostAliases.\n10.1.2.3\tfoo.local\tbar.local\n")
    assert "10.244.1.6\tweb-1\n" in hosts_file(PodSpec("web-1"), "10.244.1.6", "cluster.local")
    # The machine's name, which kemu's pods get from gethostname(), resolves from files too.
    assert "10.244.1.6\tweb-1\tvm\n" in hosts_file(PodSpec("web-1"), "10.244.1.6",
                                                    "cluster.local", "vm")
