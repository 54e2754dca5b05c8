"""The measurement suite on a real 2-node cluster: tcp-rr (sockperf), tcp-connect (kemu's
probe), http-load (wrk), each with warm-up and repeats, and a port where nothing listens."""

import time

import pytest

from kemu.measure.base import run_measurement, summarize
from kemu.scenario import parse_scenario

from .helpers import eventually, pod, running_cluster, scenario_doc

pytestmark = pytest.mark.integration

SERVICE = {"apiVersion": "v1", "kind": "Service", "metadata": {"name": "web"},
           "spec": {"selector": {"app": "web"}, "ports": [{"port": 80, "targetPort": 8080}]}}


def _web(name, node):
    p = pod(name, node)
    p["metadata"]["labels"] = {"app": "web"}
    return p


WORKLOADS = [_web("web-0", "node1"), _web("web-1", "node2"),
             pod("idle", "node2", image="kemu/sleep", port=0),  # nothing listens
             SERVICE]

MEASUREMENTS = [
    {"name": "rr", "type": "tcp-rr", "from": {"pod": "web-0"}, "to": {"pod": "web-1"},
     "duration": 1, "repeat": 2, "warmup": 1},
    {"name": "rr-node", "type": "tcp-rr", "from": {"pod": "web-0"}, "to": {"node": "node2"},
     "duration": 1, "size": 1000},
    {"name": "connect", "type": "tcp-connect", "from": {"pod": "web-0"},
     "to": {"service": "web"}, "count": 20, "repeat": 2, "warmup": 1},
    {"name": "connect-closed", "type": "tcp-connect", "from": {"pod": "web-0"},
     "to": {"pod": "idle"}, "port": 9, "count": 5},
    {"name": "load", "type": "http-load", "from": {"pod": "web-0"}, "to": {"service": "web"},
     "duration": 1, "connections": 4, "threads": 2, "repeat": 2, "warmup": 1},
    {"name": "load-closed", "type": "http-load", "from": {"pod": "web-0"},
     "to": {"pod": "idle"}, "port": 8080, "duration": 1, "connections": 2, "threads": 1},
]


@pytest.fixture(scope="module")
def measured():
    """Every measurement run once on one cluster: name → (samples, summary, seconds taken)."""
    doc = scenario_doc(WORKLOADS, measurements=MEASUREMENTS)
    specs = parse_scenario(doc, "itest").measurements
    out = {}
    with running_cluster(doc) as cluster:
        for spec in specs:
            samples: list = []
            started = time.monotonic()
            run_measurement(cluster, spec, samples.append)
            out[spec.name] = (samples, summarize(spec.type, samples),
                              time.monotonic() - started)
    return out


def _warm_up_left_out(samples, summary, repeats=2):
    assert [s["repeat"] for s in samples] == [-1, *range(repeats)]
    assert samples[0]["warmup"] is True and not any(s.get("warmup") for s in samples[1:])
    assert summary["repeats"] == repeats and summary["warmup_repeats"] == 1


def test_tcp_rr_between_pods_on_two_nodes(measured):
    samples, summary, _ = measured["rr"]
    _warm_up_left_out(samples, summary)
    # Cross-node through VXLAN: tens of µs to a few ms on this machine, never more than 20 ms.
    assert 0.005 < summary["rtt_p50_ms"] < 20
    assert summary["rtt_min_ms"] <= summary["rtt_p50_ms"] <= summary["rtt_p99_ms"] \
        <= summary["rtt_max_ms"]
    assert summary["observations"] > 100 and summary["errors"] == 0
    assert summary["transactions_per_s"] > 100
    assert summary["rtt_p50_ms_ci95"] >= 0
    measured_obs = sum(s["observations"] for s in samples[1:])
    assert summary["observations"] == measured_obs  # the warm-up's are not counted


def test_tcp_rr_to_a_node(measured):
    _, summary, _ = measured["rr-node"]
    assert summary["repeats"] == 1 and "warmup_repeats" not in summary
    assert 0.005 < summary["rtt_p50_ms"] < 20 and "rtt_p50_ms_ci95" not in summary


def test_tcp_connect_to_a_service(measured):
    samples, summary, _ = measured["connect"]
    _warm_up_left_out(samples, summary)
    assert summary["requests"] == 40 and summary["errors"] == 0
    assert 0.005 < summary["connect_p50_ms"] < 20
    assert summary["connect_p50_ms"] <= summary["connect_p99_ms"] <= summary["connect_max_ms"]
    assert "connect_p50_ms_ci95" in summary


