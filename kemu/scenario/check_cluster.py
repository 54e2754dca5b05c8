"""The checks of a scenario's `cluster`, `topology` and `external` sections: the CNI backend
and its options, the address ranges (valid, disjoint, large enough), the underlay and its link
parameters, cluster DNS, and the world outside. Pure."""

from __future__ import annotations

import ipaddress
from dataclasses import replace
from typing import Any

from kemu import registry
from kemu.images.base import container_argv, known_images
from kemu.scenario.addressing import dns_service_ip
from kemu.scenario.model import (
    DEFAULT_EXTERNAL_CIDR,
    DEFAULT_EXTERNAL_DOMAIN,
    DEFAULT_POD_CIDR,
    DEFAULT_SERVICE_CIDR,
    DEFAULT_TOPOLOGY,
    DEFAULT_UNDERLAY_CIDR,
    HEALTH_KEYS,
    RESOLVER_HOST,
    ROUTER_HOST,
    TIMING_PROFILES,
    ClusterSpec,
    DNSConfig,
    ExternalHostSpec,
    ExternalSpec,
    LinkParams,
    LoadBalancerSpec,
    Timing,
    TopologySpec,
    UpstreamDNS,
)
from kemu.scenario.objects import Container, ContainerPort, NodeSpec
from kemu.scenario.problems import Checks
from kemu.scenario.units import parse_duration_ms, parse_rate_mbit


def cluster(doc: dict[str, Any], checks: Checks) -> ClusterSpec | None:
    nodes_doc = doc["nodes"]
    if isinstance(nodes_doc, int):
        nodes = [NodeSpec(f"node{i + 1}") for i in range(nodes_doc)]
    else:
        nodes = [NodeSpec(n["name"], dict(n.get("labels", {}))) for n in nodes_doc]
        seen: set[str] = set()
        for i, node in enumerate(nodes):
            if node.name == RESOLVER_HOST:
                checks.error(f"cluster.nodes[{i}].name", f"{RESOLVER_HOST!r} is the nodes' "
                                                         f"resolver's name")
            if node.name in seen:
                checks.error(f"cluster.nodes[{i}].name", f"node {node.name!r} is listed twice")
            seen.add(node.name)
    plugin = doc["cni"]["plugin"]
    options = doc["cni"].get("options") or {}
    backends = registry.backends()
    backend = backends.get(plugin.lower())
    if backend is None:
        checks.error("cluster.cni.plugin", f"unknown CNI backend {plugin!r}; installed: "
                                           f"{', '.join(sorted(backends)) or 'none'}")
    else:
        for problem in backend.check_options(options, tuple(n.name for n in nodes)):
            checks.error("cluster.cni.options", problem)
    pod_cidr = checks.cidr("cluster.podCIDR", doc.get("podCIDR", DEFAULT_POD_CIDR))
    service_cidr = checks.cidr("cluster.serviceCIDR",
                               doc.get("serviceCIDR", DEFAULT_SERVICE_CIDR))
    if pod_cidr and backend is not None:
        extra_bits = backend.subnet_len - pod_cidr.prefixlen
        room = 2 ** extra_bits if extra_bits >= 0 else 0
        if room < len(nodes):
            checks.error("cluster.podCIDR", f"{pod_cidr} holds {room} node subnet(s) of "
                                            f"/{backend.subnet_len}; the cluster has "
                                            f"{len(nodes)} nodes")
    if pod_cidr is None or service_cidr is None or backend is None:
        return None
    return ClusterSpec(tuple(nodes), plugin.lower(), options, pod_cidr, service_cidr,
                       (doc.get("kubeProxy") or {}).get("mode", "iptables"), timing(doc),
                       policy_engine(doc, backend.policy_engine, checks),
                       doc.get("maxPods", 110))


def policy_engine(doc: dict[str, Any], own: str, checks: Checks) -> str:
    """What enforces NetworkPolicy: the backend's own engine (calico's Felix), canal
    (calico's policy engine over a backend without one: flannel), or nothing."""
    asked = (doc.get("networkPolicy") or {}).get("engine")
    where = "cluster.networkPolicy.engine"
    if asked is None:
        return own
    if asked == "none":
        return ""
    if asked == "canal" and own:
        checks.error(where, f"canal puts calico's policy engine on flannel; "
                            f"{doc['cni']['plugin']} has its own ({own})")
    elif asked == "calico" and own != "calico":
        checks.error(where, f"{doc['cni']['plugin']} does not run calico; for calico's "
                            f"policy engine on flannel, use canal")
    return str(asked)


def timing(doc: dict[str, Any]) -> Timing:
    """The profile `timing` names (upstream unless it says fast), with each setting the
    scenario gives put over it (their shapes are the schema's)."""
    base = TIMING_PROFILES[doc.get("timing", "upstream")]
    proxy = doc.get("kubeProxy") or {}
    return replace(base, min_sync_s=float(proxy.get("minSyncPeriod", base.min_sync_s)),
                   sync_s=float(proxy.get("syncPeriod", base.sync_s)),
                   node_grace_s=float(doc.get("nodeMonitorGracePeriod", base.node_grace_s)),
                   slice_batch_s=float(doc.get("endpointSliceBatchPeriod",
                                               base.slice_batch_s)))


