"""The commands each backend issues for its hooks, in order, on a three-node cluster: start,
join every node, add_peers on every node, remove_peers of node3 on the others, leave of
node3, stop. Recorded, not run (see recorder.py); the integration tests run them."""

import ipaddress
from pathlib import Path

import pytest

from kemu import registry
from kemu.backend import K8sNode, PodNetwork
from kemu.k8s.ipam import SubnetLeaseStore
from kemu.kernel.records import RunState

from .recorder import Recorder, install

HERE = Path(__file__).parent / "backends"
NODES = ("node1", "node2", "node3")
CASES = [(name, {}) for name in sorted(registry.backends())] + \
    [("calico-bgp", {"routeReflectors": ["node1"]})]


def fake_node(name: str, pid: int) -> K8sNode:
    """A node as the backends see it: a name and a network namespace to run commands in."""
    node = object.__new__(K8sNode)
    node.name, node.pid = name, pid
    return node


@pytest.mark.parametrize("name, options", CASES,
                         ids=[n + ("-rr" if o else "") for n, o in CASES])
def test_backend_commands(name, options, golden, tmp_path, monkeypatch):
    state = RunState("test", tmp_path, {"run_id": "test", **{k: [] for k in RunState.KINDS}})
    nodes = {n: fake_node(n, 900_001 + i) for i, n in enumerate(NODES)}
    recorder = Recorder(tmp_path, {node.netns_path: n for n, node in nodes.items()})
    install(monkeypatch, recorder)
    cls = registry.backends()[name]
    backend = cls(PodNetwork(ipaddress.IPv4Network("10.244.0.0/16"), 1500, tmp_path, state),
                  options)
    store = SubnetLeaseStore(ipaddress.IPv4Network("10.244.0.0/16"), cls.subnet_len)
    leases = {n: store.acquire(n, ipaddress.IPv4Address("172.18.0.2") + i)
              for i, n in enumerate(NODES)}

    def step(title, action):
        recorder.lines.append(f"## {title}")
        action()
        recorder.files_written()

    step("start", backend.start)
    for n in NODES:
        step(f"join {n}", lambda n=n: backend.join(nodes[n], leases[n]))
    for n in NODES:
        others = [leases[o] for o in NODES if o != n]
        step(f"add_peers {n}", lambda n=n, others=others: backend.add_peers(nodes[n], others))
    for n in NODES[:2]:
        step(f"remove_peers {n} (node3)",
             lambda n=n: backend.remove_peers(nodes[n], [leases["node3"]]))
    step("leave node3", lambda: backend.leave(nodes["node3"], leases["node3"]))
    step("stop", backend.stop)
    suffix = "-rr" if options else ""
    golden(HERE / f"{name}{suffix}.txt", recorder.text())
