"""Cluster DNS end to end, as kubeadm's CoreDNS answers a pod (Corefile: kubernetes with
`pods insecure` and `ttl 30`, forward to the node's resolver, cache 30, loadbalance; coredns/
coredns plugin/kubernetes README), through the pod's own resolv.conf, hosts and nsswitch.conf,
and the node's resolver in the outside world."""

import subprocess
import sys
import time

import pytest

from kemu.kernel import doctor
from kemu.registry import backends as available_backends

from .helpers import in_pod, pod, running_cluster, scenario_doc

pytestmark = [
    pytest.mark.integration,
    pytest.mark.skipif(not doctor._ovs_running().ok, reason="Open vSwitch is not running"),
]

UPSTREAM_LATENCY_MS = 40
WORKLOADS = [
    pod("client"),
    pod("plain", dnsPolicy="Default"),
    # A pod named by the headless Service of its subdomain (the docs' hostname/subdomain
    # example), and a second member of it.
    {**pod("db-a", hostname="db-0", subdomain="db"),
     "metadata": {"name": "db-a", "labels": {"app": "db"}}},
    {**pod("db-b"), "metadata": {"name": "db-b", "labels": {"app": "db"}}},
    {"apiVersion": "v1", "kind": "Service", "metadata": {"name": "db"},
     "spec": {"clusterIP": "None", "selector": {"app": "db"},
              "ports": [{"name": "http", "port": 8080}]}},
    {"apiVersion": "v1", "kind": "Service", "metadata": {"name": "web"},
     "spec": {"selector": {"app": "client"}, "ports": [{"name": "http", "port": 80,
                                                        "targetPort": 8080}]}},
    # An outside service by name, trailing dot and all.
    {"apiVersion": "v1", "kind": "Service", "metadata": {"name": "payments"},
     "spec": {"type": "ExternalName", "externalName": "api.payments.example."}},
]


@pytest.fixture(scope="module", params=sorted(available_backends()))
def cluster(request):
    doc = scenario_doc(WORKLOADS, nodes=2, cni=request.param)
    doc["cluster"]["dns"] = {"upstream": {"records": {"api.payments.example": "server",
                                                      "timed.example.com": "server"},
                                          "latency": f"{UPSTREAM_LATENCY_MS}ms"}}
    doc["external"] = {"hosts": [{"name": "server", "image": "kemu/http-echo", "port": 8080}]}
    with running_cluster(doc) as running:
        yield running


def query(cluster, name, qtype="A", client="client", server=None):
    """One query from a pod with dnslib: (rcode, [(type, ttl, data)], seconds)."""
    code = ("import sys, time; from dnslib import DNSRecord; t = time.monotonic(); "
            "r = DNSRecord.parse(DNSRecord.question(sys.argv[1], sys.argv[2]).send(sys.argv[3], "
            "53, timeout=5)); print(r.header.rcode, time.monotonic() - t); "
            "[print(rr.rtype, rr.ttl, rr.rdata) for rr in r.rr]")
    out = in_pod(cluster, client, sys.executable, "-c", code, name, qtype,
                 server or cluster.scenario.dns.cluster_ip)
    assert out.returncode == 0, out.stderr
    head, *answers = out.stdout.splitlines()
    rcode, seconds = head.split()
    return int(rcode), [tuple(a.split(" ", 2)) for a in answers], float(seconds)


def getent(cluster, name, client="client"):
    out = in_pod(cluster, client, "getent", "ahostsv4", name)
    return sorted({line.split()[0] for line in out.stdout.splitlines()})


def external_ip(cluster):
    return cluster.scenario.external.host_addresses()["server"]


def test_outside_names_resolve_through_the_nodes_resolver(cluster):
    assert getent(cluster, "server.example.com") == [external_ip(cluster)]
    out = in_pod(cluster, "client", "curl", "-sS", "--max-time", "5",
                 "http://server.example.com:8080/")
    assert '"pod": "server"' in out.stdout, out.stderr


def test_a_name_nobody_serves_is_nxdomain_not_refused(cluster):
    assert query(cluster, "nobody.invalid-name.example")[0] == 3


def test_forwarding_pays_the_upstreams_latency_once_then_the_cache_answers(cluster):
    *_, first = query(cluster, "timed.example.com")  # asked by no other test
    *_, again = query(cluster, "timed.example.com")
    assert first >= UPSTREAM_LATENCY_MS / 1000
    assert again < UPSTREAM_LATENCY_MS / 1000


def test_an_external_name_follows_its_cname_outside(cluster):
    assert getent(cluster, "payments") == [external_ip(cluster)]
    _, answers, _ = query(cluster, "payments.default.svc.cluster.local")
    assert [a[0] for a in answers] == ["5", "1"]  # CNAME, then A


def test_ttl_30_and_only_outside_answers_cached(cluster):
    # kubeadm's Corefile: cluster names uncached (TTL 30 every time), forwarded ones cached.
    for _ in range(2):
        _, [(_, ttl, _)], _ = query(cluster, "web.default.svc.cluster.local")
        assert ttl == "30"
    _, [(_, first, _)], _ = query(cluster, "server.example.com")
    time.sleep(2.1)
    _, [(_, later, _)], _ = query(cluster, "server.example.com")
    assert int(first) <= 30 and int(later) <= int(first) - 2


def test_aaaa_of_a_service_is_nodata(cluster):
    rcode, answers, _ = query(cluster, "web.default.svc.cluster.local", "AAAA")
    assert (rcode, answers) == (0, [])


def test_reverse_lookup_of_a_cluster_ip(cluster):
    ip = next(s.cluster_ip for s in cluster.scenario.services if s.name == "web")
    out = in_pod(cluster, "client", "getent", "hosts", ip)
    assert "web.default.svc.cluster.local" in out.stdout


def test_pod_names_and_hostname_subdomain(cluster):
    ip = cluster.pods["default/db-a"].ip
    assert getent(cluster, f"{ip.replace('.', '-')}.default.pod.cluster.local") == [ip]
    assert getent(cluster, "db-0.db") == [ip]  # via the search path
    # The pod's own name comes from its /etc/hosts, kubelet's.
    assert getent(cluster, "db-0", client="db-a") == [ip]


def test_address_records_rotate(cluster):
    orders = {tuple(a[2] for a in query(cluster, "db.default.svc.cluster.local")[1])
              for _ in range(12)}
    assert len(orders) == 2  # two pods, both orders (cached or not: loadbalance is after)


def test_lookups_follow_the_pods_own_name_service_order(cluster):
    out = in_pod(cluster, "client", "cat", "/etc/nsswitch.conf").stdout
    assert "\nhosts: files dns\n" in out
    assert "Kubernetes-managed hosts file" in in_pod(cluster, "client", "cat", "/etc/hosts").stdout


def test_dns_policy_default_asks_the_nodes_resolver(cluster):
    resolver = cluster.scenario.dns.upstream.ip
    out = in_pod(cluster, "plain", "cat", "/etc/resolv.conf").stdout
    assert f"nameserver {resolver}" in out and "search" not in out
    assert getent(cluster, "server.example.com", client="plain") == [external_ip(cluster)]
    # The outside world knows nothing of the cluster's names.
    assert query(cluster, "web.default.svc.cluster.local", client="plain",
                 server=resolver)[0] == 3


def test_the_resolver_is_sealed_from_the_host(cluster):
    out = subprocess.run(["ip", "-o", "addr"], capture_output=True, text=True).stdout
    assert cluster.scenario.dns.upstream.ip not in out
