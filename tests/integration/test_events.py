"""A scenario's timeline on real namespaces: each event changes the running cluster the way
it says (traffic stops, rules change, pods come and go), a time series shows the effect, and
the zones topology puts its WAN link between exactly the nodes it should."""

import csv
import json
import statistics
import subprocess
import time

import pytest
import yaml

from kemu.experiment.timeline import apply_event

from .helpers import KEMU, eventually, in_pod, pod, running_cluster, scenario_doc

pytestmark = pytest.mark.integration


def deployment(name, replicas, image="kemu/http-echo", port=8080):
    return {"apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": name},
            "spec": {"replicas": replicas, "selector": {"matchLabels": {"app": name}},
                     "template": {"metadata": {"labels": {"app": name}}, "spec": {"containers": [
                         {"name": "main", "image": image,
                          "ports": [{"containerPort": port}]}]}}}}


def service(name, app):
    return {"apiVersion": "v1", "kind": "Service", "metadata": {"name": name},
            "spec": {"selector": {"app": app}, "ports": [{"port": 80, "targetPort": 8080}]}}


DENY_WEB = {"apiVersion": "networking.k8s.io/v1", "kind": "NetworkPolicy",
            "metadata": {"name": "deny-web"},
            "spec": {"podSelector": {"matchLabels": {"app": "web"}}, "policyTypes": ["Ingress"]}}


def curl(cluster, url):
    result = in_pod(cluster, "client", "curl", "-s", "--max-time", "1", url, timeout=10)
    return json.loads(result.stdout)["pod"] if result.returncode == 0 else None


def test_an_outage_shows_in_the_time_series(tmp_path):
    """iperf3 across a link that goes down at 2 s and up at 4 s: the intervals in between
    carry nothing, those before and after do; events, CSV rows and the plot say when."""
    doc = scenario_doc([pod("a", node="node1", image="kemu/iperf3", port=5201),
                        pod("b", node="node2", image="kemu/iperf3", port=5201)],
                       measurements=[{"name": "tput", "type": "iperf3", "from": {"pod": "a"},
                                      "to": {"pod": "b"}, "duration": 9}])
    doc["events"] = [{"at": 2, "action": "link-down", "link": "node2"},
                     {"at": 4, "action": "link-up", "link": "node2"}]
    path = tmp_path / "s.yaml"
    path.write_text(yaml.safe_dump(doc))
    proc = subprocess.run([KEMU, "run", str(path), "--out", str(tmp_path / "out")],
                          capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr
    assert "t=2.0 s: link-down node2" in proc.stderr
    run = json.loads((tmp_path / "out" / "results.json").read_text())["runs"][0]
    down, up = (e["time"] - run["timeline_start"] for e in run["events"])
    assert [e["status"] for e in run["events"]] == ["ok", "ok"]
    assert 1.9 < down < 2.5 and 3.9 < up < 4.5
    sample = run["measurements"][0]["samples"][0]
    start = sample["started_at"] - run["timeline_start"]
    by_end = {round(start + i + 1): v for i, v in enumerate(sample["intervals_mbps"])}
    assert by_end[1] > 100 and by_end[2] > 100  # before
    assert by_end[4] < 1  # the whole of second 3-4 is dark
    assert max(by_end[8], by_end[9]) > 100  # TCP came back (after its retransmit backoff)
    rows = list(csv.DictReader((tmp_path / "out" / "results.csv").open()))
    assert [r["label"] for r in rows if r["type"] == "event"] == ["link-down node2",
                                                                  "link-up node2"]
    assert (tmp_path / "out" / "plots" / "tput-timeline.png").stat().st_size > 10000


def test_background_load_runs_alongside():
    doc = scenario_doc([pod("a", node="node1", image="kemu/iperf3", port=5201),
                        pod("b", node="node2", image="kemu/iperf3", port=5201)],
                       measurements=[
                           {"name": "load", "type": "iperf3", "from": {"pod": "a"},
                            "to": {"pod": "b"}, "duration": 3, "background": True},
                           {"name": "rtt", "type": "ping", "from": {"pod": "b"},
                            "to": {"pod": "a"}, "count": 5, "interval": 0.2}])
    from pathlib import Path
    from tempfile import TemporaryDirectory

    from kemu.experiment.run import run_experiment
    from kemu.scenario import parse_runs
    with TemporaryDirectory() as out:
        data = run_experiment(parse_runs(doc), Path(out)).data
    load, rtt = data["runs"][0]["measurements"]
    began, ended = load["samples"][0]["started_at"], load["samples"][0]["started_at"] + 3
    assert began <= rtt["samples"][0]["started_at"] < ended  # the ping ran under the load
    assert load["summary"]["throughput_mbps"] > 100 and rtt["summary"]["loss_pct"] == 0


def in_shop(manifest):
    return {**manifest, "metadata": {**manifest["metadata"], "namespace": "shop"}}


# kubectl get -o yaml's shape: several kinds in one List.
SHOP = {"apiVersion": "v1", "kind": "List", "items": [
    {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": "shop",
                                                          "labels": {"team": "shop"}}},
    in_shop(deployment("api", 2)), in_shop(service("api", "api"))]}