def room(spec: ClusterSpec) -> tuple[int, str]:
    """How many pods the cluster holds at most, and why that many: every node holds
    kubelet's maxPods, or fewer where its pod subnet is smaller (less network, gateway and
    broadcast)."""
    backend = registry.backends()[spec.cni_plugin]
    subnet_room = 2 ** (32 - backend.subnet_len) - 3
    nodes = len(spec.nodes)
    count = f"{nodes} node{'s' if nodes != 1 else ''}"
    if subnet_room < spec.max_pods:
        return nodes * subnet_room, (f"{count} × {subnet_room}, what a /{backend.subnet_len} "
                                     f"of {spec.cni_plugin} holds")
    return nodes * spec.max_pods, f"{count} × {spec.max_pods}, kubelet's maxPods"


def capacity(spec: ClusterSpec, placement: dict[str, str], checks: Checks) -> None:
    """Each node's pods must fit its subnet (less network, gateway and broadcast)."""
    backend = registry.backends()[spec.cni_plugin]
    room = 2 ** (32 - backend.subnet_len) - 3
    for node in spec.nodes:
        count = sum(1 for n in placement.values() if n == node.name)
        if count > room:
            checks.error("workloads", f"node {node.name} would run {count} pods, but its "
                                      f"/{backend.subnet_len} ({spec.cni_plugin}) holds "
                                      f"{room}; add nodes")


def topology(doc: dict[str, Any], checks: Checks) -> TopologySpec | None:
    name = doc.get("name", DEFAULT_TOPOLOGY)
    topologies = registry.topologies()
    if name.lower() not in topologies:
        checks.error("topology.name", f"unknown topology {name!r}; installed: "
                                      f"{', '.join(sorted(topologies))}")
    underlay = checks.cidr("topology.underlayCIDR",
                           doc.get("underlayCIDR", DEFAULT_UNDERLAY_CIDR))
    link = link_params(LinkParams(), doc.get("link") or {}, "topology.link", checks)
    wan = None
    if "wan" in doc:
        topo = topologies.get(name.lower())
        if topo is not None and not topo.has_wan:
            checks.error("topology.wan", f"topology {name!r} has no link between zones "
                                         f"(the zones topology has)")
        wan = link_params(LinkParams(), doc["wan"], "topology.wan", checks)
    if underlay is None:
        return None
    return TopologySpec(name.lower(), underlay, link, wan)


def link_params(base: LinkParams, doc: dict[str, Any], where: str,
                checks: Checks) -> LinkParams:
    """`base` with the link parameters `doc` gives (bw, delay, jitter, loss, queue)."""
    link = replace(base, **link_changes(doc, where, checks))
    if link.jitter_ms > link.delay_ms:
        checks.error(f"{where}.jitter", "jitter larger than the delay would need packets to "
                                        "leave before they were sent")
    return link


def link_changes(doc: dict[str, Any], where: str, checks: Checks) -> dict[str, Any]:
    """The LinkParams fields `doc` sets, parsed."""
    changes: dict[str, Any] = {}
    if "bw" in doc:
        try:
            changes["bw_mbit"] = parse_rate_mbit(doc["bw"])
        except ValueError as e:
            checks.error(f"{where}.bw", str(e))
    for key in ("delay", "jitter"):
        if key in doc:
            try:
                changes[f"{key}_ms"] = parse_duration_ms(doc[key])
            except ValueError as e:
                checks.error(f"{where}.{key}", str(e))
    if "loss" in doc:
        try:
            changes["loss_pct"] = float(str(doc["loss"]).rstrip("%"))
            if not 0 <= changes["loss_pct"] <= 100:
                raise ValueError
        except ValueError:
            checks.error(f"{where}.loss", f"a percentage 0-100, got {doc['loss']!r}")
    if "queue" in doc:
        changes["queue"] = doc["queue"]
    return changes


def lay_out(spec: ClusterSpec, topo: TopologySpec, checks: Checks) -> ClusterSpec:
    """The topology places the nodes (e.g. in zones, by label) and may refuse a cluster it
    cannot lay out."""
    topology_cls = registry.topologies().get(topo.name)
    if topology_cls is None:
        return spec
    nodes, problems = topology_cls.lay_out(list(spec.nodes))
    for problem in problems:
        checks.error("cluster.nodes", problem)
    return replace(spec, nodes=tuple(nodes))


def disjoint(cidrs: dict[str, ipaddress.IPv4Network], checks: Checks) -> None:
    items = list(cidrs.items())
    for i, (a, net_a) in enumerate(items):
        for b, net_b in items[i + 1:]:
            if net_a.overlaps(net_b):
                checks.error(b, f"{net_b} overlaps {a} {net_a}")


