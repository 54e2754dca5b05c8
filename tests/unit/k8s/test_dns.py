"""Cluster DNS as kubeadm's CoreDNS answers (its Corefile: kubernetes with `pods insecure` and
`ttl 30`, forward, cache 30, loadbalance), and the outside resolver CoreDNS forwards to.
Expected answers follow coredns/coredns plugin/kubernetes (records, reverse), plugin/
backend_lookup.go (SOA), plugin/cache and plugin/loadbalance."""

from pathlib import Path

from dnslib import QTYPE, RCODE, DNSRecord

from kemu.edge.upstream_dns import UpstreamResolver
from kemu.images.cluster_dns import ClusterResolver, Zone
from kemu.k8s import dns
from kemu.k8s.endpoints import Endpoint
from kemu.k8s.store import PodStatus
from kemu.scenario.objects import Container, ContainerPort, PodSpec, Service, ServicePort

EPS = [Endpoint("default/a", "10.244.0.2", "node1", 8080),
       Endpoint("default/b", "10.244.1.2", "node2", 8080),
       Endpoint("default/c", "10.244.2.2", "node3", 8080)]
WEB = Service("web", cluster_ip="10.96.0.2", selector={"app": "web"},
              ports=(ServicePort(80, "http", name="http"),))
HEADLESS = Service("pods", cluster_ip="None", selector={"app": "web"},
                   ports=(ServicePort(8080, 8080, name="http"),))
EXTERNAL = Service("db", type="ExternalName", external_name="db.example.com")


def pod(name, ip, hostname="", subdomain=""):
    spec = PodSpec(name, "default", {"app": "web"},
                   (Container("c", "kemu/http-echo", ports=(ContainerPort(8080, "http"),)),),
                   hostname=hostname, subdomain=subdomain)
    return PodStatus(spec, ip, "node1", True)


def records():
    eps = {("default/web", "http"): EPS[:2], ("default/pods", "http"): EPS}
    pods = [pod("a", "10.244.0.2"), pod("b", "10.244.1.2", "db-1", "pods"),
            pod("c", "10.244.2.2", "other", "elsewhere")]
    return dns.records([WEB, HEADLESS, EXTERNAL], eps, pods, namespaces=["default", "shop"])


def test_records():
    data = records()
    a, srv = data["A"], data["SRV"]
    assert a["web.default.svc.cluster.local."] == ["10.96.0.2"]
    assert a["pods.default.svc.cluster.local."] == ["10.244.0.2", "10.244.1.2", "10.244.2.2"]
    assert a["10-244-0-2.pods.default.svc.cluster.local."] == ["10.244.0.2"]
    # A pod whose subdomain is the headless Service is named by its hostname; one whose
    # subdomain is another name keeps the dashed IP.
    assert a["db-1.pods.default.svc.cluster.local."] == ["10.244.1.2"]
    assert "10-244-1-2.pods.default.svc.cluster.local." not in a
    assert a["10-244-2-2.pods.default.svc.cluster.local."] == ["10.244.2.2"]
    assert srv["_http._tcp.web.default.svc.cluster.local."] == [
        [0, 100, 80, "web.default.svc.cluster.local."]]
    assert srv["_http._tcp.pods.default.svc.cluster.local."][1][2:] == [
        8080, "db-1.pods.default.svc.cluster.local."]
    assert data["CNAME"] == {"db.default.svc.cluster.local.": "db.example.com."}
    # Reverse: a ClusterIP names its Service; an endpoint its endpoint name.
    assert data["PTR"]["2.0.96.10.in-addr.arpa."] == "web.default.svc.cluster.local."
    assert data["PTR"]["2.1.244.10.in-addr.arpa."] == "db-1.pods.default.svc.cluster.local."
    assert data["namespaces"] == ["default", "shop"]


class Upstream:
    """The forward plugin's upstream, answering from a table and counting queries."""

    def __init__(self, table=None):
        self.table, self.asked = table or {}, []

    def __call__(self, request):
        name = str(request.q.qname)
        self.asked.append(name)
        if name not in self.table:
            return None
        return UpstreamResolver(self.table).resolve(request, None)


class Clock:
    now = 1000.0

    def __call__(self):
        return self.now


def server(upstream=None, clock=None):
    zone = Zone(Path("/nonexistent/records.json"))
    zone.data = {**records(), "ttl": 30, "cache": 30}
    return ClusterResolver(zone, upstream or Upstream(), clock or Clock())


def ask(resolver, name, qtype="A"):
    return resolver.resolve(DNSRecord.question(name, qtype), None)


def addresses(reply):
    return sorted(str(rr.rdata) for rr in reply.rr if rr.rtype == QTYPE.A)


def test_a_service_answers_authoritatively_with_ttl_30():
    reply = ask(server(), "web.default.svc.cluster.local")
    assert addresses(reply) == ["10.96.0.2"]
    assert reply.header.aa == 1 and [rr.ttl for rr in reply.rr] == [30]


def test_aaaa_of_an_ipv4_name_is_nodata_with_the_zones_soa():
    reply = ask(server(), "web.default.svc.cluster.local", "AAAA")
    assert reply.header.rcode == RCODE.NOERROR and not reply.rr
    (soa,) = reply.auth
    assert (str(soa.rname), str(soa.rdata.mname), str(soa.rdata.rname)) == \
        ("cluster.local.", "ns.dns.cluster.local.", "hostmaster.cluster.local.")
    assert soa.rdata.times[1:] == (7200, 1800, 86400, 30)