def test_tcp_connect_to_a_closed_port_records_refusals(measured):
    samples, summary, took = measured["connect-closed"]
    assert summary["requests"] == 5 and summary["errors"] == 5
    assert summary["error_kinds"] == {"Connection refused": 5}
    assert "connect_p50_ms" not in summary and took < 10


def test_http_load_through_a_service(measured):
    samples, summary, _ = measured["load"]
    _warm_up_left_out(samples, summary)
    assert summary["requests"] > 50 and summary["errors"] == 0
    assert summary["requests"] == sum(s["requests"] for s in samples[1:])
    assert summary["requests_per_s"] > 50 and summary["transfer_mbps"] > 0
    assert 0 < summary["latency_p50_ms"] <= summary["latency_p99_ms"] < 1000
    assert "requests_per_s_ci95" in summary


def test_http_load_to_a_closed_port_fails_clearly(measured):
    samples, summary, took = measured["load-closed"]
    assert summary["requests"] == 0 and "requests_per_s" not in summary
    assert "Connection refused" in summary["error"] or "unable to connect" in summary["error"]
    assert took < 15


def test_pod_startup_times_new_pods_until_ready_and_scales_back():
    """pod-startup scales a Deployment up, times each new pod from its creation to Ready (here
    a readiness probe: its first success), and leaves the Deployment as it found it."""
    deployment = {"apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": "api"},
                  "spec": {"replicas": 1, "selector": {"matchLabels": {"app": "api"}},
                           "template": {"metadata": {"labels": {"app": "api"}}, "spec": {
                               "containers": [{"name": "api", "image": "kemu/http-echo",
                                               "ports": [{"containerPort": 8080}],
                                               "readinessProbe": {
                                                   "httpGet": {"port": 8080},
                                                   "periodSeconds": 1}}]}}}}
    doc = scenario_doc([deployment], measurements=[
        {"name": "startup", "type": "pod-startup", "deployment": "api", "pods": 3,
         "repeat": 2}])
    (spec,) = parse_scenario(doc, "itest").measurements
    samples: list = []
    with running_cluster(doc) as cluster:
        run_measurement(cluster, spec, samples.append)
        assert cluster.replicas("default/api") == ["default/api-0"]  # scaled back
        # The pods scaled away terminate (SIGTERM ends http-echo), then are gone.
        assert eventually(lambda: [s.spec.name for s in cluster.store.pods()] ==
                          ["api-0", "coredns"], timeout=10)
    pods = [p for s in samples for p in s["pods"]]
    assert [p["pod"] for p in pods] == ["api-1", "api-2", "api-3", "api-4", "api-5", "api-6"]
    assert {p["node"] for p in pods} == {"node1", "node2"}  # spread as the scheduler does
    # Created, started (CNI, a Python server), probed: tens of ms at least, and well within
    # the timeout.
    assert all(10 < p["startup_ms"] < 15000 for p in pods), pods
    summary = summarize("pod-startup", samples)
    assert summary["pods"] == 6 and summary["errors"] == 0 and "startup_p50_ms_ci95" in summary


def test_netpol_and_service_latency_time_the_change_reaching_every_node():
    """netpol-latency: a deny policy holds within a reconcile and lets go after its deletion,
    and leaves no policy behind; service-latency: a new Service answers from both nodes, and
    is gone afterwards (its ClusterIP refused from every node)."""
    doc = scenario_doc([pod("client", "node1", image="kemu/sleep", port=0),
                        pod("api", "node2")], measurements=[
        {"name": "np", "type": "netpol-latency", "from": {"pod": "client"},
         "to": {"pod": "api"}, "repeat": 2},
        {"name": "svc", "type": "service-latency", "to": {"pod": "api"}, "repeat": 2}])
    doc["cluster"]["networkPolicy"] = {"engine": "canal"}
    netpol, service = parse_scenario(doc, "itest").measurements
    np_samples: list = []
    svc_samples: list = []
    with running_cluster(doc) as cluster:
        run_measurement(cluster, netpol, np_samples.append)
        assert not cluster.store.policies()
        run_measurement(cluster, service, svc_samples.append)
        assert "kemu-service-latency" not in [s.name for s in cluster.services]
    # The policy agent writes at its next reconcile: well under a second, never at once.
    assert all(0 < s["enforce_ms"] < 5000 and 0 < s["release_ms"] < 5000
               for s in np_samples), np_samples
    assert summarize("netpol-latency", np_samples)["enforce_timeouts"] == 0
    assert all(set(s["node_ms"]) == {"node1", "node2"} and s["all_ms"] is not None
               for s in svc_samples), svc_samples
    assert summarize("service-latency", svc_samples)["timeouts"] == 0