def dns(doc: dict[str, Any], spec: ClusterSpec | None, topo: TopologySpec | None,
        external: ExternalSpec | None, checks: Checks) -> DNSConfig:
    upstream = upstream_dns(doc.get("upstream") or {}, topo, external, checks)
    if not doc.get("enabled", True) or spec is None:
        return DNSConfig(enabled=False, upstream=upstream)
    ip = doc.get("clusterIP", dns_service_ip(spec.service_cidr))
    try:
        if ipaddress.IPv4Address(ip) not in spec.service_cidr:
            checks.error("cluster.dns.clusterIP", f"{ip} is outside the service CIDR "
                                                  f"{spec.service_cidr}")
            ip = ""  # said once: the kube-dns Service is not refused for it again
    except ValueError:
        checks.error("cluster.dns.clusterIP", f"not an IPv4 address: {ip!r}")
        ip = ""
    return DNSConfig(True, ip, doc.get("domain", "cluster.local"), doc.get("ttl", 30),
                     doc.get("cache", 30), upstream)


def upstream_dns(doc: dict[str, Any], topo: TopologySpec | None, external: ExternalSpec | None,
                 checks: Checks) -> UpstreamDNS:
    """The outside resolver's names: every external host, then `records` (an IPv4 address,
    a list of them, or an external host's name)."""
    where = "cluster.dns.upstream"
    hosts = external.host_addresses() if external else {}
    records: dict[str, tuple[str, ...]] = {
        f"{name}.{external.domain}.".lower(): (ip,) for name, ip in hosts.items()} \
        if external else {}
    for name, value in (doc.get("records") or {}).items():
        addresses = []
        for item in value if isinstance(value, list) else [value]:
            if item in hosts:
                addresses.append(hosts[item])
                continue
            try:
                addresses.append(str(ipaddress.IPv4Address(item)))
            except ValueError:
                checks.error(f"{where}.records.{name}", f"{item!r} is neither an IPv4 address "
                                                        f"nor an external host"
                             + (f" ({', '.join(hosts)})" if hosts else ""))
        records[name.rstrip(".").lower() + "."] = tuple(addresses)
    latency = 0.0
    try:
        latency = parse_duration_ms(doc.get("latency", 0))
    except ValueError as e:
        checks.error(f"{where}.latency", str(e))
    ip = str(topo.underlay_cidr.network_address + 1) if topo else ""
    return UpstreamDNS(ip, records, latency, doc.get("failureRate", 0.0),
                       doc.get("failureMode", "timeout"))


def external(doc: dict[str, Any] | None, spec: ClusterSpec | None,
             topo: TopologySpec | None, checks: Checks) -> ExternalSpec | None:
    if doc is None:
        return None
    cidr = checks.cidr("external.cidr", doc.get("cidr", DEFAULT_EXTERNAL_CIDR))
    hosts, names = [], set()
    for i, host in enumerate(doc.get("hosts") or []):
        where = f"external.hosts[{i}]"
        if host["name"] in names or (spec and host["name"] in {n.name for n in spec.nodes}):
            checks.error(f"{where}.name", f"{host['name']!r} is already a host or node name")
        if host["name"] == RESOLVER_HOST:
            checks.error(f"{where}.name", f"{RESOLVER_HOST!r} is the nodes' resolver's name")
        if host["name"] == ROUTER_HOST:
            checks.error(f"{where}.name", f"{ROUTER_HOST!r} is metallb-bgp's router's name")
        names.add(host["name"])
        image, command = host.get("image"), host.get("command")
        if image and command:
            checks.error(where, "give image or command, not both")
        if image and image not in known_images():
            checks.error(f"{where}.image", f"unknown image {image!r} (built-in: "
                                           f"{', '.join(known_images())})")
            continue
        port = host.get("port", 0)
        argv: tuple[str, ...] = tuple(command or ())
        if image:
            ports = (ContainerPort(port),) if port else ()
            argv = tuple(container_argv(Container("main", image, ports=ports)))
        hosts.append(ExternalHostSpec(host["name"], argv, port))
    lb_doc = doc.get("loadBalancer") or {}
    pool = checks.cidr("external.loadBalancer.pool", lb_doc["pool"]) if "pool" in lb_doc \
        else None
    if cidr and pool is None:  # the top /27 of the external network
        pool = ipaddress.IPv4Network(f"{cidr.broadcast_address - 31}/27", strict=False) \
            if cidr.prefixlen <= 26 else cidr
    overrides = {HEALTH_KEYS[k]: v for k, v in (lb_doc.get("healthCheck") or {}).items()}
    if cidr and spec and topo:
        disjoint({"external.cidr": cidr, "cluster.podCIDR": spec.pod_cidr,
                  "cluster.serviceCIDR": spec.service_cidr,
                  "topology.underlayCIDR": topo.underlay_cidr}, checks)
    if cidr is None or pool is None:
        return None
    return ExternalSpec(cidr, tuple(hosts),
                        LoadBalancerSpec(lb_doc.get("preset", "custom"), pool, overrides,
                                         lb_doc.get("holdTime", 90)),
                        doc.get("domain", DEFAULT_EXTERNAL_DOMAIN).rstrip("."))
