"""The world outside the cluster: external hosts behind an OpenFlow edge switch, LoadBalancer
Services through the os-ken app, failover, and the seal between the emulation and the host."""

import hashlib
import json
import re
import signal
import subprocess
import sys
import time

import pytest
import yaml

from kemu.kernel import doctor
from kemu.registry import backends as available_backends

from .helpers import KEMU, Capture, eventually, root_links, running_cluster, scenario_doc

pytestmark = [
    pytest.mark.integration,
    pytest.mark.skipif(not doctor._ovs_running().ok,
                       reason="Open vSwitch is not running (scripts/setup.sh starts it)"),
]

HEALTH = {"interval": 0.5, "timeout": 0.3, "unhealthyThreshold": 2, "healthyThreshold": 1}


def web(replicas=3):
    return {"apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": "web"},
            "spec": {"replicas": replicas, "selector": {"matchLabels": {"app": "web"}},
                     "template": {"metadata": {"labels": {"app": "web"}}, "spec": {
                         "containers": [{"name": "web", "image": "kemu/http-echo",
                                         "ports": [{"containerPort": 8080}]}]}}}}


def lb_service(name, policy="Cluster", ip=None):
    spec = {"type": "LoadBalancer", "selector": {"app": "web"}, "externalTrafficPolicy": policy,
            "ports": [{"port": 80, "targetPort": 8080}]}
    if ip:
        spec["loadBalancerIP"] = ip
    return {"apiVersion": "v1", "kind": "Service", "metadata": {"name": name}, "spec": spec}


def external_doc(preset="custom", workloads=None, grace=2):
    doc = scenario_doc(workloads or [web(), lb_service("web"), lb_service("web-local", "Local"),
                                     lb_service("public", ip="39.2.2.2")], nodes=3,
                       nodeMonitorGracePeriod=grace)
    doc["external"] = {"hosts": [{"name": "client"},
                                 {"name": "server", "image": "kemu/http-echo", "port": 8080}],
                       "loadBalancer": {"preset": preset, "healthCheck": HEALTH}}
    return doc


@pytest.fixture(scope="module")
def cluster():
    with running_cluster(external_doc()) as running:
        yield running


def vip(cluster, name):
    return next(s.load_balancer_ip for s in cluster.scenario.services if s.name == name)


