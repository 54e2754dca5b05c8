import pytest

from kemu.scenario.objects import Container, ContainerPort, NodeSpec, PodSpec
from kemu.scenario.scheduler import SchedulingError, schedule

NODES = [NodeSpec("a", {"zone": "x"}), NodeSpec("b", {"zone": "y"}), NodeSpec("c", {"zone": "y"})]


def test_replicas_spread_over_nodes():
    pods = [PodSpec(f"web-{i}") for i in range(4)]
    assert list(schedule(pods, NODES).values()) == ["a", "b", "c", "a"]


def test_node_name_pins_and_counts_towards_load():
    pods = [PodSpec("pinned", node_name="a"), PodSpec("free")]
    assert schedule(pods, NODES) == {"default/pinned": "a", "default/free": "b"}


def test_node_selector_filters():
    pods = [PodSpec(f"p{i}", node_selector={"zone": "y"}) for i in range(3)]
    assert set(schedule(pods, NODES).values()) == {"b", "c"}


def test_unknown_node_name_and_unsatisfiable_selector():
    with pytest.raises(SchedulingError, match="nodeName 'z'"):
        schedule([PodSpec("p", node_name="z")], NODES)
    with pytest.raises(SchedulingError, match="no node matches"):
        schedule([PodSpec("p", node_selector={"zone": "q"})], NODES)


def test_a_full_node_takes_no_more_pods():
    """kubelet's maxPods: the scheduler skips a full node; a pod pinned to one is refused."""
    nodes = [NodeSpec("n1"), NodeSpec("n2")]
    assert schedule([PodSpec(f"p{i}") for i in range(4)], nodes, max_pods=2) == {
        "default/p0": "n1", "default/p1": "n2", "default/p2": "n1", "default/p3": "n2"}
    with pytest.raises(SchedulingError, match="already runs 2 pods"):
        schedule([PodSpec(f"p{i}") for i in range(4)] + [PodSpec("x", node_name="n1")],
                 nodes, max_pods=2)
    with pytest.raises(SchedulingError, match="Too many pods"):
        schedule([PodSpec(f"p{i}") for i in range(5)], nodes, max_pods=2)


def with_host_port(name, port, node="", ip="", protocol="TCP"):
    container = Container("c", "kemu/http-echo",
                          ports=(ContainerPort(8080, protocol=protocol, host_port=port,
                                               host_ip=ip),))
    return PodSpec(name, containers=(container,), node_name=node)


def test_host_ports_keep_pods_apart_as_kube_scheduler_does():
    # kube-scheduler's NodePorts filter: one node, one pod per (protocol, hostPort, address).
    pods = [with_host_port("a", 80), with_host_port("b", 80), with_host_port("u", 80,
                                                                            protocol="UDP")]
    assert schedule(pods, NODES[:2]) == {"default/a": "a", "default/b": "b", "default/u": "a"}
    apart = [with_host_port("x", 80, ip="10.0.0.1"), with_host_port("y", 80, ip="10.0.0.2")]
    assert schedule(apart, NODES[:1]) == {"default/x": "a", "default/y": "a"}
    with pytest.raises(SchedulingError, match="hostPort it asks for is already taken on node a"):
        schedule([with_host_port("p", 80, "a"), with_host_port("q", 80, "a", ip="1.2.3.4")],
                 NODES)
    with pytest.raises(SchedulingError, match="didn't have free ports"):
        schedule([with_host_port(n, 80) for n in "pqr"], NODES[:2])
