"""netpol-latency and service-latency: their checks, summaries, lines and CSV rows, and the
connection probe they time with, over loopback."""

import socket
import time

import pytest

from kemu.errors import ScenarioError
from kemu.kernel.exec import HOST
from kemu.measure.netpol_latency import NetpolLatency
from kemu.measure.propagation import connects, until
from kemu.measure.service_latency import ServiceLatency
from kemu.report import describe
from kemu.scenario import parse_scenario
from tests.unit.scenario.test_scenario import scenario


def with_kind(kind, engine=None):
    doc = scenario()
    if engine:
        doc["cluster"]["networkPolicy"] = {"engine": engine}
    doc["measurements"] = [{"name": "m", "type": kind, "from": {"pod": "web-0"},
                            "to": {"pod": "web-1"}}]
    if kind == "service-latency":
        del doc["measurements"][0]["from"]
    return doc


def test_netpol_latency_needs_a_policy_engine():
    with pytest.raises(ScenarioError) as err:
        parse_scenario(with_kind("netpol-latency"), "s.yaml")
    assert [str(p) for p in err.value.problems] == [
        "s.yaml: measurements[0]: netpol-latency times a policy engine, and the cluster has "
        "none (flannel enforces no policy: cluster.networkPolicy: {engine: canal})"]
    (spec,) = parse_scenario(with_kind("netpol-latency", "canal")).measurements
    assert spec.params == {"repeat": 1, "warmup": 0, "port": None, "timeout": 30.0}


def test_service_latency_runs_from_every_node():
    (spec,) = parse_scenario(with_kind("service-latency")).measurements
    assert spec.source is None and spec.target is not None


def test_netpol_latency_summary_line_and_rows():
    samples = [{"started_at": 1.0, "enforce_ms": 100.0, "release_ms": 90.0},
               {"started_at": 2.0, "enforce_ms": 120.0, "release_ms": None},
               {"started_at": 3.0, "enforce_ms": 110.0, "release_ms": 96.0}]
    s = NetpolLatency.summarize(samples)
    assert (s["enforce_p50_ms"], s["enforce_max_ms"], s["enforce_timeouts"]) == (110.0, 120.0, 0)
    assert (s["release_min_ms"], s["release_timeouts"]) == (90.0, 1)
    assert s["enforce_p50_ms_ci95"] > 0
    line = describe({"type": "netpol-latency", "summary": {**s, "repeats": 3}})
    assert line.startswith("enforced after 110.0 ms (p50 ±")
    assert line.endswith("released after 90.0 ms")  # the nearest-rank median
    assert NetpolLatency.csv_rows(samples[1]) == [
        (0, 2.0, "enforce_ms", 120.0, ""), (0, 2.0, "error", 1, "release: timeout")]
    never = NetpolLatency.summarize([{"started_at": 1.0, "enforce_ms": None,
                                      "release_ms": None}])
    assert describe({"type": "netpol-latency", "summary": never}) == \
        "never enforced within the timeout (1 repeats)"


def test_service_latency_summary_takes_the_last_node_of_each_repeat():
    samples = [{"started_at": 1.0, "node_ms": {"node1": 100.0, "node2": 130.0},
                "all_ms": 130.0},
               {"started_at": 2.0, "node_ms": {"node1": 1000.0, "node2": None},
                "all_ms": None}]
    s = ServiceLatency.summarize(samples)
    assert (s["all_p50_ms"], s["timeouts"]) == (130.0, 1)
    assert (s["node_min_ms"], s["node_max_ms"]) == (100.0, 1000.0)
    assert describe({"type": "service-latency", "summary": s}).startswith(
        "every node after 130.0 ms (p50")
    assert ServiceLatency.csv_rows(samples[1]) == [
        (0, 2.0, "reached_ms", 1000.0, "node1"), (1, 2.0, "error", 1, "node2: timeout")]


def test_until_times_a_listener_opening_and_closing():
    with socket.socket() as listener:
        listener.bind(("127.0.0.1", 0))
        port = listener.getsockname()[1]
        assert not connects(HOST, "127.0.0.1", port)  # bound, not listening: refused
        started = time.monotonic()
        assert until(HOST, "127.0.0.1", port, True, started, 0.05) is None
        listener.listen(4)
        opened = until(HOST, "127.0.0.1", port, True, started, 5)
        assert opened is not None and opened >= 50
    closed = until(HOST, "127.0.0.1", port, False, time.monotonic(), 5)
    assert closed is not None and closed < 1000
