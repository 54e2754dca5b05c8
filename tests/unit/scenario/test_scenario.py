"""Scenario checking: valid files load; each kind of bad input names its file and field."""

import copy
from pathlib import Path

import pytest
import yaml

from kemu.errors import ScenarioError
from kemu.scenario import load_runs, load_scenario, parse_runs, parse_scenario

ROOT = Path(__file__).resolve().parents[3]

BASE = {
    "apiVersion": "kemu/v1",
    "kind": "Scenario",
    "metadata": {"name": "t"},
    "cluster": {"nodes": 2, "cni": {"plugin": "flannel-vxlan"}},
    "workloads": [{
        "apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": "web"},
        "spec": {"replicas": 2, "selector": {"matchLabels": {"app": "web"}},
                 "template": {"metadata": {"labels": {"app": "web"}},
                              "spec": {"containers": [{"name": "web",
                                                       "image": "kemu/http-echo"}]}}},
    }],
    "measurements": [{"name": "rtt", "type": "ping", "from": {"pod": "web-0"},
                      "to": {"pod": "web-1"}}],
}


def scenario(**changes):
    doc = copy.deepcopy(BASE)
    for path, value in changes.items():
        target = doc
        *parents, last = path.split("__")
        for part in parents:
            target = target[int(part)] if part.isdigit() else target[part]
        if last.isdigit():
            target[int(last)] = value
        else:
            target[last] = value
    return doc


def problems(doc, file="s.yaml"):
    with pytest.raises(ScenarioError) as err:
        parse_scenario(doc, file)
    return [str(p) for p in err.value.problems]


def test_shipped_scenarios_are_valid():
    for path in sorted((ROOT / "scenarios").glob("*.yaml")):
        assert load_runs(path)


def test_defaults_and_placement():
    s = parse_scenario(scenario())
    assert [n.name for n in s.cluster.nodes] == ["node1", "node2"]
    assert str(s.cluster.pod_cidr) == "10.244.0.0/16"
    assert str(s.cluster.service_cidr) == "10.96.0.0/12"
    # The DNS add-on's pod is scheduled last, so the user's pods keep their placement.
    assert s.placement == {"default/web-0": "node1", "default/web-1": "node2",
                           "kube-system/coredns": "node1"}
    assert s.dns.enabled and s.dns.cluster_ip == "10.96.0.10"
    # Every cluster's `kubernetes` Service, on the range's first address, then cluster DNS.
    assert [(svc.key, svc.cluster_ip) for svc in s.services] == [
        ("default/kubernetes", "10.96.0.1"), ("kube-system/kube-dns", "10.96.0.10")]
    assert s.slices[0].endpoints[0].ip == "172.18.0.2"  # the first node: no API server there
    assert s.measurements[0].params == {"repeat": 1, "warmup": 0, "count": 10, "interval": 0.2,
                                        "size": 56}


def test_unknown_key_is_an_error_with_its_path():
    doc = scenario()
    doc["measurements"][0]["bogus"] = 1
    doc["cluster"]["colour"] = "red"
    found = problems(doc)
    assert any(p.startswith("s.yaml: cluster: unknown field") and "colour" in p for p in found)
    assert any(p.startswith("s.yaml: measurements[0]: unknown field") for p in found)


def test_unknown_pod_names_the_field_and_lists_pods():
    doc = scenario()
    doc["measurements"].append({"name": "x", "type": "ping", "from": {"pod": "web-0"},
                                "to": {"pod": "web-9"}})
    assert problems(doc) == ["s.yaml: measurements[1].to.pod: no pod named 'web-9' in "
                             "namespace 'default' (pods: web-0, web-1)"]


def test_unknown_plugin_lists_installed():
    (found,) = problems(scenario(cluster__cni={"plugin": "weave"}))
    assert "cluster.cni.plugin: unknown CNI backend 'weave'" in found
    assert "flannel-vxlan" in found


def test_all_problems_are_reported_together():
    doc = scenario(cluster__podCIDR="10.96.0.0/16")  # overlaps the service CIDR
    doc["measurements"][0]["to"] = {"pod": "nope"}
    doc["workloads"][0]["spec"]["template"]["spec"]["containers"][0]["image"] = ["nginx"]
    found = problems(doc)
    assert len(found) == 3
    assert any("cluster.serviceCIDR: 10.96.0.0/12 overlaps cluster.podCIDR" in p for p in found)
    assert any("workloads[0].spec.template.spec.containers[0].image: must be a string (an "
               "image reference, e.g. nginx:1.14.2), got list ['nginx']" in p for p in found)


