"""networking.k8s.io/v1 NetworkPolicy: selectors, ipBlocks, ports, policy types. Pure."""

from __future__ import annotations

from typing import Any

from kemu.scenario.manifests.checker import Checker, cidr, metadata
from kemu.scenario.objects import NetworkPolicy, PolicyPeer, PolicyPort, PolicyRule


def parse_policy(doc: dict[str, Any], check: Checker) -> None:
    check.fields(doc, "", {"apiVersion", "kind", "metadata", "spec", "status"})
    name, namespace, _ = metadata(doc, check)
    spec = check.mapping(doc.get("spec"), "spec")
    check.fields(spec, "spec", {"podSelector", "policyTypes", "ingress", "egress"})
    if "podSelector" not in spec:
        check.error("spec.podSelector", "is required ({} selects every pod of the namespace)")
    pod_selector = check.selector(spec.get("podSelector"), "spec.podSelector")
    rules: dict[str, list[PolicyRule]] = {"ingress": [], "egress": []}
    for direction, peer_key in (("ingress", "from"), ("egress", "to")):
        for i, r in enumerate(check.sequence(spec.get(direction), f"spec.{direction}")):
            path = f"spec.{direction}[{i}]"
            rule = check.mapping(r, path)
            check.fields(rule, path, {peer_key, "ports"})
            peers = [_policy_peer(p, check, f"{path}.{peer_key}[{k}]")
                     for k, p in enumerate(check.sequence(rule.get(peer_key),
                                                          f"{path}.{peer_key}"))]
            ports = [_policy_port(p, check, f"{path}.ports[{k}]")
                     for k, p in enumerate(check.sequence(rule.get("ports"), f"{path}.ports"))]
            rules[direction].append(PolicyRule(tuple(p for p in peers if p),
                                               tuple(p for p in ports if p)))
    types = check.sequence(spec.get("policyTypes"), "spec.policyTypes")
    if not types:  # the API's default (also for []): Ingress, and Egress if it has egress rules
        types = ["Ingress"] + (["Egress"] if rules["egress"] else [])
    for i, t in enumerate(types):
        if t not in ("Ingress", "Egress"):
            check.error(f"spec.policyTypes[{i}]", f"must be Ingress or Egress, got {t!r}")
    if name:
        check.out.policies.append(NetworkPolicy(name, namespace, pod_selector, tuple(types),
                                                tuple(rules["ingress"]),
                                                tuple(rules["egress"])))


def _policy_peer(value: Any, check: Checker, path: str) -> PolicyPeer | None:
    doc = check.mapping(value, path)
    check.fields(doc, path, {"podSelector", "namespaceSelector", "ipBlock"})
    if "ipBlock" in doc:
        if len(doc) > 1:
            check.error(path, "ipBlock cannot be combined with selectors")
        block = check.mapping(doc["ipBlock"], f"{path}.ipBlock")
        check.fields(block, f"{path}.ipBlock", {"cidr", "except"})
        block_cidr = cidr(block.get("cidr"), check, f"{path}.ipBlock.cidr")
        excepts = [cidr(e, check, f"{path}.ipBlock.except[{k}]")
                   for k, e in enumerate(check.sequence(block.get("except"),
                                                        f"{path}.ipBlock.except"))]
        return PolicyPeer(ip_block=block_cidr,
                          ip_block_except=tuple(e for e in excepts if e)) if block_cidr else None
    if not doc:
        check.error(path, "give podSelector, namespaceSelector or ipBlock")
        return None
    return PolicyPeer(
        pod_selector=check.selector(doc["podSelector"], f"{path}.podSelector")
        if "podSelector" in doc else None,
        namespace_selector=check.selector(doc["namespaceSelector"], f"{path}.namespaceSelector")
        if "namespaceSelector" in doc else None)


def _policy_port(value: Any, check: Checker, path: str) -> PolicyPort | None:
    doc = check.mapping(value, path)
    check.fields(doc, path, {"protocol", "port", "endPort"})
    protocol = doc.get("protocol", "TCP")
    if protocol not in ("TCP", "UDP"):
        check.error(f"{path}.protocol", f"must be TCP or UDP, got {protocol!r}")
        return None
    port = check.port_ref(doc["port"], f"{path}.port") if "port" in doc else None
    end = check.integer(doc["endPort"], f"{path}.endPort", 1, 65535) if "endPort" in doc \
        else None
    if end is not None and not isinstance(port, int):
        check.error(f"{path}.endPort", "needs a numeric port to start the range")
    return PolicyPort(str(protocol), port, end)
