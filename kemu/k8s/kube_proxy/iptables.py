"""kube-proxy in iptables mode, for one node: Services + endpoints → iptables-restore input,
rule for rule as kube-proxy's proxier writes it (kubernetes pkg/proxy/iptables/proxier.go,
syncProxyRules), so what a user reads in a kemu node is what they read in a cluster's.

nat:    KUBE-SERVICES   per service port: cluster IP → KUBE-SVC-* (KUBE-SVL-* for
                        internalTrafficPolicy Local), external IPs → KUBE-EXT-*, load-balancer
                        IPs → KUBE-EXT-* (KUBE-FW-* with loadBalancerSourceRanges); last: local
                        destinations (127.0.0.1 too: route_localnet) → KUBE-NODEPORTS
        KUBE-NODEPORTS  per node port → KUBE-EXT-*
        KUBE-EXT-*      external traffic: SNAT mark, then KUBE-SVC-*; for
                        externalTrafficPolicy Local, pods and the node itself short-circuit to
                        KUBE-SVC-*, the rest goes to KUBE-SVL-* (this node's endpoints, source
                        kept)
        KUBE-FW-*       the allowed source ranges → KUBE-EXT-*; the rest falls through and is
                        dropped by filter's KUBE-PROXY-FIREWALL
        KUBE-SVC-*/SVL-*  masquerade off-cluster sources to the cluster IP; ClientIP affinity
                        (`recent`), then `statistic` random 1/n, 1/(n-1), … 1
        KUBE-SEP-*      hairpin SNAT mark, then DNAT to the endpoint (and the affinity entry)
        KUBE-MARK-MASQ / KUBE-POSTROUTING: mark 0x4000 → MASQUERADE
filter: KUBE-SERVICES / KUBE-EXTERNAL-SERVICES reject a service port without endpoints (drop,
        for a Local policy without local endpoints); KUBE-NODEPORTS accepts health check node
        ports; KUBE-PROXY-FIREWALL drops load-balancer traffic KUBE-FW-* let fall through;
        KUBE-FORWARD accepts what kube-proxy marked; KUBE-FIREWALL drops martian traffic to
        127.0.0.0/8 (the guard that goes with localhost node ports).

Chain names: a prefix and the first 16 base32 characters of SHA-256 over the service port's
name (`namespace/name:port`, or `namespace/name` for an unnamed port) and its lower-case
protocol, plus "IP:port" for an endpoint's chain. The output is in the canonical order
kube-proxy's own tests compare in (KUBE-NODEPORTS and KUBE-SERVICES first, then chains by
name; rules per chain in the order written, service ports by name): kube-proxy's order
between chains follows Go's map iteration and carries no meaning. What kube-proxy adds only
for metrics (nfacct counters) is left out, as kube-proxy itself leaves it out on a kernel
without nfnetlink_acct, like this one. Applied with `iptables-restore --noflush`.
"""

from __future__ import annotations

import base64
import hashlib
import ipaddress
from collections.abc import Iterable

from kemu.k8s.endpoints import Endpoint
from kemu.k8s.kube_proxy.topology import (
    categorize,
    external_policy_local,
    externally_accessible,
    internal_policy_local,
    uses_cluster_endpoints,
    uses_local_endpoints,
)
from kemu.scenario.objects import Service, ServicePort

MASQ_MARK = "0x4000"
MARK_MASQ, POSTROUTING = "KUBE-MARK-MASQ", "KUBE-POSTROUTING"
SERVICES, EXTERNAL_SERVICES, NODEPORTS = "KUBE-SERVICES", "KUBE-EXTERNAL-SERVICES", \
    "KUBE-NODEPORTS"
FORWARD, PROXY_FIREWALL, KUBELET_FIREWALL = "KUBE-FORWARD", "KUBE-PROXY-FIREWALL", \
    "KUBE-FIREWALL"
