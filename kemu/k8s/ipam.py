"""Node subnet leases out of the pod CIDR.

Pure logic, no kernel state. The lease store follows flannel's subnet manager: each node that
joins leases one subnet (a /24 by default) of the cluster network and keeps it until it leaves;
a lease carries the node's public (underlay) IP and backend data (e.g. its VTEP MAC), which is
what the other nodes' backends read to program their routes.
"""

from __future__ import annotations

import ipaddress
from dataclasses import dataclass, field
from typing import Any


@dataclass
class Lease:
    node: str
    subnet: ipaddress.IPv4Network
    public_ip: ipaddress.IPv4Address
    backend_data: dict[str, Any] = field(default_factory=dict)


class SubnetLeaseStore:
    """In-process stand-in for flannel's etcd/kube subnet store."""

    def __init__(self, network: ipaddress.IPv4Network, subnet_len: int = 24):
        if subnet_len < network.prefixlen:
            raise ValueError(f"subnet length /{subnet_len} is larger than the network {network}")
        self.network = network
        self.subnet_len = subnet_len
        self._leases: dict[str, Lease] = {}

    def capacity(self) -> int:
        return 2 ** (self.subnet_len - self.network.prefixlen)

    def acquire(self, node: str, public_ip: ipaddress.IPv4Address) -> Lease:
        """Lease the lowest free subnet to `node` (or return the lease it already holds)."""
        if node in self._leases:
            return self._leases[node]
        taken = {lease.subnet for lease in self._leases.values()}
        for subnet in self.network.subnets(new_prefix=self.subnet_len):
            if subnet not in taken:
                lease = Lease(node=node, subnet=subnet, public_ip=public_ip)
                self._leases[node] = lease
                return lease
        raise ValueError(f"pod network {self.network} has no free /{self.subnet_len} left "
                         f"for node {node} ({self.capacity()} leased)")

    def release(self, node: str) -> None:
        self._leases.pop(node, None)

    def get(self, node: str) -> Lease:
        return self._leases[node]

    def leases(self) -> list[Lease]:
        return list(self._leases.values())