def test_a_missing_name_is_nxdomain_with_the_soa():
    reply = ask(server(), "nope.default.svc.cluster.local")
    assert reply.header.rcode == RCODE.NXDOMAIN and reply.auth[0].rtype == QTYPE.SOA


def test_pods_insecure_answers_any_address_in_a_namespace_that_exists():
    assert addresses(ask(server(), "10-1-2-3.shop.pod.cluster.local")) == ["10.1.2.3"]
    assert ask(server(), "10-1-2-3.nowhere.pod.cluster.local").header.rcode == RCODE.NXDOMAIN
    assert ask(server(), "10-1-2-300.shop.pod.cluster.local").header.rcode == RCODE.NXDOMAIN


def test_ptr_for_cluster_addresses_and_fallthrough_for_the_rest():
    upstream = Upstream()
    resolver = server(upstream)
    reply = ask(resolver, "2.0.96.10.in-addr.arpa", "PTR")
    assert [str(rr.rdata) for rr in reply.rr] == ["web.default.svc.cluster.local."]
    reply = ask(resolver, "9.9.168.192.in-addr.arpa", "PTR")
    assert upstream.asked == ["9.9.168.192.in-addr.arpa."]
    assert reply.header.rcode == RCODE.SERVFAIL  # this upstream does not answer


def test_outside_names_are_forwarded():
    upstream = Upstream({"api.example.com.": ["192.168.100.10"]})
    assert addresses(ask(server(upstream), "api.example.com")) == ["192.168.100.10"]
    assert ask(server(upstream), "missing.example.com").header.rcode == RCODE.SERVFAIL


def test_an_external_name_is_a_cname_followed_to_its_addresses():
    upstream = Upstream({"db.example.com.": ["192.168.100.11"]})
    reply = ask(server(upstream), "db.default.svc.cluster.local")
    assert [QTYPE[rr.rtype] for rr in reply.rr] == ["CNAME", "A"]
    assert str(reply.rr[1].rdata) == "192.168.100.11"
    cname_only = ask(server(upstream), "db.default.svc.cluster.local", "CNAME")
    assert [QTYPE[rr.rtype] for rr in cname_only.rr] == ["CNAME"]


def test_the_cache_keeps_an_outside_answer_for_30_s_with_its_ttl_counting_down():
    clock = Clock()
    upstream = Upstream({"api.example.com.": ["192.168.100.10"]})  # TTL 300: capped to 30
    resolver = server(upstream, clock)
    assert ask(resolver, "api.example.com").rr[0].ttl == 30
    upstream.table["api.example.com."] = ["192.168.100.99"]
    clock.now += 12.7
    reply = ask(resolver, "api.example.com")
    # Stale, as CoreDNS serves it: the original TTL less the whole seconds passed.
    assert addresses(reply) == ["192.168.100.10"] and reply.rr[0].ttl == 18
    clock.now += 17.3
    assert addresses(ask(resolver, "api.example.com")) == ["192.168.100.99"]
    assert upstream.asked == ["api.example.com.", "api.example.com."]


def test_cluster_names_are_not_cached():
    """kubeadm's Corefile (since 1.32): `cache 30 { disable success cluster.local; disable
    denial cluster.local }` (cmd/kubeadm/app/phases/addons/dns/manifests.go)."""
    clock = Clock()
    resolver = server(clock=clock)
    assert ask(resolver, "new.default.svc.cluster.local").header.rcode == RCODE.NXDOMAIN
    resolver.zone.data["A"]["new.default.svc.cluster.local."] = ["10.96.0.7"]
    clock.now += 1
    reply = ask(resolver, "new.default.svc.cluster.local")
    assert addresses(reply) == ["10.96.0.7"] and reply.rr[0].ttl == 30


def test_outside_denials_are_cached_too():
    clock = Clock()
    outside = UpstreamResolver({})  # NXDOMAIN for everything, with the root's SOA
    asked = []
    resolver = ClusterResolver(server().zone,
                               lambda r: asked.append(r) or outside.resolve(r, None), clock)
    assert ask(resolver, "nobody.example").header.rcode == RCODE.NXDOMAIN
    clock.now += 29
    reply = ask(resolver, "nobody.example")
    assert reply.header.rcode == RCODE.NXDOMAIN and len(asked) == 1
    assert reply.auth[0].ttl == 1  # the root's 86400 capped at 30 by `cache 30`, less 29 s


def test_loadbalance_rotates_address_records():
    resolver = server()
    orders = {tuple(str(rr.rdata) for rr in ask(resolver, "pods.default.svc.cluster.local").rr)
              for _ in range(60)}
    assert len(orders) > 1 and all(len(order) == 3 for order in orders)


def test_the_outside_resolver():
    resolver = UpstreamResolver({"db.example.com.": ["192.168.100.11"]})
    assert addresses(ask(resolver, "DB.example.com")) == ["192.168.100.11"]
    assert ask(resolver, "db.example.com", "AAAA").header.rcode == RCODE.NOERROR
    assert ask(resolver, "nobody.example").header.rcode == RCODE.NXDOMAIN
    failing = UpstreamResolver({}, failure_rate=0.5, failure_mode="servfail", draw=lambda: 0.2)
    assert ask(failing, "db.example.com").header.rcode == RCODE.SERVFAIL