_NEW = "-m conntrack --ctstate NEW "
# (table, built-in chain, rule) kube-proxy (and kubelet, for KUBE-FIREWALL) hook in, each
# prepended in this order as kube-proxy's iptablesJumpChains and iptablesKubeletJumpChains are.
JUMPS = [
    ("filter", "INPUT", _NEW + '-m comment --comment "kubernetes externally-visible service '
                               'portals" -j KUBE-EXTERNAL-SERVICES'),
    ("filter", "FORWARD", _NEW + '-m comment --comment "kubernetes externally-visible service '
                                 'portals" -j KUBE-EXTERNAL-SERVICES'),
    ("filter", "INPUT", '-m comment --comment "kubernetes health check service ports" '
                        '-j KUBE-NODEPORTS'),
    ("filter", "FORWARD", _NEW + '-m comment --comment "kubernetes service portals" '
                                 '-j KUBE-SERVICES'),
    ("filter", "OUTPUT", _NEW + '-m comment --comment "kubernetes service portals" '
                                '-j KUBE-SERVICES'),
    ("filter", "FORWARD", '-m comment --comment "kubernetes forwarding rules" -j KUBE-FORWARD'),
    *(("filter", builtin, _NEW + '-m comment --comment "kubernetes load balancer firewall" '
                                 '-j KUBE-PROXY-FIREWALL')
      for builtin in ("INPUT", "OUTPUT", "FORWARD")),
    ("nat", "OUTPUT", '-m comment --comment "kubernetes service portals" -j KUBE-SERVICES'),
    ("nat", "PREROUTING", '-m comment --comment "kubernetes service portals" -j KUBE-SERVICES'),
    ("nat", "POSTROUTING", '-m comment --comment "kubernetes postrouting rules" '
                           '-j KUBE-POSTROUTING'),
    ("filter", "INPUT", "-j KUBE-FIREWALL"),
    ("filter", "OUTPUT", "-j KUBE-FIREWALL"),
]
_TOP = {"filter": [SERVICES, EXTERNAL_SERVICES, FORWARD, NODEPORTS, PROXY_FIREWALL,
                   KUBELET_FIREWALL],
        "nat": [SERVICES, NODEPORTS, POSTROUTING, MARK_MASQ]}


def port_name(svc: Service, port: ServicePort) -> str:
    """kube-proxy's ServicePortName as a string: `namespace/name:port`, or `namespace/name`
    for a service's single unnamed port."""
    return f"{svc.key}:{port.name}" if port.name else svc.key


def chain(prefix: str, name: str, protocol: str, endpoint: str = "") -> str:
    """`prefix`-<16 base32 characters of SHA-256(name + protocol + endpoint)>."""
    digest = hashlib.sha256((name + protocol + endpoint).encode()).digest()
    return f"{prefix}-{base64.b32encode(digest).decode()[:16]}"


def comment(text: str) -> str:
    return f'-m comment --comment "{text}"' if " " in text else f"-m comment --comment {text}"


class _Table:
    """One table's chains and rules, written to in kube-proxy's order, printed canonically."""

    def __init__(self, name: str):
        self.name = name
        self.chains: dict[str, list[str]] = {c: [] for c in _TOP[name]}

    def add(self, chain_name: str, *parts: str) -> None:
        self.rules(chain_name).append(" ".join(["-A", chain_name, *filter(None, parts)]))

    def rules(self, chain_name: str) -> list[str]:
        return self.chains.setdefault(chain_name, [])

    def text(self) -> str:
        first = [NODEPORTS, SERVICES]
        names = [c for c in first if c in self.chains] + \
            sorted(c for c in self.chains if c not in first)
        return "\n".join([f"*{self.name}", *(f":{c} - [0:0]" for c in names),
                          *(rule for c in names for rule in self.chains[c]), "COMMIT"]) + "\n"