@pytest.fixture(scope="module")
def cluster():
    doc = scenario_doc([deployment("web", 2), pod("client", node="node1", port=0,
                                                  image="kemu/sleep"),
                        service("web", "web")], nodes=2)
    doc["cluster"]["networkPolicy"] = {"engine": "canal"}  # flannel alone enforces none
    doc["events"] = [{"at": 0, "action": "scale", "deployment": "web", "replicas": 3},
                     {"at": 1, "action": "delete-pod", "pod": "web-0"},
                     {"at": 2, "action": "apply", "manifest": DENY_WEB},
                     {"at": 3, "action": "delete", "kind": "NetworkPolicy", "name": "deny-web"},
                     {"at": 4, "action": "apply", "manifest": service("late", "web")},
                     {"at": 5, "action": "delete", "kind": "Service", "name": "web"},
                     {"at": 6, "action": "link-set", "link": "node2", "delay": "10ms"},
                     {"at": 7, "action": "link-set", "link": "node2", "delay": "0ms",
                      "bw": "20mbit"},
                     {"at": 8, "action": "apply", "manifest": SHOP},
                     {"at": 9, "action": "apply", "manifest": in_shop(deployment("api", 3))},
                     {"at": 10, "action": "delete", "kind": "Namespace", "name": "shop"},
                     {"at": 11, "action": "apply", "manifest": pod("solo", node="node2")},
                     {"at": 12, "action": "delete", "kind": "Pod", "name": "solo"}]
    with running_cluster(doc) as running:
        yield running


def event(cluster, at):
    return next(e for e in cluster.scenario.events if e.at == at)


def test_objects_change_as_the_events_say(cluster):
    """One cluster through a sequence of changes, each checked where it lands."""
    web = next(s.cluster_ip for s in cluster.scenario.services if s.name == "web")
    assert apply_event(cluster, event(cluster, 0)) == {"created": ["default/web-2"],
                                                       "deleted": []}
    assert eventually(lambda: {curl(cluster, f"http://{web}/") for _ in range(30)} ==
                      {"web-0", "web-1", "web-2"}, timeout=5)

    old = cluster.pods["default/web-0"]
    assert apply_event(cluster, event(cluster, 1)) == {"replacement": "default/web-3"}
    assert "default/web-0" not in cluster.pods
    assert subprocess.run(["ip", "netns", "pids", old.sandbox], capture_output=True).returncode
    assert eventually(lambda: {curl(cluster, f"http://{web}/") for _ in range(30)} ==
                      {"web-1", "web-2", "web-3"}, timeout=5)

    web3 = cluster.pods["default/web-3"].ip
    apply_event(cluster, event(cluster, 2))  # a default-deny for the web pods
    assert eventually(lambda: curl(cluster, f"http://{web3}:8080/") is None, timeout=3)
    apply_event(cluster, event(cluster, 3))
    assert eventually(lambda: curl(cluster, f"http://{web3}:8080/") == "web-3", timeout=3)

    apply_event(cluster, event(cluster, 4))
    late = event(cluster, 4).objects[0].cluster_ip
    assert eventually(lambda: curl(cluster, f"http://{late}/") is not None, timeout=3)
    apply_event(cluster, event(cluster, 5))
    assert eventually(lambda: curl(cluster, f"http://{web}/") is None, timeout=3)
    assert "default/web" not in cluster.node_rules("node1").replace("default/late", "")


def test_every_kind_is_applied_and_deleted(cluster):
    """kubectl apply of a Namespace, a Deployment and a Service, then of the Deployment with
    more replicas; kubectl delete of the Namespace takes everything in it; a Pod is applied
    and deleted."""
    apply_event(cluster, event(cluster, 8))
    api = next(s for s in cluster.services if s.key == "shop/api").cluster_ip
    assert cluster.store.namespaces()["shop"].labels == {
        "team": "shop", "kubernetes.io/metadata.name": "shop"}  # the API server adds the second
    assert eventually(lambda: {curl(cluster, f"http://{api}/") for _ in range(20)} ==
                      {"api-0", "api-1"}, timeout=5)
    assert apply_event(cluster, event(cluster, 9)) == {}
    assert "shop/api-2" in cluster.pods
    apply_event(cluster, event(cluster, 10))
    assert all(cluster.pods[k].terminating for k in cluster.pods if k.startswith("shop/"))
    assert eventually(lambda: not [k for k in cluster.pods if k.startswith("shop/")])
    assert all(s.namespace != "shop" for s in cluster.services)
    assert eventually(lambda: curl(cluster, f"http://{api}/") is None, timeout=3)
    apply_event(cluster, event(cluster, 11))
    assert cluster.pods["default/solo"].node.name == "node2"
    apply_event(cluster, event(cluster, 12))
    assert eventually(lambda: "default/solo" not in cluster.pods)


