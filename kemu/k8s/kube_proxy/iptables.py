"""kube-proxy in iptables mode, for one node: services + endpoints → iptables-restore input, in
kube-proxy's own layout, so what a user reads in a node is what they would read in a cluster.

nat:    PREROUTING, OUTPUT → KUBE-SERVICES; POSTROUTING → KUBE-POSTROUTING
        KUBE-SERVICES   per service port: ClusterIP → KUBE-SVC-*, externalIPs → KUBE-EXT-*,
                        last: local destinations → KUBE-NODEPORTS
        KUBE-NODEPORTS  per node port → KUBE-EXT-*
        KUBE-EXT-*      external traffic: mark for SNAT, then KUBE-SVC-* (or, for
                        externalTrafficPolicy Local, KUBE-SVL-*: local endpoints only, no SNAT;
                        with none, filter's KUBE-EXTERNAL-SERVICES drops it)
        KUBE-SVC-*      ClientIP affinity (`recent`), then `statistic` random 1/n, 1/(n-1), … 1
        KUBE-SEP-*      hairpin mark for SNAT, then DNAT to pod:port
        KUBE-MARK-MASQ / KUBE-POSTROUTING: mark 0x4000 → MASQUERADE
filter: a service port without endpoints is REJECTed (ICMP port unreachable), not black-holed.

Chain names are kube-proxy's: a prefix and the first 16 base32 characters of a SHA-256 of the
service port (and endpoint) name. Applied with `iptables-restore --noflush`: only kube-proxy's
chains are replaced, whatever else lives in the node's tables (CNI, policies) stays.
"""

from __future__ import annotations

import base64
import hashlib
from collections.abc import Iterable

from kemu.k8s.endpoints import Endpoint
from kemu.scenario.objects import Service, ServicePort

MASQ_MARK = "0x4000"
JUMPS = {  # (table, builtin chain, rule) kube-proxy hooks into, applied once per node
    ("nat", "PREROUTING", "-m comment --comment \"kubernetes service portals\" -j KUBE-SERVICES"),
    ("nat", "OUTPUT", "-m comment --comment \"kubernetes service portals\" -j KUBE-SERVICES"),
    ("nat", "POSTROUTING", "-m comment --comment \"kubernetes postrouting rules\" "
                           "-j KUBE-POSTROUTING"),
    ("filter", "FORWARD", "-m conntrack --ctstate NEW -m comment --comment "
                          "\"kubernetes service portals\" -j KUBE-SERVICES"),
    ("filter", "OUTPUT", "-m conntrack --ctstate NEW -m comment --comment "
                         "\"kubernetes service portals\" -j KUBE-SERVICES"),
    ("filter", "INPUT", "-m conntrack --ctstate NEW -m comment --comment "
                        "\"kubernetes externally-visible service portals\" "
                        "-j KUBE-EXTERNAL-SERVICES"),
    # Traffic to an external or load-balancer IP is forwarded, not local: checked here too.
    ("filter", "FORWARD", "-m conntrack --ctstate NEW -m comment --comment "
                          "\"kubernetes externally-visible service portals\" "
                          "-j KUBE-EXTERNAL-SERVICES"),
}


def chain(prefix: str, *parts: str) -> str:
    digest = hashlib.sha256("".join(parts).encode()).digest()
    return f"{prefix}-{base64.b32encode(digest).decode()[:16]}"


def port_name(svc: Service, port: ServicePort) -> str:
    """kube-proxy's ServicePortName: namespace/name:port-name."""
    return f"{svc.key}:{port.name}"