def render(node: str, node_ip: str, cluster_cidr: str, services: Iterable[Service],
           endpoints: dict[tuple[str, str], list[Endpoint]], zone: str = "") -> str:
    """iptables-restore input for the kube-proxy of `node` (its name, IP and zone).
    `cluster_cidr` tells pods' traffic from the rest (kube-proxy's local traffic detector);
    `endpoints` maps (service key, port name) to the service port's endpoints, with their
    conditions."""
    filter_, nat = _Table("filter"), _Table("nat")
    nat.add(POSTROUTING, f"-m mark ! --mark {MASQ_MARK}/{MASQ_MARK} -j RETURN")
    nat.add(POSTROUTING, f"-j MARK --xor-mark {MASQ_MARK}")
    nat.add(POSTROUTING, comment("kubernetes service traffic requiring SNAT"),
            "-j MASQUERADE --random-fully")
    nat.add(MARK_MASQ, f"-j MARK --or-mark {MASQ_MARK}")
    filter_.add(KUBELET_FIREWALL, comment("block incoming localnet connections"),
                "-d 127.0.0.0/8 ! -s 127.0.0.0/8 -m conntrack ! --ctstate "
                "RELATED,ESTABLISHED,DNAT -j DROP")
    ports = sorted(((port_name(svc, port), svc, port) for svc in services
                    if svc.type != "ExternalName" and svc.cluster_ip not in ("", "None")
                    for port in svc.ports), key=lambda t: t[0])
    for name, svc, port in ports:
        eps = sorted(endpoints.get((svc.key, port.name), []), key=str)
        _service_port(filter_, nat, name, svc, port, eps, node, node_ip, cluster_cidr, zone)
    nat.add(SERVICES, comment("kubernetes service nodeports; NOTE: this must be the last rule "
                              "in this chain"), "-m addrtype --dst-type LOCAL -j KUBE-NODEPORTS")
    filter_.add(FORWARD, "-m conntrack --ctstate INVALID -j DROP")
    filter_.add(FORWARD, comment("kubernetes forwarding rules"),
                f"-m mark --mark {MASQ_MARK}/{MASQ_MARK} -j ACCEPT")
    filter_.add(FORWARD, comment("kubernetes forwarding conntrack rule"),
                "-m conntrack --ctstate RELATED,ESTABLISHED -j ACCEPT")
    return filter_.text() + nat.text()