def rtt_ms(cluster, target):
    out = in_pod(cluster, "client", "ping", "-n", "-c", "10", "-i", "0.05", target).stdout
    return statistics.median(float(v) for v in __import__("re").findall(r"time=([\d.]+)", out))


def test_link_parameters_change_in_the_middle_of_a_run(cluster):
    remote = next(p.ip for p in cluster.pods.values() if p.node.name == "node2")
    assert rtt_ms(cluster, remote) < 2
    apply_event(cluster, event(cluster, 6))  # node2 sends 10 ms late: +10 ms a round trip
    assert 9.5 < rtt_ms(cluster, remote) < 12
    apply_event(cluster, event(cluster, 7))
    assert rtt_ms(cluster, remote) < 2
    server = next(p for p in cluster.pods.values() if p.node.name == "node2")
    iperf = subprocess.Popen([*cluster.exec_prefix(server), "iperf3", "-s", "-1", "-p", "5299"],
                             stdout=subprocess.DEVNULL)
    time.sleep(0.3)
    try:  # node2 → node1 through node2's 20 Mbit/s
        out = in_pod(cluster, "client", "iperf3", "-c", server.ip, "-p", "5299", "-R", "-t",
                     "2", "-J", timeout=30).stdout
    finally:
        iperf.kill()
        iperf.wait()
    mbps = json.loads(out)["end"]["sum_received"]["bits_per_second"] / 1e6
    assert 15 < mbps <= 20.5, mbps


ZONES = {"name": "zones", "wan": {"delay": "10ms"}}


def test_zones_put_the_wan_between_zones_only():
    doc = scenario_doc([pod(f"p{i}", node=f"node{i}") for i in range(1, 5)], nodes=4)
    doc["topology"] = ZONES
    with running_cluster(doc) as cluster:
        labels = {n.name: n.labels["topology.kubernetes.io/zone"]
                  for n in cluster.scenario.cluster.nodes}
        assert labels == {"node1": "zone-a", "node2": "zone-a", "node3": "zone-b",
                          "node4": "zone-b"}

        def rtt(a, b):
            out = in_pod(cluster, a, "ping", "-n", "-c", "10", "-i", "0.05",
                         cluster.pods[f"default/{b}"].ip).stdout
            return statistics.median(float(v) for v in
                                     __import__("re").findall(r"time=([\d.]+)", out))

        assert rtt("p1", "p2") < 2 and rtt("p3", "p4") < 2  # within a zone: no WAN
        assert 18 <= rtt("p1", "p3") <= 22  # 10 ms each way across the WAN, ±10 %
        cluster.set_link("wan", up=False)
        assert in_pod(cluster, "p1", "ping", "-c", "1", "-W", "1",
                      cluster.pods["default/p3"].ip).returncode != 0
        assert rtt("p1", "p2") < 2  # zone-a still works on its own
        cluster.set_link("wan", up=True)
        assert eventually(lambda: in_pod(cluster, "p1", "ping", "-c", "1", "-W", "1",
                                         cluster.pods["default/p4"].ip).returncode == 0)



def test_prefer_close_keeps_traffic_in_the_clients_zone():
    """trafficDistribution: PreferClose — a node's kube-proxy sends to its own zone's
    endpoints while there are any (pkg/proxy/topology.go), to the others when there are
    none."""
    pods = [pod(f"web{i}", node=f"node{i}") for i in range(1, 5)]
    for p in pods:
        p["metadata"]["labels"] = {"app": "web"}
    close = service("close", "web")
    close["spec"]["trafficDistribution"] = "PreferClose"
    doc = scenario_doc([*pods, close, pod("client", node="node1", port=0, image="kemu/sleep")],
                       nodes=4)
    doc["topology"] = ZONES
    with running_cluster(doc) as cluster:
        ip = next(s.cluster_ip for s in cluster.scenario.services if s.name == "close")
        assert {curl(cluster, f"http://{ip}/") for _ in range(20)} == {"web1", "web2"}
        for name in ("default/web1", "default/web2"):
            cluster.delete_pod(name)
        assert eventually(lambda: {curl(cluster, f"http://{ip}/") for _ in range(10)} ==
                          {"web3", "web4"}, timeout=10)