def test_schema_type_errors_have_paths():
    found = problems(scenario(cluster__nodes=0))
    assert any(p.startswith("s.yaml: cluster.nodes:") for p in found)
    found = problems(scenario(measurements__0__type="traceroute"))
    assert any(p.startswith("s.yaml: measurements[0].type:") for p in found)


def test_measurement_parameter_of_another_type():
    doc = scenario()
    doc["measurements"][0]["duration"] = 5
    assert problems(doc) == ["s.yaml: measurements[0].duration: not a parameter of ping "
                             "(it takes: repeat, warmup, count, interval, size)"]


def test_pod_cidr_too_small_for_nodes():
    (found,) = problems(scenario(cluster__nodes=3, cluster__podCIDR="10.244.0.0/23"))
    assert "cluster.podCIDR: 10.244.0.0/23 holds 2 node subnet(s) of /24" in found


def test_bad_link_parameters():
    found = problems(scenario(topology={"link": {"bw": "10mbps", "delay": "soon"}}))
    assert any(p.startswith("s.yaml: topology.link.bw:") for p in found)
    assert any(p.startswith("s.yaml: topology.link.delay:") for p in found)


def test_selector_endpoint_and_node_endpoint():
    doc = scenario()
    doc["measurements"][0]["from"] = {"selector": {"app": "web"}, "index": 1}
    doc["measurements"][0]["to"] = {"node": "node1"}
    m = parse_scenario(doc).measurements[0]
    assert m.source.pod == "default/web-1" and m.target.node == "node1"
    doc["measurements"][0]["to"] = {"node": "node7"}
    assert any("measurements[0].to.node: no node named 'node7'" in p for p in problems(doc))


def test_measuring_to_itself():
    doc = scenario()
    doc["measurements"][0]["to"] = {"pod": "web-0"}
    assert any("measures from web-0 to itself" in p for p in problems(doc))


def test_deployment_selector_must_match_template():
    doc = scenario()
    doc["workloads"][0]["spec"]["selector"]["matchLabels"] = {"app": "other"}
    assert any("spec.template.metadata.labels: selector" in p for p in problems(doc))


def test_unknown_manifest_field_is_error_ignored_field_is_warning():
    doc = scenario()
    container = doc["workloads"][0]["spec"]["template"]["spec"]["containers"][0]
    container["resources"] = {"limits": {"cpu": "1"}}
    s = parse_scenario(doc, "s.yaml")
    assert [str(w) for w in s.warnings] == [
        "s.yaml: workloads[0].spec.template.spec.containers[0].resources: has no effect in "
        "kemu and is ignored"]
    container["sidecarMagic"] = True
    assert any("containers[0].sidecarMagic: unknown field" in p for p in problems(doc))


def test_unsupported_kind_names_supported_ones():
    doc = scenario()
    doc["workloads"].append({"apiVersion": "batch/v1", "kind": "CronJob", "metadata": {}})
    assert any("workloads[1].kind: 'CronJob'" in p and "apps/v1/Deployment" in p
               for p in problems(doc))


def test_pod_scheduling_errors_are_validation_errors():
    doc = scenario()
    doc["workloads"].append({"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "p"},
                             "spec": {"nodeName": "node9",
                                      "containers": [{"name": "c", "image": "kemu/sleep"}]}})
    assert any("nodeName 'node9'" in p for p in problems(doc))


def test_workloads_from_a_multi_document_file(tmp_path):
    (tmp_path / "apps.yaml").write_text(yaml.safe_dump_all([
        {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "a"},
         "spec": {"containers": [{"name": "c", "image": "kemu/sleep"}]}},
        {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "b"},
         "spec": {"containers": [{"name": "c", "image": "kemu/iperf3"}]}},
    ]))
    doc = scenario(workloads=[{"file": "apps.yaml"}], measurements=[])
    (tmp_path / "s.yaml").write_text(yaml.safe_dump(doc))
    s = load_scenario(tmp_path / "s.yaml")
    assert [p.name for p in s.pods if p.namespace == "default"] == ["a", "b"]
    # A problem in the second document names that file and document.
    text = (tmp_path / "apps.yaml").read_text().replace("image: kemu/iperf3", "image: 7")
    (tmp_path / "apps.yaml").write_text(text)
    with pytest.raises(ScenarioError) as err:
        load_scenario(tmp_path / "s.yaml")
    assert str(err.value).startswith(f"{tmp_path / 'apps.yaml'}: document 1.spec.containers[0]"
                                     f".image: must be a string")


def test_missing_workload_file(tmp_path):
    (tmp_path / "s.yaml").write_text(yaml.safe_dump(scenario(workloads=[{"file": "x.yaml"}],
                                                             measurements=[])))
    with pytest.raises(ScenarioError, match=r"workloads\[0\].file: cannot read"):
        load_scenario(tmp_path / "s.yaml")


