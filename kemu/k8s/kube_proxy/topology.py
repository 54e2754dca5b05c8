"""Which endpoints one node's kube-proxy sends a service port's traffic to, as kube-proxy's
CategorizeEndpoints decides (kubernetes pkg/proxy/topology.go, KEP-1669 for terminating
endpoints). Pure.

- Cluster traffic policy: the ready endpoints anywhere; when none is ready anywhere, those
  still serving while they terminate.
- Local traffic policy (internalTrafficPolicy or, for externally reachable ports,
  externalTrafficPolicy): this node's ready endpoints; when it has none, its serving
  terminating ones.
- The endpoints the node needs a KUBE-SEP chain for: the union of both.
- trafficDistribution PreferClose: the EndpointSlice controller hints each endpoint for its
  own zone (when every endpoint has one), and a node with a zone uses only the endpoints
  hinted for it, while there are any (kube-proxy's topologyModeFromHints).
"""

from __future__ import annotations

from dataclasses import dataclass

from kemu.k8s.endpoints import Endpoint
from kemu.scenario.objects import Service, ServicePort


def externally_accessible(svc: Service, port: ServicePort) -> bool:
    """Reachable from outside the cluster: a node port, an external IP or a load balancer's."""
    return bool(port.node_port or svc.external_ips or svc.load_balancer_ip)


def external_policy_local(svc: Service, port: ServicePort) -> bool:
    return svc.external_traffic_policy == "Local" and externally_accessible(svc, port)


def internal_policy_local(svc: Service) -> bool:
    return svc.internal_traffic_policy == "Local"


def uses_cluster_endpoints(svc: Service, port: ServicePort) -> bool:
    # External traffic from a pod or the node itself short-circuits to the Cluster policy
    # chain even under externalTrafficPolicy Local, so any externally reachable port needs it.
    return not internal_policy_local(svc) or externally_accessible(svc, port)


def uses_local_endpoints(svc: Service, port: ServicePort) -> bool:
    return internal_policy_local(svc) or external_policy_local(svc, port)


@dataclass(frozen=True)
class Categorized:
    cluster: list[Endpoint]  # for the Cluster policy (KUBE-SVC-*)
    local: list[Endpoint]  # this node's, for the Local policy (KUBE-SVL-*)
    reachable: list[Endpoint]  # every endpoint this node may send to (one KUBE-SEP-* each)
    any: bool  # usable endpoints exist somewhere in the cluster


def categorize(endpoints: list[Endpoint], svc: Service, port: ServicePort,
               node: str, zone: str = "") -> Categorized:
    """`endpoints` in kube-proxy's order (by "IP:port"); every list keeps that order. `zone`:
    the node's topology.kubernetes.io/zone ("" for none)."""
    def serving_terminating(ep: Endpoint) -> bool:
        return ep.serving and ep.terminating

    cluster: list[Endpoint] = []
    any_usable = False
    if uses_cluster_endpoints(svc, port):
        ready = [ep for ep in endpoints if ep.ready]
        # Hints (PreferClose) count only among ready endpoints, and only if each has one.
        hinted = svc.traffic_distribution == "PreferClose" and all(ep.zone for ep in ready)
        if zone and hinted and any(ep.zone == zone for ep in ready):
            ready = [ep for ep in ready if ep.zone == zone]
        cluster = ready or [ep for ep in endpoints if serving_terminating(ep)]
        any_usable = bool(cluster)
    if not uses_local_endpoints(svc, port):
        return Categorized(cluster, [], cluster, any_usable)
    any_usable = any_usable or any(ep.ready or serving_terminating(ep) for ep in endpoints)
    mine = [ep for ep in endpoints if ep.node == node]
    local = [ep for ep in mine if ep.ready] or [ep for ep in mine if serving_terminating(ep)]
    if not uses_cluster_endpoints(svc, port):
        return Categorized([], local, local, any_usable)
    in_cluster = {str(ep) for ep in cluster}
    reachable = cluster + [ep for ep in local if str(ep) not in in_cluster]
    return Categorized(cluster, local, sorted(reachable, key=str), any_usable)