def requests(cluster, where, url, count, *options):
    out = subprocess.run([*cluster.exec_prefix(where), sys.executable, "-m",
                          "kemu.measure.probe", "http", url, "--count", str(count), *options],
                         capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr
    return [json.loads(line) for line in out.stdout.splitlines()]


def test_vips_come_from_the_pool_or_the_manifest(cluster):
    assert vip(cluster, "public") == "39.2.2.2"
    assert re.match(r"192\.168\.100\.2(2[4-9]|[3-5]\d)$", vip(cluster, "web"))


def test_external_client_reaches_every_backend_through_the_load_balancer(cluster):
    records = requests(cluster, cluster.externals["client"], f"http://{vip(cluster, 'web')}/",
                       90)
    assert not [r for r in records if "error" in r]
    assert {r["pod"] for r in records} == {"web-0", "web-1", "web-2"}
    state = cluster.load_balancer_state()
    (entry,) = [v for v in state["vips"] if v["service"] == "default/web"]
    assert {b["node"] for b in entry["backends"] if b["healthy"]} == {"node1", "node2", "node3"}


def test_local_policy_keeps_the_client_ip(cluster):
    client = cluster.externals["client"]
    records = requests(cluster, client, f"http://{vip(cluster, 'web-local')}/", 20)
    assert {r["client"] for r in records} == {client.IP()}
    cluster_records = requests(cluster, client, f"http://{vip(cluster, 'web')}/", 20)
    assert client.IP() not in {r["client"] for r in cluster_records}  # SNAT on Cluster


def test_pods_reach_external_servers_through_their_nodes_snat(cluster):
    server = cluster.externals["server"]
    (record,) = requests(cluster, cluster.pods["default/web-0"], f"http://{server.IP()}:8080/",
                         1)
    assert record["pod"] == "server"
    assert record["client"] == cluster.nodes["node1"].IP()  # masqueraded to web-0's node


def test_public_vip_works_and_never_reaches_the_hosts_own_interfaces(cluster):
    """39.2.2.2 (the seed's loadBalancerIP) answers inside the emulation, and no packet of a
    scenario address shows on an interface of the host's own (anything kemu did not make)."""
    edge = f"e{cluster.state.run_id}"
    host_interfaces = [i for i in root_links() if i != "lo" and not i.startswith(edge)]
    captures = [Capture([], i, "host 39.2.2.2 or net 192.168.100.0/24 or net 172.18.0.0/16 "
                               "or net 10.244.0.0/16 or net 10.96.0.0/12")
                for i in host_interfaces if _capturable(i)]
    assert captures, f"no interface of the host's own to watch among {host_interfaces}"
    records = requests(cluster, cluster.externals["client"], "http://39.2.2.2/", 10)
    assert {r.get("pod") for r in records} <= {"web-0", "web-1", "web-2"} and \
        not [r for r in records if "error" in r]
    for capture in captures:
        assert capture.stop().strip() == ""
    # kemu's own devices in the root namespace: the edge bridge and its ports, no address.
    for name in root_links():
        if name.startswith(edge):
            addrs = subprocess.run(["ip", "-4", "-o", "addr", "show", "dev", name],
                                   capture_output=True, text=True).stdout
            assert addrs.strip() == "", name


def _capturable(interface):
    state = subprocess.run(["ip", "-o", "link", "show", interface], capture_output=True,
                           text=True).stdout
    return "state UP" in state or "UNKNOWN" in state


def test_failover_within_the_health_check_budget(cluster):
    """node3 goes down: the load balancer stops sending to it within interval × threshold;
    with Local policy nothing else stands in the way."""
    budget = HEALTH["interval"] * HEALTH["unhealthyThreshold"] + HEALTH["timeout"] + 0.5
    client = cluster.externals["client"]
    url = f"http://{vip(cluster, 'web-local')}/"
    probe = subprocess.Popen([*cluster.exec_prefix(client), sys.executable, "-m",
                              "kemu.measure.probe", "http", url, "--count", "60",
                              "--interval", "0.1", "--timeout", "0.3"],
                             stdout=subprocess.PIPE, text=True)
    time.sleep(1.0)
    failed_at = time.time()
    cluster.node_down("node3")
    try:
        out, _ = probe.communicate(timeout=60)
    finally:
        cluster.node_up("node3")
    records = [json.loads(line) for line in out.splitlines()]
    failures = [r for r in records if "error" in r and r["t"] >= failed_at]
    recovered = failures[-1]["t"] - failed_at if failures else 0.0
    assert recovered <= budget, (recovered, budget)
    late = [r for r in records if r["t"] > failed_at + budget]
    assert late and all("error" not in r and r["pod"] != "web-2" for r in late)
    events = cluster.load_balancer_state()["events"]
    assert any(e["event"] == "unhealthy" and e["node"] == "node3" for e in events)
    # It comes back once the node does.
    assert eventually(lambda: all(b["healthy"] for v in cluster.load_balancer_state()["vips"]
                                  for b in v["backends"] if v["service"] == "default/web"),
                      timeout=5)


def metallb_order(nodes, address):
    """MetalLB's layer 2 election (metallb speaker/layer2_controller.go, ShouldAnnounce): the
    candidate nodes sorted by sha256(node + "#" + IP); the first announces."""
    return sorted(nodes, key=lambda n: hashlib.sha256(f"{n}#{address}".encode()).digest())


def test_metallb_l2_elects_as_metallb_announces_by_gratuitous_arp_and_fails_back():
    with running_cluster(external_doc("metallb-l2", [web(), lb_service("web")])) as cluster:
        client = cluster.externals["client"]
        address = vip(cluster, "web")
        assert not [r for r in requests(cluster, client, f"http://{address}/", 10)
                    if "error" in r]
        leader, runner_up, *_ = metallb_order(cluster.nodes, address)
        assert cluster.load_balancer_state()["vips"][0]["leader"] == leader
        macs = {n: node.intf("eth0").MAC() for n, node in cluster.nodes.items()}

        def lladdr():
            neigh = client.run("ip", "neigh", "show", address).split()
            return neigh[neigh.index("lladdr") + 1] if "lladdr" in neigh else ""

        assert lladdr() == macs[leader]
        cluster.node_down(leader)
        try:
            # The gratuitous ARP of the next node in MetalLB's order moves the client's
            # neighbour entry.
            assert eventually(lambda: lladdr() == macs[runner_up], timeout=10)
            assert cluster.load_balancer_state()["vips"][0]["leader"] == runner_up
            assert eventually(lambda: not [r for r in requests(cluster, client,
                                                               f"http://{address}/", 5)
                                           if "error" in r], timeout=10)
        finally:
            cluster.node_up(leader)
        # Back in the candidates, the first node takes its address back (no stickiness).
        assert eventually(lambda: lladdr() == macs[leader], timeout=10)
        assert cluster.load_balancer_state()["vips"][0]["leader"] == leader


def test_gce_checks_kube_proxys_health_and_the_health_check_node_port():
    """As cloud-provider-gcp configures them: a Cluster Service's backends are checked on
    kube-proxy's /healthz (10256), a Local one's on its health check node port, which only
    nodes with a local endpoint answer with 200."""
    solo = {**web(1), "metadata": {"name": "solo"}}
    solo["spec"] = {**solo["spec"], "selector": {"matchLabels": {"app": "solo"}}}
    solo["spec"]["template"] = {"metadata": {"labels": {"app": "solo"}},
                                "spec": {**solo["spec"]["template"]["spec"],
                                         "nodeName": "node1"}}
    local = lb_service("solo", "Local")
    local["spec"]["selector"] = {"app": "solo"}
    with running_cluster(external_doc("gce", [web(), lb_service("web"), solo, local])) as \
            cluster:
        hcnp = next(s.health_check_node_port for s in cluster.scenario.services
                    if s.name == "solo")
        capture = Capture(cluster.exec_prefix(cluster.nodes["node2"]), "eth0",
                          f"tcp dst port 10256 or tcp dst port {hcnp}", decode=("-A",))
        time.sleep(2)
        seen = capture.stop()
        assert "GET /healthz HTTP/1.1" in seen and f".{hcnp}: " in seen and ".10256: " in seen
        health = {v["service"]: {b["node"] for b in v["backends"] if b["healthy"]}
                  for v in cluster.load_balancer_state()["vips"]}
        assert health == {"default/web": {"node1", "node2", "node3"},
                          "default/solo": {"node1"}}
        client = cluster.externals["client"]
        records = requests(cluster, client, f"http://{vip(cluster, 'solo')}/", 6)
        assert {r.get("pod") for r in records} == {"solo-0"}


def test_load_balancer_source_ranges_let_only_their_clients_through():
    """kube-proxy's KUBE-FW chain: traffic to the VIP from outside the ranges is dropped by
    KUBE-PROXY-FIREWALL (the passthrough load balancer keeps the client's address)."""
    allowed, closed = lb_service("allowed"), lb_service("closed")
    allowed["spec"]["loadBalancerSourceRanges"] = ["192.168.100.0/24"]  # external.cidr
    closed["spec"]["loadBalancerSourceRanges"] = ["203.0.113.0/24"]
    with running_cluster(external_doc(workloads=[web(), allowed, closed])) as cluster:
        client = cluster.externals["client"]
        assert not [r for r in requests(cluster, client, f"http://{vip(cluster, 'allowed')}/",
                                        5) if "error" in r]
        (record,) = requests(cluster, client, f"http://{vip(cluster, 'closed')}/", 1,
                             "--timeout", "1")
        assert "timed out" in record["error"]
        assert "traffic not accepted by KUBE-FW-" in cluster.node_rules("node1")


def udp_exchange(cluster, where, address, port, payload=b"kemu"):
    """One datagram to address:port from `where`; the reply's bytes (b"" on timeout)."""
    code = ("import socket, sys; s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM); "
            "s.settimeout(2); s.sendto(sys.argv[3].encode(), (sys.argv[1], int(sys.argv[2]))); "
            "sys.stdout.write(s.recv(2048).decode())")
    out = subprocess.run([*cluster.exec_prefix(where), sys.executable, "-c", code, address,
                          str(port), payload.decode()], capture_output=True, text=True,
                         timeout=30)
    return out.stdout.encode()


def test_a_udp_and_a_tcp_port_of_one_number_behind_the_load_balancer():
    """A LoadBalancer port 53 in both protocols (as for DNS): the load balancer spreads each
    protocol's flows over the healthy nodes (gce checks kube-proxy's health, which does not
    depend on the protocol), and kube-proxy takes each to its own target port."""
    dual = web()
    dual["spec"]["template"]["spec"]["containers"][0]["ports"] = [
        {"containerPort": 8080}, {"containerPort": 5353, "protocol": "UDP"}]
    service = lb_service("dns-like")
    service["spec"]["ports"] = [
        {"name": "tcp", "port": 53, "protocol": "TCP", "targetPort": 8080},
        {"name": "udp", "port": 53, "protocol": "UDP", "targetPort": 5353}]
    with running_cluster(external_doc("gce", workloads=[dual, service])) as cluster:
        client, address = cluster.externals["client"], vip(cluster, "dns-like")
        assert udp_exchange(cluster, client, address, 53, b"hello") == b"hello"
        assert not [r for r in requests(cluster, client, f"http://{address}:53/", 5)
                    if "error" in r]
        protocols = {v["protocol"] for v in cluster.load_balancer_state()["vips"]}
        assert protocols == {"TCP", "UDP"}


@pytest.mark.parametrize("backend", sorted(available_backends()))
def test_container_native_load_balancing_sends_to_pods_and_gates_their_readiness(backend):
    """gce-neg: the load balancer's backends are the pods (network endpoint groups), checked
    on their serving port; each pod carries GKE's readiness gate and is Ready only once the
    load balancer has found it healthy (ingress-gce pkg/neg/readiness). Pod IPs are reached
    through their nodes, so every backend's routing is on the path."""
    doc = external_doc("gce-neg", workloads=[web(2), lb_service("web")])
    doc["cluster"]["cni"] = {"plugin": backend}
    doc["external"]["loadBalancer"]["healthCheck"] = {"interval": 1, "timeout": 0.5}
    with running_cluster(doc) as cluster:
        client, address = cluster.externals["client"], vip(cluster, "web")
        records = requests(cluster, client, f"http://{address}/", 20)
        assert not [r for r in records if "error" in r]
        assert {r["pod"] for r in records} == {"web-0", "web-1"}
        # No node in between: the pod sees the client (kemu's passthrough to pods).
        assert {r["client"] for r in records} == {
            cluster.scenario.external.host_addresses()["client"]}
        backends = cluster.load_balancer_state()["vips"][0]["backends"]
        assert sorted(b["pod"] for b in backends) == ["default/web-0", "default/web-1"]
        gate = "cloud.google.com/load-balancer-neg-ready"
        assert all(gate in cluster.store.pod(f"default/web-{i}").conditions for i in (0, 1))
        # A new pod: its containers are ready before the load balancer has checked it (the
        # first check waits a second), and it is held out of Ready until then.
        cluster.scale("default/web", 3)
        assert eventually(lambda: cluster.store.pod("default/web-2").containers_ready,
                          timeout=10)
        assert not cluster.store.pod("default/web-2").ready
        assert eventually(lambda: cluster.store.pod("default/web-2").ready, timeout=10)
        assert eventually(lambda: {r["pod"] for r in requests(
            cluster, client, f"http://{address}/", 30)} == {"web-0", "web-1", "web-2"},
            timeout=10)


@pytest.mark.parametrize("backend", ["flannel-vxlan", "calico-bgp"])
def test_metallb_bgp_routes_the_vip_over_every_node_and_withdraws_a_dead_one(backend):
    """MetalLB's BGP mode: every node's speaker (BIRD) announces the VIP to the router
    outside (BIRD), which routes it over all of them (5-tuple ECMP); a dead node's routes go
    when its session's hold time runs out, and come back with it. On calico-bgp the speaker
    runs beside calico's own BIRD (its sessions on another port)."""
    doc = external_doc("metallb-bgp", workloads=[web(), lb_service("web")])
    doc["cluster"]["cni"] = {"plugin": backend}
    doc["external"]["loadBalancer"]["holdTime"] = 3
    with running_cluster(doc) as cluster:
        client, address, bgp = cluster.externals["client"], vip(cluster, "web"), cluster.edge.bgp
        ips = {name: node.IP() for name, node in cluster.nodes.items()}
        assert sorted(bgp.routes()[address]) == sorted(ips.values())
        assert f"via {bgp.outside_ip}" in client.run("ip", "route", "get", address)
        records = requests(cluster, client, f"http://{address}/", 30)
        assert not [r for r in records if "error" in r]
        assert {r["pod"] for r in records} == {"web-0", "web-1", "web-2"}
        cluster.node_down("node2")
        try:
            rest = sorted(ip for name, ip in ips.items() if name != "node2")
            assert eventually(lambda: sorted(bgp.routes().get(address, [])) == rest,
                              timeout=10)
        finally:
            cluster.node_up("node2")
        assert eventually(lambda: sorted(bgp.routes().get(address, [])) ==
                          sorted(ips.values()), timeout=30)


def test_kemu_clean_removes_a_killed_runs_ovs_bridge(tmp_path):
    doc = external_doc()
    doc["measurements"] = [{"name": "slow", "type": "ping", "from": {"pod": "web-0"},
                            "to": {"pod": "web-1"}, "count": 600, "interval": 0.1}]
    path = tmp_path / "s.yaml"
    path.write_text(yaml.safe_dump(doc))
    proc = subprocess.Popen([KEMU, "run", str(path), "--out", str(tmp_path / "out")],
                            stderr=subprocess.PIPE, text=True)
    run_id = ""
    while "measuring slow" not in (line := proc.stderr.readline()):
        assert line, "kemu exited early"
        run_id = run_id or (re.search(r"run ([0-9a-f]{6})", line) or [None, ""])[1]
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    bridges = subprocess.run(["ovs-vsctl", "list-br"], capture_output=True, text=True).stdout
    assert f"e{run_id}" in bridges.split()
    clean = subprocess.run([KEMU, "clean"], capture_output=True, text=True, timeout=60)
    assert f"OVS bridge e{run_id}" in clean.stdout
    bridges = subprocess.run(["ovs-vsctl", "list-br"], capture_output=True, text=True).stdout
    assert f"e{run_id}" not in bridges.split()
    assert not [i for i in root_links() if i.startswith(f"e{run_id}")]
