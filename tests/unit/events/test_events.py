"""A scenario's timeline (events, background measurements) and the zones topology: checked
before anything is built, every problem named by its field."""

import pytest

from kemu.errors import ScenarioError
from kemu.scenario import parse_scenario
from kemu.scenario.objects import PodSpec, Rollout, replacement, scale
from kemu_topologies.zones import ZONE_LABEL
from tests.unit.scenario.test_scenario import scenario

WEB = PodSpec(name="web")


def with_events(*events, **changes):
    doc = scenario(**changes)
    doc["events"] = list(events)
    return doc


def problems(doc):
    with pytest.raises(ScenarioError) as e:
        parse_scenario(doc, "s.yaml")
    return [(p.where, p.what) for p in e.value.problems]


def test_events_come_in_time_order_with_their_targets():
    spec = parse_scenario(with_events(
        {"at": 5, "action": "node-up", "node": "node2"},
        {"at": 1, "action": "node-down", "node": "node2"},
        {"at": 3, "action": "link-set", "link": "node1", "delay": "20ms", "bw": 100},
        {"at": 4, "action": "scale", "deployment": "web", "replicas": 3}))
    assert [(e.at, e.action, e.target) for e in spec.events] == [
        (1, "node-down", "node2"), (3, "link-set", "node1"), (4, "scale", "default/web"),
        (5, "node-up", "node2")]
    assert spec.events[1].link == {"bw_mbit": 100.0, "delay_ms": 20.0}
    assert str(spec.events[1]) == "link-set node1 bw=100mbit delay=20ms"


def test_event_targets_must_exist():
    found = problems(with_events(
        {"at": 1, "action": "node-down", "node": "node9"},
        {"at": 1, "action": "link-down", "link": "wan"},
        {"at": 1, "action": "link-set", "link": "node1"},
        {"at": 1, "action": "scale", "deployment": "db", "replicas": 1},
        {"at": 1, "action": "delete-pod", "pod": "web-7"},
        {"at": 1, "action": "delete", "kind": "Service", "name": "web"},
        {"at": 1, "action": "node-up", "node": "node1", "replicas": 2}))
    where = dict(found)
    assert "nodes: node1, node2" in where["events[0].node"]
    assert "node1, node2" in where["events[1].link"]  # no wan in a single-switch topology
    assert "at least one of bw" in where["events[2]"]
    assert "Deployments: default/web" in where["events[3].deployment"]
    assert "no pod default/web-7" in where["events[4].pod"]
    assert "no Service default/web" in where["events[5].name"]
    assert "not a key of node-up" in where["events[6].replicas"]


def test_events_follow_each_other():
    """A pod made by a scale event can be deleted later; its replacement takes a new name."""
    spec = parse_scenario(with_events(
        {"at": 1, "action": "scale", "deployment": "web", "replicas": 3},
        {"at": 2, "action": "delete-pod", "pod": "web-2"},
        {"at": 3, "action": "delete-pod", "pod": "web-3"}))
    assert [e.target for e in spec.events] == ["default/web", "default/web-2", "default/web-3"]
    found = problems(with_events(
        {"at": 1, "action": "scale", "deployment": "web", "replicas": 1},
        {"at": 2, "action": "delete-pod", "pod": "web-1"}))
    assert found == [("events[1].pod", "no pod default/web-1 at that time")]


SERVICE = {"apiVersion": "v1", "kind": "Service", "metadata": {"name": "late"},
           "spec": {"selector": {"app": "web"}, "ports": [{"port": 80, "targetPort": 8080}]}}


def test_applied_services_get_addresses_after_the_others_and_can_be_deleted():
    doc = with_events({"at": 1, "action": "apply", "manifest": SERVICE},
                      {"at": 2, "action": "delete", "kind": "Service", "name": "late"})
    doc["workloads"].append({**SERVICE, "metadata": {"name": "first"}})
    spec = parse_scenario(doc)
    assert [s.name for s in spec.services] == ["kubernetes", "kube-dns", "first"]  # "late" later
    applied = spec.events[0].objects[0]
    assert applied.name == "late"
    assert applied.cluster_ip not in ("", *(s.cluster_ip for s in spec.services))
    assert spec.events[1].kind == "Service"


