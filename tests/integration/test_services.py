"""Services, kube-proxy, cluster DNS and NetworkPolicy from real manifests, on real namespaces,
in every backend."""

import collections
import re
import subprocess
import sys
import time
from pathlib import Path

import pytest

from kemu.registry import backends as available_backends

from .helpers import in_node, in_pod, pod, running_cluster, scenario_doc

pytestmark = pytest.mark.integration


def deployment(name, replicas, port_name="http", port=8080, labels=None):
    labels = labels or {"app": name}
    return {"apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": name},
            "spec": {"replicas": replicas, "selector": {"matchLabels": labels},
                     "template": {"metadata": {"labels": labels}, "spec": {"containers": [
                         {"name": "web", "image": "kemu/http-echo",
                          "ports": [{"containerPort": port, "name": port_name}]}]}}}}


def service(name, selector, port=80, target="http", **spec):
    ports = spec.pop("ports", [{"name": "http", "port": port, "targetPort": target}])
    return {"apiVersion": "v1", "kind": "Service", "metadata": {"name": name},
            "spec": {"selector": selector, "ports": ports, **spec}}


# One pod on a different target port under the same port name: a named targetPort resolves
# per pod.
ODD = pod("odd", node="node3", port=0)
ODD["metadata"]["labels"] = {"app": "web"}
ODD["spec"]["containers"][0]["args"] = []
ODD["spec"]["containers"][0]["command"] = [sys.executable, "-m", "kemu.images.http_echo",
                                           "--port", "9090"]
ODD["spec"]["containers"][0]["ports"] = [{"containerPort": 9090, "name": "http"}]

# Ready while a file exists (an exec probe, checked every second, one failure is enough).
READY_FILE = "/tmp/kemu-test-flaky-ready"
FLAKY = pod("flaky", node="node2")
FLAKY["metadata"]["labels"] = {"app": "flaky"}
FLAKY["spec"]["containers"][0]["readinessProbe"] = {
    "exec": {"command": ["test", "-e", READY_FILE]}, "periodSeconds": 1,
    "failureThreshold": 1}

# Answers each UDP datagram with its pod's name.
UDP_ECHO = deployment("udp", 2, "dns", 5353)
UDP_ECHO["spec"]["template"]["spec"]["containers"][0].update(
    image="kemu/sleep", command=[sys.executable, "-c", (
        "import os, socket\n"
        "s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)\n"
        "s.bind(('', 5353))\n"
        "while True:\n"
        "    data, peer = s.recvfrom(2048)\n"
        "    s.sendto(os.environ['POD_NAME'].encode(), peer)\n")],
    ports=[{"containerPort": 5353, "name": "dns", "protocol": "UDP"}])

WORKLOADS = [
    deployment("web", 2),                      # web-0 on node1, web-1 on node2
    ODD,                                       # also app=web, port "http" = 9090, on node3
    pod("client", node="node1", port=0, image="kemu/sleep"),
    pod("solo", node="node1"),
    deployment("victim", 2),
    service("web", {"app": "web"}),
    service("web-nodeport", {"app": "web"}, type="NodePort"),
    service("solo-local", {"app": "solo"}, target=8080, type="NodePort",
            externalTrafficPolicy="Local"),
    service("solo-cluster", {"app": "solo"}, target=8080, type="NodePort"),
    # No load balancer in this cluster (no `external`): pending, but with its health check
    # node port, answered by each node's kube-proxy.
    service("solo-lb", {"app": "solo"}, target=8080, type="LoadBalancer",
            externalTrafficPolicy="Local"),
    UDP_ECHO,
    service("udp", {"app": "udp"}, ports=[{"name": "dns", "port": 53, "targetPort": "dns",
                                           "protocol": "UDP"}]),
    service("sticky", {"app": "web"}, sessionAffinity="ClientIP"),
    service("headless", {"app": "web"}, clusterIP="None"),
    service("victims", {"app": "victim"}),
    FLAKY,
    service("flaky", {"app": "flaky"}, target=8080),
    {"apiVersion": "v1", "kind": "Service", "metadata": {"name": "db"},
     "spec": {"type": "ExternalName", "externalName": "my.database.example.com"}},
]


