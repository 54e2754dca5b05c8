"""NetworkPolicy, enforced per pod in the node's filter table (the same in every backend).

Every packet a node forwards to or from one of its pods passes FORWARD (bridged pod-to-pod
traffic too: br_netfilter is on inside nodes), where KEMU-POLICY runs first:

    -A KEMU-POLICY -m conntrack --ctstate ESTABLISHED,RELATED -j ACCEPT      replies pass
    -A KEMU-POLICY -s <pod> -j KEMU-EG-<pod>     egress rules mark what they allow (0x20000)
    -A KEMU-POLICY -s <pod> -m mark ! --mark 0x20000/0x20000 -j DROP
    -A KEMU-POLICY -d <pod> -j KEMU-IN-<pod>     ingress rules mark what they allow (0x40000)
    -A KEMU-POLICY -d <pod> -m mark ! --mark 0x40000/0x40000 -j DROP

A pod that no policy selects (for a direction) gets no chain for it: everything is allowed, as
in Kubernetes. A selected pod allows exactly the union of its policies' rules; a policy with no
rules for a direction it lists denies everything in that direction. An ipBlock with `except`
gets a chain of its own that returns early for the excepted ranges. Pure.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable

from kemu.k8s.controllers import RuleSink, View
from kemu.k8s.store import PodStatus
from kemu.scenario.objects import (
    Namespace,
    NetworkPolicy,
    PolicyPeer,
    PolicyPort,
    PolicyRule,
    matches,
)

EGRESS_MARK, INGRESS_MARK = "0x20000", "0x40000"
# FORWARD: what a node forwards for its pods (bridged too); INPUT: what a pod sends to its own
# node, which egress policy governs as well (as calico's does).
JUMPS = [("filter", chain, "-m comment --comment \"kemu network policies\" -j KEMU-POLICY")
         for chain in ("FORWARD", "INPUT")]


def _chain(prefix: str, *parts: str) -> str:
    return f"{prefix}-{hashlib.sha256('/'.join(parts).encode()).hexdigest()[:16].upper()}"


def selects(policy: NetworkPolicy, pod: PodStatus) -> bool:
    return pod.spec.namespace == policy.namespace and matches(policy.pod_selector,
                                                              pod.spec.labels)


def peer_sources(peer: PolicyPeer, policy: NetworkPolicy, pods: list[PodStatus],
                 namespaces: dict[str, Namespace]) -> list[str]:
    """The pod IPs a selector peer stands for (ipBlock peers are handled apart)."""
    def namespace_ok(name: str) -> bool:
        if peer.namespace_selector is None:
            return name == policy.namespace
        labels = namespaces[name].labels if name in namespaces else \
            {"kubernetes.io/metadata.name": name}
        return matches(peer.namespace_selector, labels)

    return sorted(p.ip for p in pods if p.ip and namespace_ok(p.spec.namespace) and
                  matches(peer.pod_selector or {}, p.spec.labels))


def _port_matches(ports: tuple[PolicyPort, ...], target: PodStatus | None,
                  pods: list[PodStatus]) -> list[str]:
    """iptables match fragments, one per allowed port (or [""] for every port)."""
    if not ports:
        return [""]
    out = []
    for port in ports:
        proto = port.protocol.lower()
        if port.port is None:
            out.append(f"-p {proto}")
            continue
        if isinstance(port.port, str):  # a named port: as the destination pod(s) name it
            candidates = [target] if target else pods
            numbers = sorted({n for p in candidates if p is not None and
                              (n := p.spec.port_number(port.port, port.protocol)) is not None})
        else:
            numbers = [port.port]
        for number in numbers:
            span = f"{number}:{port.end_port}" if port.end_port else str(number)
            out.append(f"-p {proto} -m {proto} --dport {span}")
    return out


def _rules(chain: str, rules: tuple[PolicyRule, ...], direction: str, policy: NetworkPolicy,
           pod: PodStatus, pods: list[PodStatus], namespaces: dict[str, Namespace],
           extra_chains: list[str]) -> list[str]:
    """A named port resolves on the pod the traffic goes to: the policy's own pod for
    ingress, each destination pod for egress (a destination that is no pod has no names)."""
    mark = INGRESS_MARK if direction == "in" else EGRESS_MARK
    flag = "-s" if direction == "in" else "-d"
    allow = f"-j MARK --or-mark {mark}"
    comment = f"-m comment --comment \"{policy.key}\""
    by_ip = {p.ip: p for p in pods if p.ip}
    out = []
    for i, rule in enumerate(rules):
        per_destination = direction == "out" and any(isinstance(p.port, str) for p in rule.ports)

        def ports_to(destination: PodStatus | None, rule: PolicyRule = rule) -> list[str]:
            target = pod if direction == "in" else destination
            return [f" {m}" if m else "" for m in _port_matches(rule.ports, target, pods)]

        if not rule.peers:
            if per_destination:  # to any pod, on that pod's number for the name
                out += [f"-A {chain} {comment} -d {ip}/32{ports} {allow}"
                        for ip, dest in sorted(by_ip.items()) for ports in ports_to(dest)]
            else:
                out += [f"-A {chain} {comment}{ports} {allow}" for ports in ports_to(pod)]
        for k, peer in enumerate(rule.peers):
            if peer.ip_block:  # an address block names no ports: a named port matches none
                for ports in [] if per_destination else ports_to(None):
                    if peer.ip_block_except:
                        block = _chain("KEMU-IPB", policy.key, direction, str(i), str(k),
                                       pod.ip)
                        if block not in extra_chains:
                            extra_chains.append(block)
                        out.append(f"-A {chain} {comment} {flag} {peer.ip_block}{ports} "
                                   f"-j {block}")
                    else:
                        out.append(f"-A {chain} {comment} {flag} {peer.ip_block}{ports} "
                                   f"{allow}")
                continue
            for ip in peer_sources(peer, policy, pods, namespaces):
                out += [f"-A {chain} {comment} {flag} {ip}/32{ports} {allow}"
                        for ports in ports_to(by_ip.get(ip))]
    return out


def _except_chains(policies: Iterable[NetworkPolicy], pod: PodStatus, direction: str) -> \
        list[str]:
    mark = INGRESS_MARK if direction == "in" else EGRESS_MARK
    flag = "-s" if direction == "in" else "-d"
    out = []
    for policy in policies:
        rules = policy.ingress if direction == "in" else policy.egress
        for i, rule in enumerate(rules):
            for k, peer in enumerate(rule.peers):
                if peer.ip_block and peer.ip_block_except:
                    block = _chain("KEMU-IPB", policy.key, direction, str(i), str(k), pod.ip)
                    out += [f"-A {block} {flag} {e} -j RETURN" for e in peer.ip_block_except]
                    out.append(f"-A {block} -j MARK --or-mark {mark}")
    return out


def render(node: str, policies: list[NetworkPolicy], pods: list[PodStatus],
           namespaces: dict[str, Namespace]) -> str:
    """iptables-restore input (filter table) enforcing `policies` for the pods on `node`."""
    chains = ["KEMU-POLICY"]
    rules = ["-A KEMU-POLICY -m conntrack --ctstate ESTABLISHED,RELATED -j ACCEPT"]
    for pod in sorted((p for p in pods if p.node == node and p.ip), key=lambda p: p.spec.key):
        for direction, policy_type, flag, mark in (("eg", "Egress", "-s", EGRESS_MARK),
                                                    ("in", "Ingress", "-d", INGRESS_MARK)):
            selecting = [p for p in policies if policy_type in p.policy_types and selects(p, pod)]
            if not selecting:
                continue
            chain = _chain(f"KEMU-{direction.upper()}", pod.spec.key)
            chains.append(chain)
            extra: list[str] = []
            for policy in selecting:
                policy_rules = policy.ingress if direction == "in" else policy.egress
                rules += _rules(chain, policy_rules, "in" if direction == "in" else "out",
                                policy, pod, pods, namespaces, extra)
            chains += extra
            rules += _except_chains(selecting, pod, "in" if direction == "in" else "out")
            rules += [f"-A KEMU-POLICY {flag} {pod.ip}/32 -j {chain}",
                      f"-A KEMU-POLICY -m comment --comment \"{pod.spec.key} {policy_type.lower()} "
                      f"isolation\" {flag} {pod.ip}/32 -m mark ! --mark {mark}/{mark} -j DROP"]
    lines = ["*filter", *(f":{c} - [0:0]" for c in dict.fromkeys(chains)), *rules, "COMMIT"]
    return "\n".join(lines) + "\n"


class PolicyAgent:
    """The NetworkPolicy agent of one node: its rules from the view, to the node's chains."""

    def __init__(self, node: str, rules: RuleSink):
        self.node, self.rules = node, rules

    def sync(self, view: View) -> None:
        self.rules.sync(render(self.node, view.policies, view.pods, view.namespaces))
