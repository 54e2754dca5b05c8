"""Pod placement, the part of kube-scheduler that matters to a network: which node each pod
lands on. Pure and deterministic, so a scenario always builds the same cluster."""

from __future__ import annotations

from kemu.scenario.objects import NodeSpec, PodSpec, matches


class SchedulingError(ValueError):
    pass


def schedule(pods: list[PodSpec], nodes: list[NodeSpec], max_pods: int = 110) -> dict[str, str]:
    """pod key → node name. `nodeName` pins a pod; otherwise the feasible node (by
    `nodeSelector`, and with fewer than `max_pods` pods: kubelet's maxPods) with the fewest
    pods wins, ties going to the earlier node — so replicas spread across nodes the way
    kube-scheduler's balancing does."""
    load = {node.name: 0 for node in nodes}
    placement: dict[str, str] = {}
    for pod in pods:
        placement[pod.key] = place(pod, nodes, load, max_pods)
    return placement


def place(pod: PodSpec, nodes: list[NodeSpec], load: dict[str, int],
          max_pods: int = 110) -> str:
    """One pod's node, given how many pods each node runs (updated)."""
    if pod.node_name:
        if pod.node_name not in load:
            raise SchedulingError(f"pod {pod.key}: nodeName {pod.node_name!r} is not a node "
                                  f"of the cluster ({', '.join(load)})")
        if load[pod.node_name] >= max_pods:  # the kubelet refuses it (OutOfpods)
            raise SchedulingError(f"pod {pod.key}: node {pod.node_name} already runs "
                                  f"{max_pods} pods, kubelet's maxPods")
        chosen = pod.node_name
    else:
        feasible = [n.name for n in nodes if matches(pod.node_selector, n.labels)]
        if not feasible:
            raise SchedulingError(f"pod {pod.key}: no node matches nodeSelector "
                                  f"{pod.node_selector}")
        with_room = [name for name in feasible if load[name] < max_pods]
        if not with_room:
            raise SchedulingError(f"pod {pod.key}: every node it may run on already runs "
                                  f"{max_pods} pods, kubelet's maxPods (Too many pods)")
        chosen = min(with_room, key=lambda name: load[name])
    load[chosen] += 1
    return chosen
