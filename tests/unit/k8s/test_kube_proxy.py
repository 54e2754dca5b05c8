"""kube-proxy's iptables rules, checked against kube-proxy's own expectations.

The expected text of test_rules_are_kube_proxys (data/kube-proxy-overall.rules) is the
expected output of kubernetes pkg/proxy/iptables/proxier_test.go, TestOverallIPTablesRules,
for the same Services and EndpointSlices, with three differences of the machine, not of the
rules: that test's fake iptables lacks --random-fully (a real node's has it, and kube-proxy
then uses it), and its fake kernel has nfacct, so kube-proxy adds metric counters (a
localhost copy of each KUBE-NODEPORTS rule, a counter on KUBE-FORWARD's INVALID drop) that it
leaves out on a kernel without nfnetlink_acct, like this one. The hostname, node IP and
cluster CIDR are that test's (testHostname, testNodeIP, the local detector's 10.0.0.0/8).
"""

from dataclasses import replace
from pathlib import Path

import pytest

from kemu.k8s.endpoints import Endpoint
from kemu.k8s.kube_proxy import SyncRunner, health
from kemu.k8s.kube_proxy import iptables as kube_proxy
from kemu.k8s.kube_proxy.conntrack import stale_entries
from kemu.k8s.kube_proxy.topology import categorize
from kemu.scenario.objects import Service, ServicePort


def p80(node_port=0):
    return (ServicePort(80, 80, "TCP", "p80", node_port),)


SERVICES = [
    Service("svc1", "ns1", cluster_ip="172.30.0.41", ports=p80(), selector={}),
    Service("svc2", "ns2", type="LoadBalancer", external_traffic_policy="Local",
            cluster_ip="172.30.0.42", ports=p80(3001), load_balancer_ip="1.2.3.4",
            external_ips=("192.168.99.22",), health_check_node_port=30000, selector={}),
    Service("svc3", "ns3", type="NodePort", cluster_ip="172.30.0.43", ports=p80(3003),
            selector={}),
    Service("svc4", "ns4", type="NodePort", cluster_ip="172.30.0.44",
            external_ips=("192.168.99.33",), ports=p80(), selector={}),
    Service("svc5", "ns5", type="LoadBalancer", cluster_ip="172.30.0.45", ports=p80(3002),
            load_balancer_ip="5.6.7.8", health_check_node_port=30000,
            load_balancer_source_ranges=("203.0.113.0/25",), session_affinity="ClientIP",
            affinity_timeout_s=10800, selector={}),
    Service("svc6", "ns6", cluster_ip="172.30.0.46", ports=p80(), selector={}),
]


def ep(ip, node="", **conditions):
    return Endpoint("ns/pod", ip, node, 80, **conditions)


ENDPOINTS = {("ns1/svc1", "p80"): [ep("10.180.0.1")], ("ns2/svc2", "p80"): [ep("10.180.0.2")],
             ("ns3/svc3", "p80"): [ep("10.180.0.3")],
             ("ns4/svc4", "p80"): [ep("10.180.0.4"), ep("10.180.0.5", "test-hostname")],
             ("ns5/svc5", "p80"): [ep("10.180.0.3")]}

EXPECTED = Path(__file__).parent / "data" / "kube-proxy-overall.rules"


def render(services=SERVICES, endpoints=None, node="test-hostname"):
    return kube_proxy.render(node, "192.168.0.2", "10.0.0.0/8", services,
                             ENDPOINTS if endpoints is None else endpoints)


def test_rules_are_kube_proxys():
    assert render() == EXPECTED.read_text()


def test_chain_names_hash_the_service_port_name():
    # The check values of kube-proxy's naming (proxier_test.go, TestOverallIPTablesRules).
    assert kube_proxy.chain("KUBE-SVC", "ns1/svc1:p80", "tcp") == "KUBE-SVC-XPGD46QRK7WJZT7O"
    assert kube_proxy.chain("KUBE-SEP", "ns1/svc1:p80", "tcp", "10.180.0.1:80") == \
        "KUBE-SEP-SXIVWICOYRO3J4NJ"
    # An unnamed port's name is the service's alone: no trailing colon (pkg/proxy/types.go).
    unnamed = Service("web", "default", ports=(ServicePort(80, 8080),))
    assert kube_proxy.port_name(unnamed, unnamed.ports[0]) == "default/web"


def test_local_policy_with_affinity_is_sticky_in_the_local_chain_too():
    svc = Service("web", "ns", type="NodePort", cluster_ip="172.30.0.50",
                  external_traffic_policy="Local", session_affinity="ClientIP",
                  affinity_timeout_s=60, ports=p80(30080), selector={})
    text = render([svc], {("ns/web", "p80"): [ep("10.180.0.7", "test-hostname")]})
    svl = kube_proxy.chain("KUBE-SVL", "ns/web:p80", "tcp")
    sep = kube_proxy.chain("KUBE-SEP", "ns/web:p80", "tcp", "10.180.0.7:80")
    assert f'-A {svl} -m comment --comment "ns/web:p80 -> 10.180.0.7:80" -m recent --name ' \
           f'{sep} --rcheck --seconds 60 --reap -j {sep}' in text


