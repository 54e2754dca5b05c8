"""What every flannel backend shares: the pods' side of the network."""

from __future__ import annotations

from typing import Any

from kemu.backend import Backend, K8sNode, Lease


def check_port(options: dict[str, Any], default: int) -> list[str]:
    port = options.get("port", default)
    if not isinstance(port, int) or isinstance(port, bool) or not 0 < port < 65536:
        return [f"port must be 1..65535, got {port!r}"]
    return []


def bridge_conflist(backend: Backend, node: K8sNode, lease: Lease) -> dict[str, Any]:
    """What flannel's CNI plugin delegates to, for every flannel backend: the `bridge` plugin
    on cni0 with host-local IPAM over the node's lease and a route to the whole pod network."""
    return {
        "cniVersion": "1.0.0",
        "name": "cbr0",
        "plugins": [{
            "type": "bridge",
            "bridge": "cni0",
            "mtu": backend.mtu,
            "hairpinMode": True,
            "isDefaultGateway": True,
            "ipMasq": False,
            "ipam": {
                "type": "host-local",
                "ranges": [[{"subnet": str(lease.subnet)}]],
                "routes": [{"dst": str(backend.network.cluster_cidr)}],
                "dataDir": str(backend.network.run_dir / "nodes" / node.name / "ipam"),
            },
        }],
    }