def _service_port(filter_: _Table, nat: _Table, name: str, svc: Service, port: ServicePort,
                  eps: list[Endpoint], node: str, node_ip: str, cluster_cidr: str,
                  zone: str) -> None:
    proto = port.protocol.lower()
    match = f"-m {proto} -p {proto}"
    found = categorize(eps, svc, port, node, zone)
    svc_chain, svl_chain = chain("KUBE-SVC", name, proto), chain("KUBE-SVL", name, proto)
    ext_chain, fw_chain = chain("KUBE-EXT", name, proto), chain("KUBE-FW", name, proto)
    local_inside, local_outside = internal_policy_local(svc), external_policy_local(svc, port)
    internal_chain = svl_chain if local_inside else svc_chain
    external_chain = svl_chain if local_outside else svc_chain
    has_internal = found.any and (not local_inside or bool(found.local))
    has_external = found.any and (not local_outside or bool(found.local))
    vips = [svc.load_balancer_ip] if svc.load_balancer_ip else []
    uses_fw = found.any and bool(vips) and bool(svc.load_balancer_source_ranges)
    # Traffic with no endpoint to go to ends in the filter table (nat cannot drop): rejected
    # if the service has none anywhere, dropped if a Local policy finds none on this node.
    why, verdict = (comment(f"{name} has no endpoints"), "-j REJECT") if not found.any else \
        (comment(f"{name} has no local endpoints"), "-j DROP")
    to_cluster_ip = f"-d {svc.cluster_ip} --dport {port.port}"

    if has_internal:
        nat.add(SERVICES, comment(f"{name} cluster IP"), match, to_cluster_ip,
                f"-j {internal_chain}")
    else:
        filter_.add(SERVICES, why, match, to_cluster_ip, verdict)
    for ip in svc.external_ips:
        if found.any:
            nat.add(SERVICES, comment(f"{name} external IP"), match,
                    f"-d {ip} --dport {port.port} -j {ext_chain}")
        if not has_external:
            filter_.add(EXTERNAL_SERVICES, why, match,
                        f"-d {ip} --dport {port.port}", verdict)
    for ip in vips:
        if found.any:
            nat.add(SERVICES, comment(f"{name} loadbalancer IP"), match,
                    f"-d {ip} --dport {port.port} -j {fw_chain if uses_fw else ext_chain}")
        if uses_fw:
            filter_.add(PROXY_FIREWALL, comment(f"{name} traffic not accepted by {fw_chain}"),
                        match, f"-d {ip} --dport {port.port} -j DROP")
    if not has_external:
        for ip in vips:
            filter_.add(EXTERNAL_SERVICES, why, match,
                        f"-d {ip} --dport {port.port}", verdict)
    if port.node_port:
        if found.any:
            nat.add(NODEPORTS, comment(name), match, f"--dport {port.node_port} -j {ext_chain}")
        if not has_external:
            filter_.add(EXTERNAL_SERVICES, why, "-m addrtype --dst-type LOCAL",
                        match, f"--dport {port.node_port}", verdict)
    if svc.health_check_node_port and local_outside:
        filter_.add(NODEPORTS, comment(f"{name} health check node port"),
                    f"-m tcp -p tcp --dport {svc.health_check_node_port} -j ACCEPT")

    if has_internal:  # an off-cluster source reaching the cluster IP: SNAT, replies come back
        nat.add(internal_chain, comment(f"{name} cluster IP"), match, to_cluster_ip,
                f"! -s {cluster_cidr} -j {MARK_MASQ}")
    if found.any and externally_accessible(svc, port):
        nat.rules(ext_chain)
        if not local_outside:
            nat.add(ext_chain, comment(f"masquerade traffic for {name} external destinations"),
                    f"-j {MARK_MASQ}")
        else:  # pods and the node itself are not subject to the Local policy
            nat.add(ext_chain, comment(f"pod traffic for {name} external destinations"),
                    f"-s {cluster_cidr} -j {svc_chain}")
            nat.add(ext_chain, comment(f"masquerade LOCAL traffic for {name} external "
                                       f"destinations"),
                    f"-m addrtype --src-type LOCAL -j {MARK_MASQ}")
            nat.add(ext_chain, comment(f"route LOCAL traffic for {name} external destinations"),
                    f"-m addrtype --src-type LOCAL -j {svc_chain}")
        if has_external:
            nat.add(ext_chain, f"-j {external_chain}")
    if uses_fw:
        ranges = [ipaddress.IPv4Network(r, strict=False) for r in svc.load_balancer_source_ranges]
        for cidr in ranges:
            nat.add(fw_chain, comment(f"{name} loadbalancer IP"), f"-s {cidr} -j {ext_chain}")
        if any(ipaddress.IPv4Address(node_ip) in cidr for cidr in ranges):
            # The node reaching its own VIP loops back with the VIP as source.
            for ip in vips:
                nat.add(fw_chain, comment(f"{name} loadbalancer IP"), f"-s {ip} -j {ext_chain}")
        nat.add(fw_chain, comment(f"other traffic to {name} will be dropped by "
                                  f"KUBE-PROXY-FIREWALL"))
    if found.cluster and uses_cluster_endpoints(svc, port):
        _to_endpoints(nat, svc_chain, name, svc, proto, found.cluster)
    if found.local and uses_local_endpoints(svc, port):
        _to_endpoints(nat, svl_chain, name, svc, proto, found.local)
    for ep in found.reachable:
        sep = chain("KUBE-SEP", name, proto, str(ep))
        nat.add(sep, comment(name), f"-s {ep.ip} -j {MARK_MASQ}")
        affinity = f"-m recent --name {sep} --set" if svc.session_affinity == "ClientIP" else ""
        nat.add(sep, comment(name), affinity, match, f"-j DNAT --to-destination {ep}")


def _to_endpoints(nat: _Table, chain_name: str, name: str, svc: Service, proto: str,
                  eps: list[Endpoint]) -> None:
    """ClientIP affinity first (a client seen recently goes back to its endpoint), then a
    uniform random choice: endpoint i is taken with probability 1/(n-i) of what is left."""
    seps = [chain("KUBE-SEP", name, proto, str(ep)) for ep in eps]
    if svc.session_affinity == "ClientIP":
        for ep, sep in zip(eps, seps, strict=True):
            nat.add(chain_name, comment(f"{name} -> {ep}"),
                    f"-m recent --name {sep} --rcheck --seconds {svc.affinity_timeout_s} "
                    f"--reap -j {sep}")
    n = len(eps)
    for i, (ep, sep) in enumerate(zip(eps, seps, strict=True)):
        pick = f"-m statistic --mode random --probability {1 / (n - i):0.10f}" \
            if i < n - 1 else ""
        nat.add(chain_name, comment(f"{name} -> {ep}"), pick, f"-j {sep}")