def test_yaml_syntax_error_names_line(tmp_path):
    path = tmp_path / "s.yaml"
    path.write_text("apiVersion: kemu/v1\nkind: [unclosed\n")
    with pytest.raises(ScenarioError, match=r"s.yaml: line \d+, column \d+: not valid YAML"):
        load_scenario(path)


def test_matrix_expands_every_combination_in_order():
    doc = scenario(matrix={"cluster.cni.plugin": ["flannel-vxlan", "calico-bgp"],
                           "topology.link.bw": ["100mbit", "1gbit"]})
    runs = parse_runs(doc)
    assert [r.params for r in runs] == [
        {"cluster.cni.plugin": p, "topology.link.bw": b}
        for p in ("flannel-vxlan", "calico-bgp") for b in ("100mbit", "1gbit")]
    assert runs[3].scenario.cluster.cni_plugin == "calico-bgp"
    assert runs[3].scenario.topology.link.bw_mbit == 1000.0
    assert runs[3].label == "plugin=calico-bgp, bw=1gbit"
    assert "matrix" in doc  # the input is left as it was


def test_a_matrix_list_names_its_combinations():
    doc = scenario(matrix=[{"cluster.cni.plugin": "flannel-vxlan",
                            "cluster.networkPolicy.engine": "canal"},
                           {"cluster.cni.plugin": "calico-bgp",
                            "cluster.networkPolicy.engine": "calico"}])
    runs = parse_runs(doc)
    assert [r.label for r in runs] == ["plugin=flannel-vxlan, engine=canal",
                                       "plugin=calico-bgp, engine=calico"]
    assert runs[1].scenario.cluster.policy_engine == "calico"
    assert any("matrix" in p for p in problems_of_runs(scenario(matrix=[])))
    twice = [{"cluster.nodes": 2}, {"cluster.nodes": 2}]
    assert "s.yaml: matrix[1]: the same combination as matrix[0]" in \
        problems_of_runs(scenario(matrix=twice))


def test_matrix_values_are_checked_per_combination_before_anything_runs():
    doc = scenario(matrix={"cluster.cni.plugin": ["flannel-vxlan", "weave"]})
    found = problems_of_runs(doc)
    assert len(found) == 1
    assert found[0].startswith("s.yaml: matrix[cluster.cni.plugin=weave] cluster.cni.plugin: "
                               "unknown CNI backend 'weave'")


def test_matrix_shape_errors():
    assert any("matrix" in p for p in problems_of_runs(scenario(matrix={"x": "notalist"})))
    assert any("matrix" in p for p in problems_of_runs(scenario(matrix={"nodots": [1]})))


def test_load_scenario_refuses_a_matrix(tmp_path):
    path = tmp_path / "s.yaml"
    path.write_text(yaml.safe_dump(scenario(matrix={"cluster.nodes": [2, 3]})))
    with pytest.raises(Exception, match="matrix of 2 runs"):
        load_scenario(path)


def test_too_many_pods_for_a_calico_block():
    doc = scenario(cluster__cni={"plugin": "calico-bgp"}, cluster__nodes=1, measurements=[])
    doc["workloads"][0]["spec"]["replicas"] = 61  # + the DNS pod
    (found,) = problems(doc)
    assert "node node1 would run 62 pods, but its /26 (calico-bgp) holds 61" in found


def problems_of_runs(doc):
    with pytest.raises(ScenarioError) as err:
        parse_runs(doc, "s.yaml")
    return [str(p) for p in err.value.problems]


def test_objects_are_named_as_kubectl_users_name_them():
    doc = scenario()
    doc["workloads"][0]["metadata"]["namespace"] = "shop"
    doc["measurements"] = [{"name": "rtt", "type": "ping", "from": {"pod": "shop/web-0"},
                            "to": {"pod": "web-1", "namespace": "shop"}}]
    doc["events"] = [{"at": 1, "action": "scale", "deployment": "shop/web", "replicas": 3}]
    s = parse_scenario(doc)
    assert (s.measurements[0].source.pod, s.measurements[0].target.pod) == \
        ("shop/web-0", "shop/web-1")
    assert s.events[0].target == "shop/web"


def test_a_measurement_may_name_a_pod_an_event_makes():
    doc = scenario(events=[{"at": 1, "action": "scale", "deployment": "web", "replicas": 3}])
    doc["measurements"][0]["to"] = {"pod": "web-2"}
    assert parse_scenario(doc).measurements[0].target.pod == "default/web-2"
    doc["measurements"][0]["to"] = {"pod": "web-3"}
    assert problems(doc) == ["s.yaml: measurements[0].to.pod: no pod named 'web-3' in "
                             "namespace 'default' (pods: web-0, web-1; made by events: web-2)"]
