"""The pod network's agents (what flanneld or calico-node does on every node), driven through
the backend's hooks in their order: each node leases a subnet and joins, every node learns of
the others, each node's CNI config is written where a user can read it; nodes leave (their
peers forget them) and join again with the same lease."""

from __future__ import annotations

import ipaddress
from collections.abc import Callable
from functools import partial
from typing import Any

from kemu.backend import Backend, PodNetwork, get_backend
from kemu.k8s.ipam import Lease, SubnetLeaseStore
from kemu.kernel.cni import NetworkConfigList, find_cni_path
from kemu.kernel.node import K8sNode
from kemu.kernel.records import RunState
from kemu.scenario.model import ClusterSpec

UNDERLAY_MTU = 1500


def with_portmap(conflist: dict[str, Any]) -> dict[str, Any]:
    """The backend's config list with the portmap plugin chained last, as flannel's and
    calico's shipped lists have it: pods' hostPorts (CNI's portMappings capability)."""
    if any(p.get("type") == "portmap" for p in conflist["plugins"]):
        return conflist
    portmap = {"type": "portmap", "capabilities": {"portMappings": True}, "snat": True}
    return {**conflist, "plugins": [*conflist["plugins"], portmap]}


class Network:
    def __init__(self, spec: ClusterSpec, state: RunState):
        backend_cls = get_backend(spec.cni_plugin)
        self.backend: Backend = backend_cls(
            PodNetwork(spec.pod_cidr, UNDERLAY_MTU, state.dir, state), spec.cni_options)
        self.leases = SubnetLeaseStore(spec.pod_cidr, backend_cls.subnet_len)
        self.state = state
        self.nodes: dict[str, K8sNode] = {}
        self.joined: list[str] = []

    def start(self, nodes: dict[str, K8sNode]) -> dict[str, NetworkConfigList]:
        """Every node joins, then learns of every other; returns each node's CNI config."""
        self.nodes = nodes
        self.backend.start()
        for name, node in nodes.items():
            lease = self.leases.acquire(name, ipaddress.IPv4Address(node.IP()))
            self.joined.append(name)
            self.backend.join(node, lease)
        for name, node in nodes.items():
            self.backend.add_peers(node, self._peers_of(name))
        cni_path = find_cni_path()
        configs = {}
        for name, node in nodes.items():
            configs[name] = NetworkConfigList(
                with_portmap(self.backend.cni_config(node, self.leases.get(name))), cni_path)
            configs[name].write(self.state.dir / "nodes" / name / "net.d",
                                f"10-{self.backend.name}.conflist")
        return configs

    def _peers_of(self, name: str) -> list[Lease]:
        return [lease for lease in self.leases.leases()
                if lease.node != name and lease.node in self.joined]

    def leave(self, name: str) -> None:
        """The node's agent goes away: the others forget its lease, its data plane goes."""
        lease = self.leases.get(name)
        self.joined.remove(name)
        for other in self.joined:
            self.backend.remove_peers(self.nodes[other], [lease])
        self.backend.leave(self.nodes[name], lease)

    def join(self, name: str) -> None:
        """The node comes back with its lease (as flannel renews one) and is peered again."""
        lease = self.leases.get(name)
        self.backend.join(self.nodes[name], lease)
        self.joined.append(name)
        for other in self.joined:
            if other != name:
                self.backend.add_peers(self.nodes[other], [lease])
        self.backend.add_peers(self.nodes[name], self._peers_of(name))

    def describe(self) -> list[dict[str, Any]]:
        """Each node's lease and data plane, for results.json."""
        return [{"name": lease.node, "underlay_ip": str(lease.public_ip),
                 "pod_subnet": str(lease.subnet),
                 **({"backend_data": lease.backend_data} if lease.backend_data else {}),
                 "dataplane": self.backend.node_state(self.nodes[lease.node])}
                for lease in self.leases.leases()]

    def stop(self, attempt: Callable[[str, Callable[[], object]], None]) -> None:
        """Every node leaves, then the backend stops; `attempt` runs each step and keeps its
        error, so one failed step leaves nothing else behind."""
        for name in reversed(self.joined):
            attempt(f"node {name}", partial(self.backend.leave, self.nodes[name],
                                            self.leases.get(name)))
            self.leases.release(name)
        self.joined.clear()
        attempt("backend", self.backend.stop)