@pytest.fixture(scope="module", params=sorted(available_backends()))
def cluster(request):
    Path(READY_FILE).touch()
    try:
        with running_cluster(scenario_doc(WORKLOADS, nodes=3, cni=request.param)) as running:
            yield running
    finally:
        Path(READY_FILE).unlink(missing_ok=True)


def svc_ip(cluster, name, namespace="default"):
    return next(s.cluster_ip for s in cluster.scenario.services
                if s.name == name and s.namespace == namespace)


def node_port(cluster, name):
    return next(s.ports[0].node_port for s in cluster.scenario.services if s.name == name)


def requests(cluster, client, url, count):
    """Run kemu's http probe in a pod (or node) and return its records."""
    where = cluster.pods[f"default/{client}"] if client in ("client", "solo") else None
    prefix = cluster.exec_prefix(where or cluster.nodes[client])
    out = subprocess.run([*prefix, sys.executable, "-m", "kemu.measure.probe", "http", url,
                          "--count", str(count)], capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr
    import json
    return [json.loads(line) for line in out.stdout.splitlines()]


def pod_ip(cluster, name):
    return cluster.pods[f"default/{name}"].ip


def test_cluster_ip_balances_over_every_ready_endpoint(cluster):
    records = requests(cluster, "client", f"http://{svc_ip(cluster, 'web')}:80/", 300)
    assert not [r for r in records if "error" in r]
    counts = collections.Counter(r["pod"] for r in records)
    assert set(counts) == {"web-0", "web-1", "odd"}  # odd: the named port resolved to 9090
    assert all(60 <= n <= 140 for n in counts.values()), counts  # 100 ± 4.8 sd


def test_rules_look_like_kube_proxys(cluster):
    rules = cluster.node_rules("node2")
    ip = svc_ip(cluster, "web")
    assert re.search(rf"-A KUBE-SERVICES -d {ip}/32 -p tcp .*--dport 80 .*-j KUBE-SVC-\w{{16}}",
                     rules)
    assert "--mode random --probability 0.33333333349" in rules
    assert f"--to-destination {pod_ip(cluster, 'odd')}:9090" in rules
    assert "-j MASQUERADE --random-fully" in rules


def test_node_port_on_every_node_even_without_a_local_endpoint(cluster):
    port = node_port(cluster, "web-nodeport")
    for node in ("node1", "node2", "node3"):
        target = cluster.nodes[node].IP()
        records = requests(cluster, "client", f"http://{target}:{port}/", 6)
        assert not [r for r in records if "error" in r], (node, records)
    # solo has its one endpoint on node1: node2 and node3 still forward (Cluster policy).
    port = node_port(cluster, "solo-cluster")
    for node in ("node2", "node3"):
        (record,) = requests(cluster, "node3", f"http://{cluster.nodes[node].IP()}:{port}/", 1)
        assert record["pod"] == "solo"


def test_node_port_answers_on_the_nodes_localhost(cluster):
    # kube-proxy's localhost node ports (route_localnet, --iptables-localhost-nodeports).
    port = node_port(cluster, "web-nodeport")
    records = requests(cluster, "node2", f"http://127.0.0.1:{port}/", 6)
    assert not [r for r in records if "error" in r], records


def test_kube_proxy_health_server_and_health_check_node_port(cluster):
    import json
    healthz = json.loads(in_node(cluster, "node2", "curl", "-sS", "--fail",
                                 "http://127.0.0.1:10256/healthz"))
    assert healthz["nodeEligible"] is True and healthz["lastUpdated"].endswith(" +0000 UTC")
    svc = next(s for s in cluster.scenario.services if s.name == "solo-lb")
    answers = {}
    for node in ("node1", "node2"):  # solo runs on node1
        url = f"http://{cluster.nodes[node].IP()}:{svc.health_check_node_port}/"
        out = in_node(cluster, "node3", "curl", "-sS", "-w", "\\n%{http_code}", url)
        body, code = out.rsplit("\n", 1)
        answers[node] = (int(code), json.loads(body)["localEndpoints"])
    assert answers == {"node1": (200, 1), "node2": (503, 0)}


def udp_ask(cluster, ip, port, source_port, count):
    """Datagrams from the client pod, always from one source port: who answered each."""
    code = ("import socket, sys\n"
            "s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)\n"
            "s.bind(('', int(sys.argv[3])))\n"
            "s.settimeout(1)\n"
            "for _ in range(int(sys.argv[4])):\n"
            "    s.sendto(b'?', (sys.argv[1], int(sys.argv[2])))\n"
            "    try:\n"
            "        print(s.recv(2048).decode())\n"
            "    except OSError:\n"
            "        print('-')\n")
    out = in_pod(cluster, "client", sys.executable, "-c", code, ip, str(port),
                 str(source_port), str(count))
    assert out.returncode == 0, out.stderr
    return out.stdout.split()


def test_udp_client_moves_to_a_live_endpoint_when_its_endpoint_goes(cluster):
    # kube-proxy deletes the conntrack entries of a removed UDP endpoint after its sync
    # (pkg/proxy/conntrack): without that, a client sending from one source port would keep
    # its entry — and its dead endpoint — for as long as it keeps sending.
    ip = svc_ip(cluster, "udp")
    first = udp_ask(cluster, ip, 53, 40000, 3)
    assert len(set(first)) == 1 and first[0].startswith("udp-"), first
    cluster.crash_pod(f"default/{first[0]}")
    time.sleep(2.0)
    after = udp_ask(cluster, ip, 53, 40000, 3)
    (other,) = {"udp-0", "udp-1"} - {first[0]}
    assert after == [other] * 3, after


def test_local_policy_keeps_the_client_ip_cluster_policy_hides_it(cluster):
    node1, node3 = cluster.nodes["node1"], cluster.nodes["node3"]
    local = requests(cluster, "node3", f"http://{node1.IP()}:{node_port(cluster, 'solo-local')}/",
                     3)
    assert {r["client"] for r in local} == {node3.IP()}
    snat = requests(cluster, "node3",
                    f"http://{node1.IP()}:{node_port(cluster, 'solo-cluster')}/", 3)
    assert node3.IP() not in {r["client"] for r in snat}
    # Local: a node without a local endpoint does not forward.
    none = requests(cluster, "node3", f"http://{cluster.nodes['node2'].IP()}:"
                                      f"{node_port(cluster, 'solo-local')}/", 1)
    assert "error" in none[0]


def test_client_ip_affinity_holds(cluster):
    records = requests(cluster, "client", f"http://{svc_ip(cluster, 'sticky')}:80/", 30)
    assert len({r["pod"] for r in records}) == 1


def test_hairpin_pod_reaches_itself_through_its_service(cluster):
    records = requests(cluster, "solo", f"http://{svc_ip(cluster, 'solo-cluster')}:80/", 3)
    assert {r["pod"] for r in records} == {"solo"}


def dns_query(cluster, name, qtype="A"):
    code = ("import sys; from dnslib import DNSRecord; "
            "r = DNSRecord.parse(DNSRecord.question(sys.argv[1], sys.argv[2]).send(sys.argv[3], "
            "53, timeout=2)); print(r.header.rcode); "
            "[print(rr.rtype, rr.rdata) for rr in r.rr]")
    out = in_pod(cluster, "client", sys.executable, "-c", code, name, qtype,
                 cluster.scenario.dns.cluster_ip)
    assert out.returncode == 0, out.stderr
    rcode, *answers = out.stdout.splitlines()
    return int(rcode), answers


def test_dns_short_names_resolve_in_the_pods_namespace(cluster):
    out = in_pod(cluster, "client", "getent", "ahostsv4", "web")
    assert svc_ip(cluster, "web") in out.stdout
    out = in_pod(cluster, "client", "getent", "ahostsv4", "kube-dns.kube-system")
    assert cluster.scenario.dns.cluster_ip in out.stdout


def test_dns_headless_returns_pod_ips(cluster):
    rcode, answers = dns_query(cluster, "headless.default.svc.cluster.local")
    assert rcode == 0
    assert {a.split()[1] for a in answers} == {pod_ip(cluster, n) for n in ("web-0", "web-1",
                                                                           "odd")}


def test_dns_external_name_is_a_cname(cluster):
    assert dns_query(cluster, "db.default.svc.cluster.local", "CNAME") == \
        (0, ["5 my.database.example.com."])


def test_dns_srv_for_named_ports_and_nxdomain_otherwise(cluster):
    rcode, answers = dns_query(cluster, "_http._tcp.web.default.svc.cluster.local", "SRV")
    assert rcode == 0 and answers == ["33 0 100 80 web.default.svc.cluster.local."]
    assert dns_query(cluster, "nope.default.svc.cluster.local")[0] == 3  # NXDOMAIN


def test_resolv_conf_is_the_pods(cluster):
    out = in_pod(cluster, "client", "cat", "/etc/resolv.conf").stdout
    assert "search default.svc.cluster.local svc.cluster.local cluster.local" in out
    assert f"nameserver {cluster.scenario.dns.cluster_ip}" in out and "ndots:5" in out


def test_a_crashed_pod_leaves_the_rotation(cluster):
    """After the pod dies, within a second no node's rules name it, and no request goes to
    it; DNS follows too."""
    url = f"http://{svc_ip(cluster, 'victims')}:80/"
    assert {r["pod"] for r in requests(cluster, "client", url, 40)} == {"victim-0", "victim-1"}
    dead = pod_ip(cluster, "victim-0")
    cluster.crash_pod("default/victim-0")
    time.sleep(1.0)
    for node in cluster.nodes:
        assert f"{dead}:8080" not in cluster.node_rules(node), node
    records = requests(cluster, "client", url, 50)
    assert {r.get("pod") for r in records} == {"victim-1"}
    rcode, answers = dns_query(cluster, "victims.default.svc.cluster.local")
    assert answers == [f"1 {svc_ip(cluster, 'victims')}"]


def test_service_without_endpoints_rejects_at_once(cluster):
    (record,) = requests(cluster, "client", f"http://{svc_ip(cluster, 'victims')}:80/", 1)
    assert "error" not in record  # victim-1 still serves
    cluster.crash_pod("default/victim-1")
    time.sleep(1.0)
    started = time.monotonic()
    (record,) = requests(cluster, "client", f"http://{svc_ip(cluster, 'victims')}:80/", 1)
    # Fails at once, never a black hole: kube-proxy's REJECT answers with port unreachable,
    # which the client sees as refused (pkg/proxy/iptables/proxier.go, "has no endpoints").
    assert re.search(r"refused", record["error"], re.I), record
    assert time.monotonic() - started < 2
    assert "has no endpoints" in in_node(cluster, "node1", "iptables-save", "-t", "filter")


def test_a_pod_failing_readiness_leaves_and_rejoins(cluster):
    url = f"http://{svc_ip(cluster, 'flaky')}:80/"
    flaky = pod_ip(cluster, "flaky")
    assert {r.get("pod") for r in requests(cluster, "client", url, 3)} == {"flaky"}
    Path(READY_FILE).unlink()
    time.sleep(2.5)  # a period, the one failure it takes, and a reconcile
    assert f"{flaky}:8080" not in cluster.node_rules("node1")
    assert "error" in requests(cluster, "client", url, 1)[0]
    assert cluster.pods["default/flaky"].running  # not ready is not dead
    Path(READY_FILE).touch()
    time.sleep(2.5)
    assert {r.get("pod") for r in requests(cluster, "client", url, 3)} == {"flaky"}


def test_ipvs_mode_falls_back_to_iptables_with_a_message():
    """kemu has no IPVS proxier: asked for ipvs mode it says why it programs iptables — the
    kernel's lack of IPVS, or (where the kernel has it, e.g. in make vm-test) its own."""
    from kemu.kernel import doctor
    reason = "kemu has no IPVS proxier yet" if doctor.module_available("ip_vs") else \
        "this kernel has no IPVS"
    doc = scenario_doc([pod("a", node="node1")], nodes=1)
    doc["cluster"]["kubeProxy"] = {"mode": "ipvs"}
    messages: list[str] = []
    from kemu.cluster.lifecycle import running
    from kemu.scenario import parse_scenario
    with running(parse_scenario(doc), messages.append) as cluster:
        assert cluster.describe()["kube_proxy_mode"] == "iptables"
        assert any("ipvs mode asked for" in m and reason in m and "using iptables mode" in m
                   for m in messages), messages
        assert "KUBE-SERVICES" in cluster.node_rules("node1")
