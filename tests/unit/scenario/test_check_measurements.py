"""Scenario checking of the measurement suite's types: tcp-rr, tcp-connect, http-load, warm-up."""

import copy

import pytest

from kemu import registry
from kemu.errors import ScenarioError
from kemu.scenario import parse_scenario

BASE = {
    "apiVersion": "kemu/v1", "kind": "Scenario", "metadata": {"name": "t"},
    "cluster": {"nodes": 2, "cni": {"plugin": "flannel-vxlan"}},
    "workloads": [
        {"apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": "web"},
         "spec": {"replicas": 2, "selector": {"matchLabels": {"app": "web"}},
                  "template": {"metadata": {"labels": {"app": "web"}},
                               "spec": {"containers": [{"name": "web", "image": "kemu/http-echo",
                                                        "ports": [{"containerPort": 8080}]}]}}}},
        {"apiVersion": "v1", "kind": "Service", "metadata": {"name": "web"},
         "spec": {"selector": {"app": "web"}, "ports": [{"port": 80, "targetPort": 8080}]}},
    ],
    "measurements": [],
}


def with_measurement(**m):
    doc = copy.deepcopy(BASE)
    doc["measurements"] = [{"name": "m", "from": {"pod": "web-0"}, "to": {"pod": "web-1"}, **m}]
    return doc


def problems(doc):
    with pytest.raises(ScenarioError) as err:
        parse_scenario(doc, "s.yaml")
    return [str(p) for p in err.value.problems]


@pytest.mark.parametrize("kind", ["tcp-rr", "tcp-connect", "http-load"])
def test_new_types_take_their_defaults(kind):
    (spec,) = parse_scenario(with_measurement(type=kind), "s.yaml").measurements
    assert spec.params == registry.measurements()[kind].defaults()
    assert spec.params["warmup"] == 0


def test_every_type_takes_warmup():
    assert all(kind.defaults()["warmup"] == 0 for kind in registry.measurements().values())
    (spec,) = parse_scenario(with_measurement(type="ping", warmup=2, repeat=3),
                             "s.yaml").measurements
    assert spec.params["warmup"] == 2
    found = problems(with_measurement(type="ping", warmup=-1))
    assert any(p.startswith("s.yaml: measurements[0].warmup:") for p in found)


def test_targets_per_type():
    (found,) = problems(with_measurement(type="tcp-rr", to={"service": "web"}))
    assert found == ("s.yaml: measurements[0].to.service: this measurement cannot target a "
                     "service (it can: pod, node, external)")
    specs = parse_scenario(with_measurement(type="tcp-connect", to={"service": "web"}),
                           "s.yaml").measurements
    assert specs[0].target is not None and specs[0].target.port == 80
    (found,) = problems(with_measurement(type="http-load", to={"node": "node2"}))
    assert "cannot target a node" in found


def test_tool_parameter_errors():
    assert problems(with_measurement(type="tcp-rr", duration=1.5)) == [
        "s.yaml: measurements[0].duration: tcp-rr runs for whole seconds (≥ 1); got 1.5"]
    assert problems(with_measurement(type="http-load", timeout=0.5)) == [
        "s.yaml: measurements[0].timeout: wrk's timeout is whole seconds (≥ 1); got 0.5"]
    assert problems(with_measurement(type="tcp-rr", size=8)) == [
        "s.yaml: measurements[0].size: sockperf messages are 14 to 65000 bytes"]
    assert problems(with_measurement(type="http-load", connections=2, threads=4)) == [
        "s.yaml: measurements[0].connections: wrk needs at least one connection per thread "
        "(2 < 4 threads)"]
    assert problems(with_measurement(type="tcp-connect", to={"node": "node2"})) == [
        "s.yaml: measurements[0].port: a tcp-connect to a node needs the `port` to connect to"]
    parse_scenario(with_measurement(type="tcp-connect", to={"node": "node2"}, port=22), "s.yaml")


def test_parameters_of_other_types_are_named():
    (found,) = problems(with_measurement(type="http-load", count=5))
    assert found == ("s.yaml: measurements[0].count: not a parameter of http-load (it takes: "
                     "repeat, warmup, duration, connections, threads, timeout, path, host, port)")
    (found,) = problems(with_measurement(type="ping", connections=5))
    assert "not a parameter of ping" in found