def test_apply_creates_or_updates_every_kind():
    pod = {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "p", "namespace": "new"},
           "spec": {"containers": [{"name": "c", "image": "kemu/sleep"}]}}
    deployment = {"apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": "api"},
                  "spec": {"replicas": 2, "selector": {"matchLabels": {"app": "api"}},
                           "template": {"metadata": {"labels": {"app": "api"}},
                                        "spec": {"containers": [{"name": "c",
                                                                 "image": "kemu/sleep"}]}}}}
    doc = with_events({"at": 1, "action": "apply", "manifest": pod},
                      {"at": 1, "action": "apply", "manifest": SERVICE},
                      {"at": 2, "action": "apply", "manifest": SERVICE},
                      {"at": 3, "action": "apply", "manifest": deployment},
                      {"at": 4, "action": "delete", "kind": "Deployment", "name": "api"},
                      {"at": 5, "action": "delete", "kind": "Namespace", "name": "new"})
    doc["measurements"][0]["to"] = {"pod": "api-1"}  # made by the event at 3 s
    events = parse_scenario(doc).events
    created, updated = events[1].objects[0], events[2].objects[0]
    assert created.cluster_ip and updated.cluster_ip == created.cluster_ip  # an update keeps it
    assert [str(e) for e in events[3:]] == ["apply Deployment default/api",
                                            "delete Deployment api", "delete Namespace new"]
    found = dict(problems(with_events({"at": 1, "action": "apply", "manifest": pod},
                                      {"at": 2, "action": "apply", "manifest": pod},
                                      {"at": 3, "action": "apply"},
                                      {"at": 4, "action": "delete", "kind": "Pod",
                                       "name": "new/q"})))
    assert "a pod's spec cannot change" in found["events[1]"]
    assert "one of `manifest`" in found["events[2]"]
    assert found["events[3].name"] == "no Pod new/q at that time"


def test_a_background_measurement_needs_one_after_it():
    doc = scenario()
    doc["measurements"][0]["background"] = True
    assert problems(doc)[0][0] == "measurements[0].background"
    doc["measurements"].append({"name": "rtt2", "type": "ping", "from": {"pod": "web-1"},
                                "to": {"pod": "web-0"}})
    assert parse_scenario(doc).measurements[0].background


def test_replica_set_names():
    assert scale(WEB, {"default/web-0", "default/web-1", "default/db-0"}, 4) == \
        (["default/web-2", "default/web-3"], [])
    assert scale(WEB, {"default/web-0", "default/web-1", "default/web-2"}, 1) == \
        ([], ["default/web-2", "default/web-1"])
    assert scale(WEB, {"default/web-1"}, 2) == (["default/web-0"], [])
    assert replacement(WEB, {"default/web-0", "default/web-1"}) == "default/web-2"


def test_zones_label_unlabelled_nodes_half_and_half():
    spec = parse_scenario(scenario(cluster__nodes=4, topology={
        "name": "zones", "wan": {"delay": "10ms", "bw": "100mbit"}}))
    assert [n.labels[ZONE_LABEL] for n in spec.cluster.nodes] == \
        ["zone-a", "zone-a", "zone-b", "zone-b"]
    assert spec.topology.wan.delay_ms == 10 and spec.topology.wan.bw_mbit == 100
    assert parse_scenario(with_events({"at": 1, "action": "link-down", "link": "wan"},
                                      topology={"name": "zones"})).events[0].target == "wan"