def test_balancing_is_uniform_in_kube_proxys_endpoint_order():
    eps = [ep(f"10.180.0.{i}") for i in (2, 10, 3)]  # ordered as strings: .10, .2, .3
    text = render(SERVICES[:1], {("ns1/svc1", "p80"): eps})
    picks = [line for line in text.splitlines() if " -> " in line]
    assert [line.split(" -> ")[1].split(":")[0] for line in picks] == \
        ["10.180.0.10", "10.180.0.2", "10.180.0.3"]
    assert "--probability 0.3333333333 " in picks[0] and "--probability 0.5000000000 " in \
        picks[1] and "statistic" not in picks[2]


def test_internal_traffic_policy_local():
    svc = Service("svc", "ns", cluster_ip="172.30.0.60", internal_traffic_policy="Local",
                  ports=p80(), selector={})
    eps = {("ns/svc", "p80"): [ep("10.180.0.1", "other-node")]}
    elsewhere = render([svc], eps)
    # kube-proxy drops (not rejects) cluster IP traffic with no local endpoint.
    assert '-A KUBE-SERVICES -m comment --comment "ns/svc:p80 has no local endpoints" ' \
           '-m tcp -p tcp -d 172.30.0.60 --dport 80 -j DROP' in elsewhere
    here = render([svc], eps, node="other-node")
    svl = kube_proxy.chain("KUBE-SVL", "ns/svc:p80", "tcp")
    assert f"--dport 80 -j {svl}" in here and "KUBE-SVC-" not in here


def test_terminating_endpoints_serve_only_when_nothing_is_ready():
    # pkg/proxy/topology.go, CategorizeEndpoints: ready first; serving-terminating as fallback.
    svc = SERVICES[0]
    ready, leaving = ep("10.180.0.1"), ep("10.180.0.2", ready=False, terminating=True)
    assert categorize([ready, leaving], svc, svc.ports[0], "n").cluster == [ready]
    assert categorize([leaving], svc, svc.ports[0], "n").cluster == [leaving]
    gone = ep("10.180.0.3", ready=False, serving=False, terminating=True)
    found = categorize([gone], svc, svc.ports[0], "n")
    assert found.cluster == [] and not found.any


@pytest.mark.parametrize("node", ["test-hostname", "a-node-without-endpoints"])
def test_health_check_node_port_is_accepted_for_local_services(node):
    # Whether or not the node has local endpoints: the checker must get its answer.
    text = render(node=node)
    assert '"ns2/svc2:p80 health check node port" -m tcp -p tcp --dport 30000 -j ACCEPT' in text
    assert "ns5/svc5:p80 health check" not in text  # Cluster policy: kube-proxy ignores it


DNS = Service("dns", "kube-system", type="NodePort", cluster_ip="10.96.0.10",
              ports=(ServicePort(53, 53, "UDP", "dns", 30053),), selector={})


def test_conntrack_entries_of_removed_udp_endpoints_are_deleted():
    # The filters kube-proxy's conntrack cleanup uses (pkg/proxy/conntrack): per address the
    # port is reached at, and per node port, to the endpoint that went.
    key = ("kube-system/dns", "dns")
    before = {key: [ep("10.244.1.2"), ep("10.244.2.2")]}
    after = {key: [ep("10.244.2.2")]}
    assert stale_entries([DNS], before, after) == [
        ["-p", "udp", "--orig-dst", "10.96.0.10", "--dst-nat", "10.244.1.2"],
        ["-p", "udp", "--dport", "30053", "--dst-nat", "10.244.1.2"]]
    # A port that gets its first endpoint: entries made while it had none go.
    assert stale_entries([DNS], {}, after) == [
        ["-p", "udp", "--orig-dst", "10.96.0.10"], ["-p", "udp", "--dport", "30053"]]
    # TCP ends its connections itself; nothing changed: nothing to delete.
    assert stale_entries(SERVICES, {}, ENDPOINTS) == [] and stale_entries([DNS], after, after) == []


def test_health_server_answers_as_kube_proxys():
    proxier = health.ProxierHealth(timeout_s=60)
    proxier.updated(1000.0)
    status, headers, body = health.proxier("/healthz", proxier, 1000.5)
    assert status == 200 and headers["Content-Type"] == "application/json"
    # pkg/proxy/healthcheck/proxier_health.go: lastUpdated is the current time while healthy.
    assert body == '{"lastUpdated": "1970-01-01 00:16:40.5 +0000 UTC","currentTime": ' \
                   '"1970-01-01 00:16:40.5 +0000 UTC", "nodeEligible": true}'
    proxier.queued(1001.0)  # a change that does not reach the rules within the timeout
    assert health.proxier("/livez", proxier, 1060.0)[0] == 200
    status, _, body = health.proxier("/livez", proxier, 1061.0)
    assert status == 503 and body.startswith('{"lastUpdated": "1970-01-01 00:16:40 +0000 UTC"')
    assert health.proxier("/metrics", proxier, 1061.0)[0] == 404


