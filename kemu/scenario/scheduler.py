"""Pod placement, the part of kube-scheduler that matters to a network: which node each pod
lands on. Pure and deterministic, so a scenario always builds the same cluster."""

from __future__ import annotations

from kemu.scenario.objects import NodeSpec, PodSpec, matches

HostPorts = dict[str, list[tuple[str, int, str]]]  # node → (protocol, hostPort, hostIP) taken


class SchedulingError(ValueError):
    pass


def host_ports(pod: PodSpec) -> list[tuple[str, int, str]]:
    return [(p.protocol, p.host_port, p.host_ip) for c in pod.containers for p in c.ports
            if p.host_port]


def _conflicts(wanted: list[tuple[str, int, str]], taken: list[tuple[str, int, str]]) -> bool:
    """kube-scheduler's NodePorts filter: the same protocol and port, on the same address or
    where either side takes every address."""
    return any(proto == p and port == q and (ip in ("", "0.0.0.0") or r in ("", "0.0.0.0") or
                                             ip == r)
               for proto, port, ip in wanted for p, q, r in taken)


def schedule(pods: list[PodSpec], nodes: list[NodeSpec], max_pods: int = 110) -> dict[str, str]:
    """pod key → node name. `nodeName` pins a pod; otherwise the feasible node (by
    `nodeSelector`, and with fewer than `max_pods` pods: kubelet's maxPods) with the fewest
    pods wins, ties going to the earlier node — so replicas spread across nodes the way
    kube-scheduler's balancing does."""
    load = {node.name: 0 for node in nodes}
    taken: HostPorts = {node.name: [] for node in nodes}
    placement: dict[str, str] = {}
    for pod in pods:
        placement[pod.key] = place(pod, nodes, load, max_pods, taken)
    return placement


def place(pod: PodSpec, nodes: list[NodeSpec], load: dict[str, int],
          max_pods: int = 110, taken: HostPorts | None = None) -> str:
    """One pod's node, given how many pods each node runs and the host ports taken there
    (both updated)."""
    taken = taken if taken is not None else {}
    wanted = host_ports(pod)
    if pod.node_name:
        if pod.node_name not in load:
            raise SchedulingError(f"pod {pod.key}: nodeName {pod.node_name!r} is not a node "
                                  f"of the cluster ({', '.join(load)})")
        if load[pod.node_name] >= max_pods:  # the kubelet refuses it (OutOfpods)
            raise SchedulingError(f"pod {pod.key}: node {pod.node_name} already runs "
                                  f"{max_pods} pods, kubelet's maxPods")
        if _conflicts(wanted, taken.get(pod.node_name, [])):  # kubelet's admission refuses it
            raise SchedulingError(f"pod {pod.key}: a hostPort it asks for is already taken "
                                  f"on node {pod.node_name}")
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
        free = [name for name in with_room if not _conflicts(wanted, taken.get(name, []))]
        if not free:
            raise SchedulingError(f"pod {pod.key}: every node it may run on has its hostPort "
                                  f"taken (didn't have free ports for the requested pod ports)")
        chosen = min(free, key=lambda name: load[name])
    load[chosen] += 1
    taken.setdefault(chosen, []).extend(wanted)
    return chosen