def test_zones_need_two_zones_and_all_or_no_labels():
    def nodes(*zones):
        return [{"name": f"n{i}", **({"labels": {ZONE_LABEL: z}} if z else {})}
                for i, z in enumerate(zones)]
    zones = {"name": "zones"}
    assert "all" not in str(problems(scenario(cluster__nodes=nodes("a", "b", "c"),
                                              topology=zones)))
    assert "two zones" in problems(scenario(cluster__nodes=nodes("a", "b", "c"),
                                            topology=zones))[0][1]
    assert "label every node" in problems(scenario(cluster__nodes=nodes("a", None),
                                                   topology=zones))[0][1]
    assert problems(scenario(topology={"wan": {"delay": "1ms"}}))[0][0] == "topology.wan"


def test_a_name_means_one_pod_for_the_whole_run():
    """Scaling up after a deletion does not bring the deleted pod's name back."""
    used = {"default/web-0", "default/web-1", "default/web-2"}
    assert scale(WEB, {"default/web-1", "default/web-2"}, 3, used) == (["default/web-3"], [])
    spec = parse_scenario(with_events(
        {"at": 1, "action": "delete-pod", "pod": "web-0"},
        {"at": 2, "action": "scale", "deployment": "web", "replicas": 3},
        {"at": 3, "action": "delete-pod", "pod": "web-3"}))
    assert [e.target for e in spec.events][-1] == "default/web-3"
    assert problems(with_events({"at": 1, "action": "delete-pod", "pod": "web-0"},
                                {"at": 2, "action": "scale", "deployment": "web",
                                 "replicas": 3},
                                {"at": 3, "action": "delete-pod", "pod": "web-0"}))


def test_node_and_link_state_follow_the_events():
    found = problems(with_events({"at": 1, "action": "node-down", "node": "node2"},
                                 {"at": 2, "action": "node-down", "node": "node2"},
                                 {"at": 3, "action": "node-up", "node": "node1"}))
    assert found == [("events[1].node", "node node2 is already down then"),
                     ("events[2].node", "node node1 is already up then")]
    # jitter is checked against the delay the link has then, not against no delay
    doc = with_events({"at": 1, "action": "link-set", "link": "node1", "jitter": "2ms"},
                      {"at": 2, "action": "link-set", "link": "node1", "delay": "1ms"})
    doc["topology"] = {"link": {"delay": "10ms"}}
    assert problems(doc) == [("events[1].jitter", "jitter larger than the delay would need "
                                                  "packets to leave before they were sent")]


def test_unknown_topology_with_events_is_one_clear_problem():
    found = problems(with_events({"at": 1, "action": "link-down", "link": "wan"},
                                 topology={"name": "mesh"}))
    assert [w for w, _ in found] == ["topology.name"]


def test_a_background_server_port_is_not_shared():
    doc = scenario()
    iperf = {"type": "iperf3", "from": {"pod": "web-0"}, "to": {"pod": "web-1"}}
    doc["measurements"] = [{"name": "load", "background": True, **iperf},
                           {"name": "again", **iperf}]
    assert "again would start its iperf3 server" in problems(doc)[0][1]


def test_rollout_limits_round_as_the_deployment_controller_does():
    # pkg/controller/deployment/util: maxSurge rounds up, maxUnavailable down; never both 0.
    assert Rollout().limits(4) == (1, 1)
    assert Rollout().limits(3) == (1, 0)
    assert Rollout(max_surge=0, max_unavailable="10%").limits(5) == (0, 1)
    assert Rollout(max_surge="50%", max_unavailable=2).limits(3) == (2, 2)


def test_a_rollout_replaces_the_pods_under_new_names():
    doc = with_events({"at": 1, "action": "rollout", "deployment": "web"})
    doc["measurements"][0]["to"] = {"pod": "web-3"}  # the rollout's second new pod
    (event,) = parse_scenario(doc).events
    assert event.pods == ("default/web-2", "default/web-3")
    strategy = {"type": "RollingUpdate", "rollingUpdate": {"maxSurge": 0,
                                                            "maxUnavailable": "0%"}}
    doc["workloads"][0]["spec"]["strategy"] = strategy
    assert ("workloads[0].spec.strategy.rollingUpdate.maxUnavailable",
            "may not be 0 when `maxSurge` is 0") in problems(doc)