def test_health_check_node_port_answers_with_the_local_endpoint_count():
    local = health.local_ready({("ns/web", "http"): [ep("10.0.0.1", "n1"), ep("10.0.0.2", "n2")],
                                ("ns/web", "metrics"): [ep("10.0.0.1", "n1", ready=False)]},
                               "n1")
    assert local == {"ns/web": 1}
    status, headers, body = health.service("ns", "web", local["ns/web"], True)
    assert status == 200 and headers["X-Load-Balancing-Endpoint-Weight"] == "1"
    # pkg/proxy/healthcheck/service_health.go: tab-indented JSON.
    assert body == ('{\n\t"service": {\n\t\t"namespace": "ns",\n\t\t"name": "web"\n\t},\n'
                    '\t"localEndpoints": 1,\n\t"serviceProxyHealthy": true\n}')
    assert health.service("ns", "web", 0, True)[0] == 503
    assert health.service("ns", "web", 2, False)[0] == 503


def test_the_runner_lets_two_syncs_through_then_one_per_min_sync_period():
    # pkg/util/async BoundedFrequencyRunner as the iptables proxier makes it: minSyncPeriod
    # 1 s, burstSyncs 2; syncPeriod 30 s for the check that the rules are still there.
    runner = SyncRunner(1.0, 30.0)
    for now in (0.0, 0.2):
        assert runner.due(now, pending=True)
        runner.ran(now)
    assert not runner.due(0.4, pending=True)  # a third change waits for a token ...
    assert runner.due(1.05, pending=True)  # ... which is back a second after the first
    runner.ran(1.05)
    assert not runner.due(20.0, pending=False) and runner.due(31.1, pending=False)
    fast = SyncRunner(0.0, 30.0)  # the fast profile: every change at once
    assert all(fast.due(t, pending=True) for t in (0.0, 0.01, 0.02))


class Sink:
    def __init__(self):
        self.texts = []

    def sync(self, text):
        self.texts.append(text)
        return True


def test_changes_held_back_are_written_together():
    from kemu.k8s.controllers import View
    from kemu.k8s.kube_proxy import KubeProxy

    sink = Sink()
    proxy = KubeProxy("test-hostname", "192.168.0.2", "10.0.0.0/8", sink)
    views = [View(SERVICES[:n], [], {}, [], ENDPOINTS) for n in (1, 2, 3, 4)]
    proxy.sync(views[0])
    proxy.sync(views[1])  # the burst's second sync
    proxy.sync(views[2])  # within a second: held
    proxy.sync(views[3])
    assert len(sink.texts) == 2 and not proxy.health.healthy(proxy.health.oldest_pending + 61)
    proxy.runner.refilled -= 1.0  # a second later
    proxy.flush()
    assert len(sink.texts) == 3 and "ns4/svc4" in sink.texts[-1]  # the latest, once
    proxy.flush()
    assert len(sink.texts) == 3


def test_only_changes_kube_proxy_watches_are_pending():
    """kube-proxy's health counts Service and EndpointSlice changes not yet written
    (pkg/proxy/healthcheck ProxierHealthServer.QueuedUpdate), not a pod's or a policy's."""
    from kemu.k8s.controllers import View
    from kemu.k8s.kube_proxy import KubeProxy

    proxy = KubeProxy("test-hostname", "192.168.0.2", "10.0.0.0/8", Sink())
    proxy.sync(View(SERVICES, [], {}, [], ENDPOINTS))
    assert proxy.health.oldest_pending is None  # written at once
    proxy.runner.refilled += 10.0  # no sync allowed for a while
    proxy.sync(View(SERVICES, [], {"ns": None}, [], ENDPOINTS))  # a namespace: not watched
    assert proxy.health.oldest_pending is None
    proxy.sync(View(SERVICES[:1], [], {}, [], ENDPOINTS))  # held back, pending
    assert proxy.health.oldest_pending is not None


def test_prefer_close_keeps_traffic_in_the_nodes_zone_while_it_has_endpoints():
    # pkg/proxy/topology.go, topologyModeFromHints: hints used when every endpoint has one.
    svc = replace(SERVICES[0], traffic_distribution="PreferClose")
    eps = [ep("10.180.0.1", zone="zone-a"), ep("10.180.0.2", zone="zone-b"),
           ep("10.180.0.3", zone="zone-a")]
    port = svc.ports[0]
    assert [e.ip for e in categorize(eps, svc, port, "n", "zone-a").cluster] == \
        ["10.180.0.1", "10.180.0.3"]
    assert len(categorize(eps, svc, port, "n", "zone-c").cluster) == 3  # none in its zone
    assert len(categorize(eps, SERVICES[0], port, "n", "zone-a").cluster) == 3  # not asked
    unzoned = [*eps, ep("10.180.0.4")]
    assert len(categorize(unzoned, svc, port, "n", "zone-a").cluster) == 4  # no hints at all