def render(node: str, cluster_cidr: str, services: Iterable[Service],
           endpoints: dict[tuple[str, str], list[Endpoint]]) -> str:
    """iptables-restore input for `node`. `endpoints` maps (service key, port name) to the
    service port's ready endpoints."""
    nat_chains = ["KUBE-SERVICES", "KUBE-NODEPORTS", "KUBE-POSTROUTING", "KUBE-MARK-MASQ"]
    nat = [
        f"-A KUBE-MARK-MASQ -j MARK --or-mark {MASQ_MARK}",
        f"-A KUBE-POSTROUTING -m mark ! --mark {MASQ_MARK}/{MASQ_MARK} -j RETURN",
        f"-A KUBE-POSTROUTING -j MARK --xor-mark {MASQ_MARK}",
        "-A KUBE-POSTROUTING -m comment --comment \"kubernetes service traffic requiring SNAT\" "
        "-j MASQUERADE --random-fully",
    ]
    filter_chains = ["KUBE-SERVICES", "KUBE-EXTERNAL-SERVICES"]
    filters: list[str] = []
    nodeports: list[str] = []
    for svc in sorted(services, key=lambda s: s.key):
        if svc.type == "ExternalName" or svc.headless:
            continue  # DNS-only: no virtual IP to program
        for port in svc.ports:
            name = port_name(svc, port)
            proto = port.protocol.lower()
            eps = endpoints.get((svc.key, port.name), [])
            svc_chain = chain("KUBE-SVC", name, proto)
            ext_chain = chain("KUBE-EXT", name, proto)
            match = f"-p {proto} -m {proto}"
            comment = f"-m comment --comment \"{name} cluster IP\""
            # Addresses from outside: externalIPs and the load balancer's IP (its ingress).
            outside = [(ip, "external IP") for ip in svc.external_ips]
            if svc.type == "LoadBalancer" and svc.load_balancer_ip:
                outside.append((svc.load_balancer_ip, "loadbalancer IP"))
            external = bool(port.node_port or outside)
            if not eps:
                reason = f"-m comment --comment \"{name} has no endpoints\""
                filters.append(f"-A KUBE-SERVICES {reason} -d {svc.cluster_ip}/32 {match} "
                               f"--dport {port.port} -j REJECT --reject-with icmp-port-unreachable")
                for ip, _ in outside:
                    filters.append(f"-A KUBE-EXTERNAL-SERVICES {reason} -d {ip}/32 {match} "
                                   f"--dport {port.port} -j REJECT "
                                   f"--reject-with icmp-port-unreachable")
                if port.node_port:
                    filters.append(f"-A KUBE-EXTERNAL-SERVICES {reason} -m addrtype "
                                   f"--dst-type LOCAL {match} --dport {port.node_port} -j REJECT "
                                   f"--reject-with icmp-port-unreachable")
                continue
            nat_chains.append(svc_chain)
            nat.append(f"-A KUBE-SERVICES {comment} -d {svc.cluster_ip}/32 {match} "
                       f"--dport {port.port} -j {svc_chain}")
            # Traffic to the ClusterIP from outside the pod network gets SNAT, so replies
            # come back through this node.
            nat.append(f"-A {svc_chain} {comment} ! -s {cluster_cidr} -d {svc.cluster_ip}/32 "
                       f"{match} --dport {port.port} -j KUBE-MARK-MASQ")
            sep_chains = [chain("KUBE-SEP", name, proto, ep.ip, str(ep.port)) for ep in eps]
            nat += _balance(svc, name, svc_chain, eps, sep_chains)
            for ep, sep in zip(eps, sep_chains, strict=True):
                nat_chains.append(sep)
                nat += _endpoint(svc, name, proto, sep, ep)
            if not external:
                continue
            nat_chains.append(ext_chain)
            for ip, what in outside:
                nat.append(f"-A KUBE-SERVICES -m comment --comment \"{name} {what}\" "
                           f"-d {ip}/32 {match} --dport {port.port} -j {ext_chain}")
            if port.node_port:
                nodeports.append(f"-A KUBE-NODEPORTS -m comment --comment \"{name}\" {match} "
                                 f"--dport {port.node_port} -j {ext_chain}")
            if svc.external_traffic_policy == "Local":
                nat_chains.append(chain("KUBE-SVL", name, proto))
                nat += _local_policy(svc, name, proto, svc_chain, ext_chain, eps, sep_chains,
                                     node, cluster_cidr)
                if not any(ep.node == node for ep in eps):
                    # External traffic that finds no local endpoint is dropped here, in the
                    # filter table (nat cannot drop), as kube-proxy does.
                    reason = f"-m comment --comment \"{name} has no local endpoints\""
                    filters += [f"-A KUBE-EXTERNAL-SERVICES {reason} -d {ip}/32 {match} "
                                f"--dport {port.port} -j DROP" for ip, _ in outside]
                    if port.node_port:
                        filters.append(f"-A KUBE-EXTERNAL-SERVICES {reason} -m addrtype "
                                       f"--dst-type LOCAL {match} --dport {port.node_port} "
                                       f"-j DROP")
            else:
                nat += [f"-A {ext_chain} -m comment --comment \"masquerade traffic for {name} "
                        f"external destinations\" -j KUBE-MARK-MASQ",
                        f"-A {ext_chain} -j {svc_chain}"]
    nat += nodeports
    nat.append("-A KUBE-SERVICES -m comment --comment \"kubernetes service nodeports; NOTE: "
               "this must be the last rule in this chain\" -m addrtype --dst-type LOCAL "
               "-j KUBE-NODEPORTS")
    return _table("filter", filter_chains, filters) + _table("nat", nat_chains, nat)


