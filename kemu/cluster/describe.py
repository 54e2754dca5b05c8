"""A cluster as built and as it is now, as results.json, `kemu status` and the shell show it:
its network, nodes, pods (and the images kemu runs stand-ins for), Services with their ready
endpoints, the EndpointSlices with every endpoint's conditions, and the edge's load balancer."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from kemu.k8s.endpoints import ready
from kemu.scenario.objects import PodSpec

if TYPE_CHECKING:
    from kemu.cluster.cluster import Cluster


def describe(cluster: Cluster) -> dict[str, Any]:
    endpoints = cluster.store.endpoints()
    return {
        "cni": cluster.backend.name,
        "kube_proxy_mode": cluster.proxy_mode or None,
        "network_policy_engine": cluster.scenario.cluster.policy_engine or None,
        "timing": cluster.scenario.cluster.timing.describe(),
        "mtu": cluster.backend.mtu,
        "encap_overhead": cluster.backend.encap_overhead,
        "link_emulation": cluster.underlay.describe(),
        "timings": {k: round(v, 3) for k, v in cluster.timings.items()},
        "nodes": cluster.network.describe(),
        "pods": [{"name": p.spec.name, "namespace": p.spec.namespace, "node": p.node.name,
                  "ip": p.ip, "ready": p.ready, **({"terminating": True} if p.terminating else {}),
                  **_stand_ins(p.spec)}
                 for p in cluster.pods.values()],
        "services": [{"name": s.name, "namespace": s.namespace, "type": s.type,
                      "clusterIP": s.cluster_ip or None,
                      "ports": [{"name": p.name, "port": p.port, "protocol": p.protocol,
                                 "targetPort": p.target_port,
                                 **({"nodePort": p.node_port} if p.node_port else {}),
                                 "endpoints": [str(e) for e in
                                               ready(endpoints.get((s.key, p.name), []))]}
                                for p in s.ports],
                      **({"externalName": s.external_name} if s.external_name else {}),
                      **({"loadBalancerIP": s.load_balancer_ip}
                         if s.load_balancer_ip else {})}
                     for s in cluster.services],
        "endpointslices": [{"name": s.name, "namespace": s.namespace, "service": s.service,
                            "ports": [{"name": n, "port": port, "protocol": proto}
                                      for n, port, proto in s.ports],
                            "endpoints": [{"ip": e.ip, "node": e.node, "ready": e.ready,
                                           "serving": e.serving, "terminating": e.terminating,
                                           **({"zone": e.zone} if e.zone else {}),
                                           **({"pod": e.pod} if e.pod else {})}
                                          for e in s.endpoints]}
                           for s in cluster.store.slices()],
        **({"load_balancer": cluster.load_balancer_state(),
            "external_hosts": {n: h.IP() for n, h in cluster.externals.items()}}
           if cluster.edge else {}),
    }


def _stand_ins(spec: PodSpec) -> dict[str, list[str]]:
    """The images of the pod that kemu runs stand-ins for (kemu/images/stand_in.py)."""
    images = sorted({c.image for c in spec.containers if c.stand_in})
    return {"stand_in_for": images} if images else {}
