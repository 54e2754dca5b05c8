"""The CNI backend plugin API: how a cross-node pod network plugs into kemu.

A backend is what flanneld (or calico-node) does on every node: given the node's subnet lease,
build the node's part of the cross-node data plane, learn about the other nodes' leases as they
come and go, and tell the node's pods how to attach (a CNI network config list, as kubelet finds
in /etc/cni/net.d). kemu drives it in this order:

    start()                                  once, before any node joins
    join(node, lease)                        per node; may publish data in lease.backend_data
    add_peers(node, [peer leases])           per node, with the other nodes that have joined
    cni_config(node, lease)                  per node; kemu writes it and calls the CNI plugins
    remove_peers(node, [peer leases])        on the other nodes when a node leaves
    leave(node, lease)                       when a node leaves, and at the end
    stop()                                   once, at the end

Peer events come in batches, as flannel's lease watch delivers them, so a backend can apply
many at once (calico reconfigures BIRD once per batch, not once per peer). A node that left
can join again with the same lease.

Every hook runs real commands inside the node (`node.run`, `node.ip_batch`: kemu's checked
runner) and starts daemons with `Daemon`. Teardown hooks must tolerate partial set-up: a
backend whose join failed halfway still gets `leave`. A backend declares what it needs of the
machine in `requires` (kemu doctor's capability names), so `kemu doctor` and the checks before
a run say what cannot run without it.

Backends are found by name in the `kemu.backends` entry-point group; the ones shipped with kemu
(plugins/) register there too. Everything a backend needs is importable from this module. See
docs/plugins.md for a worked example.
"""

from __future__ import annotations

import ipaddress
from abc import ABC, abstractmethod
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, ClassVar

from kemu.clock import patience
from kemu.errors import CommandError, KemuError
from kemu.k8s.ipam import Lease
from kemu.kernel.exec import HOST, run
from kemu.kernel.node import UNDERLAY_INTF, K8sNode
from kemu.kernel.processes import DEVNULL, PIPE, Daemon, find_binary
from kemu.registry import load_group, lookup

if TYPE_CHECKING:
    from kemu.kernel.records import RunState

__all__ = ["DEVNULL", "HOST", "PIPE", "UNDERLAY_INTF", "Backend", "CommandError", "Daemon",
           "K8sNode", "KemuError", "Lease", "PodNetwork", "available_backends", "find_binary",
           "get_backend", "patience", "run"]

ENTRY_POINT_GROUP = "kemu.backends"


@dataclass(frozen=True)
class PodNetwork:
    """What every backend of a cluster shares."""

    cluster_cidr: ipaddress.IPv4Network
    underlay_mtu: int
    run_dir: Path  # kemu's own directory for this run (CNI state, daemon configs)
    state: RunState  # records daemons a backend starts, so they are always stopped


class Backend(ABC):
    name: ClassVar[str]
    description: ClassVar[str]
    encap_overhead: ClassVar[int] = 0  # bytes each pod packet gains on the underlay
    subnet_len: ClassVar[int] = 24  # size of each node's lease
    requires: ClassVar[tuple[str, ...]] = ()  # kemu doctor's capabilities it cannot run without
    # The NetworkPolicy engine it brings ("calico"), or "" for none (flannel enforces none).
    policy_engine: ClassVar[str] = ""

    def __init__(self, network: PodNetwork, options: dict[str, Any]):
        self.network = network
        self.options = options

    @classmethod
    def check_options(cls, options: dict[str, Any], nodes: tuple[str, ...] = ()) -> list[str]:
        """Problems with the scenario's `cluster.cni.options`, one string each (pure); `nodes`
        are the cluster's node names, for options that name nodes."""
        return [f"unknown option {key!r} (this backend takes none)" for key in options]

    @property
    def mtu(self) -> int:
        """The pod interface MTU: whatever the encapsulation leaves of the underlay's."""
        return self.network.underlay_mtu - self.encap_overhead

    def start(self) -> None:  # noqa: B027 (optional hook)
        """Cluster-wide set-up before any node joins."""

    @abstractmethod
    def join(self, node: K8sNode, lease: Lease) -> None:
        """Build the node's data plane for its lease."""

    @abstractmethod
    def add_peers(self, node: K8sNode, peers: list[Lease]) -> None:
        """Make `node` reach the pods of `peers` (a peer already known is updated)."""

    @abstractmethod
    def remove_peers(self, node: K8sNode, peers: list[Lease]) -> None:
        """Forget `peers` (idempotent)."""

    @abstractmethod
    def cni_config(self, node: K8sNode, lease: Lease) -> dict[str, Any]:
        """The CNI network config list (conflist) for pods on `node`."""

    @abstractmethod
    def leave(self, node: K8sNode, lease: Lease) -> None:
        """Undo join: the node's agent stops and its devices go (idempotent; may follow a
        failed join). The node may join again later."""

    def stop(self) -> None:  # noqa: B027 (optional hook)
        """Cluster-wide teardown."""

    def node_state(self, node: K8sNode) -> dict[str, Any]:
        """What to show of this node's data plane (devices, routes) in status and results."""
        return {}


def available_backends() -> dict[str, type[Backend]]:
    """Every installed backend by name (shipped and third-party)."""
    return load_group(ENTRY_POINT_GROUP)


def get_backend(name: str) -> type[Backend]:
    return lookup(ENTRY_POINT_GROUP, name, "CNI backend")
