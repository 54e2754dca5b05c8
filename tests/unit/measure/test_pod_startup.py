"""pod-startup, the kind added as one module: its checks, summary, line and CSV rows."""

import pytest

from kemu.errors import ScenarioError
from kemu.measure.pod_startup import PodStartup
from kemu.report import describe
from kemu.scenario import parse_scenario
from tests.unit.scenario.test_scenario import scenario


def with_startup(**fields):
    doc = scenario()
    doc["measurements"] = [{"name": "startup", "type": "pod-startup", **fields}]
    return doc


def test_it_needs_a_deployment_and_runs_from_no_place():
    (spec,) = parse_scenario(with_startup(deployment="web", pods=3)).measurements
    assert spec.source is None and spec.target is None
    assert spec.params == {"repeat": 1, "warmup": 0, "deployment": "web",
                           "namespace": "default", "pods": 3, "timeout": 30.0}
    with pytest.raises(ScenarioError) as err:
        parse_scenario(with_startup(deployment="api", **{"from": {"pod": "web-0"}},
                                    to={"pod": "web-1"}), "s.yaml")
    assert [str(p) for p in err.value.problems] == [
        "s.yaml: measurements[0].from: a pod-startup measurement runs from no place of the "
        "cluster; it has no `from`",
        "s.yaml: measurements[0].to: a pod-startup measurement starts pods of its "
        "`deployment`; it has no `to`",
        "s.yaml: measurements[0].deployment: name the Deployment to start pods of "
        "(Deployments: default/web)"]


def test_other_kinds_still_need_from():
    doc = scenario()
    del doc["measurements"][0]["from"]
    with pytest.raises(ScenarioError) as err:
        parse_scenario(doc, "s.yaml")
    assert [str(p) for p in err.value.problems] == [
        "s.yaml: measurements[0]: a ping measurement needs `from`"]


SAMPLES = [{"repeat": 0, "started_at": 5.0, "pods": [
    {"pod": "web-2", "node": "node1", "startup_ms": 100.0},
    {"pod": "web-3", "node": "node2", "startup_ms": 300.0}]},
    {"repeat": 1, "started_at": 9.0, "pods": [
        {"pod": "web-4", "node": "node1", "startup_ms": 200.0},
        {"pod": "web-5", "node": "node2", "error": "not ready after 30 s"}]}]


def test_summary_of_every_pod_and_the_ci_of_the_per_repeat_p50():
    summary = PodStartup.summarize(SAMPLES)
    assert (summary["pods"], summary["errors"]) == (4, 1)
    assert (summary["startup_min_ms"], summary["startup_p50_ms"],
            summary["startup_max_ms"]) == (100.0, 200.0, 300.0)
    assert summary["startup_p50_ms_ci95"] == pytest.approx(12.706 * 70.711 / 1.4142, rel=1e-3)
    line = describe({"type": "pod-startup", "summary": {**summary, "repeats": 2}})
    assert line.startswith("startup p50/p90/p99 200.0/300.0/300.0 ms ±")
    assert line.endswith("4 pods, 1 not ready")


def test_one_csv_row_per_pod():
    assert PodStartup.csv_rows(SAMPLES[1]) == [
        (0, 9.0, "startup_ms", 200.0, "web-4"),
        (1, 9.0, "error", 1, "web-5: not ready after 30 s")]