def _balance(svc: Service, name: str, svc_chain: str, eps: list[Endpoint],
             seps: list[str]) -> list[str]:
    rules = []
    if svc.session_affinity == "ClientIP":
        # A client seen recently by an endpoint goes back to it (`recent`, per endpoint).
        for ep, sep in zip(eps, seps, strict=True):
            rules.append(f"-A {svc_chain} -m comment --comment \"{name} -> {ep.ip}:{ep.port}\" "
                         f"-m recent --name {sep} --mask 255.255.255.255 --rsource --rcheck "
                         f"--seconds {svc.affinity_timeout_s} --reap -j {sep}")
    return rules + _spread(svc_chain, name, list(zip(eps, seps, strict=True)))


def _spread(chain_name: str, name: str, targets: list[tuple[Endpoint, str]]) -> list[str]:
    """Uniform random choice: endpoint i is taken with probability 1/(n-i) of what is left."""
    rules, n = [], len(targets)
    for i, (ep, sep) in enumerate(targets):
        pick = "" if i == n - 1 else \
            f"-m statistic --mode random --probability {1 / (n - i):.11f} "
        rules.append(f"-A {chain_name} -m comment --comment \"{name} -> {ep.ip}:{ep.port}\" "
                     f"{pick}-j {sep}")
    return rules


def _endpoint(svc: Service, name: str, proto: str, sep: str, ep: Endpoint) -> list[str]:
    affinity = (f"-m recent --name {sep} --mask 255.255.255.255 --rsource --set "
                if svc.session_affinity == "ClientIP" else "")
    return [
        # Hairpin: a pod reaching itself through its service needs SNAT to see the reply.
        f"-A {sep} -m comment --comment \"{name}\" -s {ep.ip}/32 -j KUBE-MARK-MASQ",
        f"-A {sep} -m comment --comment \"{name}\" -p {proto} -m {proto} {affinity}"
        f"-j DNAT --to-destination {ep.ip}:{ep.port}",
    ]


def _local_policy(svc: Service, name: str, proto: str, svc_chain: str, ext_chain: str,
                  eps: list[Endpoint], seps: list[str], node: str,
                  cluster_cidr: str) -> list[str]:
    """externalTrafficPolicy: Local — external clients reach only this node's endpoints, and
    keep their source address (no SNAT)."""
    svl = chain("KUBE-SVL", name, proto)
    rules = [
        f"-A {ext_chain} -m comment --comment \"pod traffic for {name} external destinations\" "
        f"-s {cluster_cidr} -j {svc_chain}",
        f"-A {ext_chain} -m comment --comment \"masquerade LOCAL traffic for {name} external "
        f"destinations\" -m addrtype --src-type LOCAL -j KUBE-MARK-MASQ",
        f"-A {ext_chain} -m comment --comment \"route LOCAL traffic for {name} external "
        f"destinations\" -m addrtype --src-type LOCAL -j {svc_chain}",
        f"-A {ext_chain} -j {svl}",
    ]
    # No local endpoint: the packet stays undirected, and the filter table drops it.
    local = [(ep, sep) for ep, sep in zip(eps, seps, strict=True) if ep.node == node]
    return rules + _spread(svl, name, local)


def _table(name: str, chains: list[str], rules: list[str]) -> str:
    lines = [f"*{name}", *(f":{c} - [0:0]" for c in dict.fromkeys(chains)), *rules, "COMMIT"]
    return "\n".join(lines) + "\n"
