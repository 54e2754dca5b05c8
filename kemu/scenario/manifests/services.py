"""Services, checked as the API server checks them (pkg/apis/core/validation/validation.go:
ValidateService and the fields it calls; defaults from pkg/apis/core/v1/defaults.go), with
its messages where they are clear. What `kubectl get -o yaml` prints loads as it is
(clusterIPs, ipFamilies, ipFamilyPolicy, status). kemu's cluster is IPv4 single-stack: what
needs IPv6 is refused as the API server of such a cluster refuses it. Pure."""

from __future__ import annotations

import ipaddress
import re
from typing import Any

from kemu.scenario.addressing import NODE_PORT_RANGE
from kemu.scenario.manifests.checker import DNS_LABEL, Checker, cidr, metadata
from kemu.scenario.objects import Service, ServicePort

SERVICE_TYPES = ("ClusterIP", "NodePort", "LoadBalancer", "ExternalName")
DNS_1035 = re.compile(r"^[a-z]([-a-z0-9]{0,61}[a-z0-9])?$")  # a Service's name
SUBDOMAIN = re.compile(r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$")
QUALIFIED = re.compile(r"^([a-z0-9]([-a-z0-9.]*[a-z0-9])?/)?[A-Za-z0-9]([-A-Za-z0-9_.]*"
                       r"[A-Za-z0-9])?$")
MAX_AFFINITY_S = 86400  # MaxClientIPServiceAffinitySeconds
TRAFFIC_DISTRIBUTIONS = ("PreferClose", "PreferSameZone")  # the second: 1.34's name for it


def parse_service(doc: dict[str, Any], check: Checker) -> None:
    check.fields(doc, "", {"apiVersion", "kind", "metadata", "spec", "status"})
    name, namespace, _ = metadata(doc, check)
    if name and not DNS_1035.match(name):
        check.error("metadata.name", f"a Service's name must start with a letter (RFC 1035 "
                                     f"label), got {name!r}")
    spec = check.mapping(doc.get("spec"), "spec")
    check.fields(spec, "spec", {
        "type", "clusterIP", "clusterIPs", "ipFamilies", "ipFamilyPolicy", "ports", "selector",
        "externalIPs", "sessionAffinity", "sessionAffinityConfig", "externalTrafficPolicy",
        "internalTrafficPolicy", "externalName", "loadBalancerIP", "loadBalancerSourceRanges",
        "loadBalancerClass", "allocateLoadBalancerNodePorts", "healthCheckNodePort",
        "publishNotReadyAddresses", "trafficDistribution"})
    kind = spec.get("type", "ClusterIP")
    if kind not in SERVICE_TYPES:
        check.error("spec.type", f"must be one of {', '.join(SERVICE_TYPES)}, got {kind!r}")
        return
    cluster_ip = _cluster_ip(spec, kind, check)
    selector = check.labels(spec["selector"], "spec.selector") if "selector" in spec else None
    ports = _ports(spec, kind, cluster_ip == "None", check)
    external_name = _external_name(spec, kind, check)
    external_ips = _addresses(spec.get("externalIPs"), "spec.externalIPs", check)
    affinity, timeout = _affinity(spec, check)
    accessible = kind in ("NodePort", "LoadBalancer") or bool(external_ips)
    external_policy = _choice(spec, "externalTrafficPolicy", ("Cluster", "Local"), check)
    if "externalTrafficPolicy" in spec and not accessible:
        check.error("spec.externalTrafficPolicy", "may only be set for externally-accessible "
                                                  "services (NodePort, LoadBalancer, or with "
                                                  "externalIPs)")
    internal_policy = _choice(spec, "internalTrafficPolicy", ("Cluster", "Local"), check)
    lb = _load_balancer(spec, kind, external_policy, check)
    distribution = spec.get("trafficDistribution", "")
    if distribution and distribution not in TRAFFIC_DISTRIBUTIONS:
        check.error("spec.trafficDistribution", f"must be PreferClose, got {distribution!r}")
    publish = spec.get("publishNotReadyAddresses", False)
    if not isinstance(publish, bool):
        check.error("spec.publishNotReadyAddresses", f"must be true or false, got {publish!r}")
    if name:
        check.out.services.append(Service(
            name=name, namespace=namespace, type=kind, cluster_ip=cluster_ip, ports=tuple(ports),
            selector=selector, external_ips=external_ips, session_affinity=affinity,
            affinity_timeout_s=timeout, external_traffic_policy=external_policy,
            external_name=external_name, internal_traffic_policy=internal_policy,
            publish_not_ready=publish is True, traffic_distribution=str(distribution or ""),
            **lb))


def _choice(spec: dict[str, Any], key: str, values: tuple[str, ...], check: Checker) -> str:
    value = spec.get(key, values[0])
    if value not in values:
        check.error(f"spec.{key}", f"must be {' or '.join(values)}, got {value!r}")
        return values[0]
    return str(value)


def _cluster_ip(spec: dict[str, Any], kind: str, check: Checker) -> str:
    """clusterIP and clusterIPs (which `kubectl get` prints both of), on a single-stack IPv4
    cluster: "" (allocate), "None" (headless) or an address."""
    cluster_ip = spec.get("clusterIP", "")
    if not isinstance(cluster_ip, str):
        check.error("spec.clusterIP", f"must be an address or None, got {cluster_ip!r}")
        cluster_ip = ""
    elif cluster_ip not in ("", "None"):
        try:
            cluster_ip = str(ipaddress.IPv4Address(cluster_ip))
        except ValueError:
            check.error("spec.clusterIP", f"must be a valid IPv4 address or None, got "
                                          f"{cluster_ip!r}")
            cluster_ip = ""
    ips = spec.get("clusterIPs")
    families = spec.get("ipFamilies")
    policy = spec.get("ipFamilyPolicy")
    if kind == "ExternalName":
        for key, value in (("clusterIPs", ips), ("ipFamilies", families),
                           ("ipFamilyPolicy", policy)):
            if value:
                check.error(f"spec.{key}", "may not be set for ExternalName services")
        return ""
    if ips is not None:
        if not isinstance(ips, list) or not all(isinstance(ip, str) for ip in ips):
            check.error("spec.clusterIPs", f"must be a list of addresses, got {ips!r}")
        elif ips and not cluster_ip:
            check.error("spec.clusterIPs", "must be empty when `clusterIP` is not specified")
        elif ips and ips[0] != cluster_ip:
            check.error("spec.clusterIPs", f"first value must match `clusterIP` "
                                           f"({cluster_ip}), got {ips[0]!r}")
        elif len(ips) > 1:
            check.error("spec.clusterIPs", "this cluster is IPv4 single-stack: it has no "
                                           "second (IPv6) cluster IP to give")
    for i, family in enumerate(families if isinstance(families, list) else
                               ([] if families is None else [families])):
        if family != "IPv4":
            check.error(f"spec.ipFamilies[{i}]", f"{family} is not configured on this cluster "
                                                 f"(kemu emulates IPv4)")
    if policy not in (None, "SingleStack", "PreferDualStack", "RequireDualStack"):
        check.error("spec.ipFamilyPolicy", f"must be SingleStack, PreferDualStack or "
                                           f"RequireDualStack, got {policy!r}")
    elif policy == "RequireDualStack":
        check.error("spec.ipFamilyPolicy", "this cluster is not configured for dual-stack "
                                           "services")
    if cluster_ip == "None" and kind != "ClusterIP":
        check.error("spec.clusterIP", f"may not be set to 'None' for {kind} services")
    return cluster_ip


def _ports(spec: dict[str, Any], kind: str, headless: bool, check: Checker) -> list[ServicePort]:
    ports: list[ServicePort] = []
    port_docs = check.sequence(spec.get("ports"), "spec.ports")
    seen: set[tuple[str, int]] = set()
    node_ports: set[tuple[str, int]] = set()
    for i, p in enumerate(port_docs):
        path = f"spec.ports[{i}]"
        port_doc = check.mapping(p, path)
        check.fields(port_doc, path, {"name", "protocol", "port", "targetPort", "nodePort",
                                      "appProtocol"})
        number = check.integer(port_doc.get("port"), f"{path}.port", 1, 65535)
        protocol = port_doc.get("protocol", "TCP")
        if protocol not in ("TCP", "UDP"):
            check.error(f"{path}.protocol", f"must be TCP or UDP (kemu does not emulate SCTP), "
                                            f"got {protocol!r}")
            protocol = "TCP"
        port_name = port_doc.get("name", "")
        if not isinstance(port_name, str) or (port_name and not DNS_LABEL.match(port_name)):
            check.error(f"{path}.name", f"must be a DNS label, got {port_name!r}")
            port_name = ""
        elif len(port_docs) > 1 and not port_name:
            check.error(f"{path}.name", "a service with several ports must name each")
        target = check.port_ref(port_doc.get("targetPort", number), f"{path}.targetPort")
        if number is not None:
            if (protocol, number) in seen:
                check.error(path, f"duplicate port {number}/{protocol}")
            seen.add((protocol, number))
        node_port = 0
        if "nodePort" in port_doc:
            if kind not in ("NodePort", "LoadBalancer"):
                check.error(f"{path}.nodePort", f"may not be used when `type` is '{kind}'")
            node_port = check.integer(port_doc["nodePort"], f"{path}.nodePort",
                                      NODE_PORT_RANGE[0], NODE_PORT_RANGE[-1]) or 0
            if node_port and (protocol, node_port) in node_ports:
                check.error(f"{path}.nodePort", f"duplicate node port {node_port}/{protocol}")
            node_ports.add((protocol, node_port))
        if number is not None and target is not None:
            ports.append(ServicePort(number, target, protocol, port_name, node_port))
    names = [p.name for p in ports if p.name]
    for dup in sorted({n for n in names if names.count(n) > 1}):
        check.error("spec.ports", f"port name {dup!r} is used twice")
    if not port_docs and kind != "ExternalName" and not headless:
        check.error("spec.ports", "a service needs at least one port")
    return ports


def _external_name(spec: dict[str, Any], kind: str, check: Checker) -> str:
    """One trailing dot is allowed, as the API server allows it (it validates the name
    without it); the DNS answer is the name as given."""
    name = spec.get("externalName", "")
    if kind != "ExternalName":
        if name:
            check.error("spec.externalName", f"applies to type ExternalName only, not {kind}")
        return ""
    bare = name.removesuffix(".") if isinstance(name, str) else ""
    if not bare or len(bare) > 253 or not SUBDOMAIN.match(bare):
        check.error("spec.externalName", f"an ExternalName service needs a DNS name (a "
                                         f"lowercase RFC 1123 subdomain), got {name!r}")
        return ""
    return str(name)  # a selector is allowed, and ignored (no endpoints are made for it)


def _addresses(value: Any, path: str, check: Checker) -> tuple[str, ...]:
    """IPv4 addresses a client may use (not unspecified, loopback, link-local, multicast)."""
    out = []
    for i, item in enumerate(check.sequence(value, path)):
        try:
            address = ipaddress.IPv4Address(str(item))
        except ValueError:
            check.error(f"{path}[{i}]", f"not an IPv4 address: {item!r}")
            continue
        if address.is_unspecified or address.is_loopback or address.is_link_local or \
                address.is_multicast:
            check.error(f"{path}[{i}]", f"may not be a special address: {item}")
            continue
        out.append(str(address))
    return tuple(out)


def _affinity(spec: dict[str, Any], check: Checker) -> tuple[str, int]:
    affinity = spec.get("sessionAffinity", "None")
    if affinity not in ("None", "ClientIP"):
        check.error("spec.sessionAffinity", f"must be None or ClientIP, got {affinity!r}")
        affinity = "None"
    timeout = 10800  # DefaultClientIPServiceAffinitySeconds
    config = check.mapping(spec.get("sessionAffinityConfig"), "spec.sessionAffinityConfig")
    if config and affinity == "None":
        check.error("spec.sessionAffinityConfig", "must not be set when `sessionAffinity` is "
                                                  "None")
    check.fields(config, "spec.sessionAffinityConfig", {"clientIP"})
    client = check.mapping(config.get("clientIP"), "spec.sessionAffinityConfig.clientIP")
    check.fields(client, "spec.sessionAffinityConfig.clientIP", {"timeoutSeconds"})
    if "timeoutSeconds" in client:
        timeout = check.integer(client["timeoutSeconds"],
                                "spec.sessionAffinityConfig.clientIP.timeoutSeconds", 1,
                                MAX_AFFINITY_S) or timeout
    return str(affinity), timeout


def _load_balancer(spec: dict[str, Any], kind: str, external_policy: str,
                   check: Checker) -> dict[str, Any]:
    """The fields that only a LoadBalancer takes, and its health check node port."""
    for key in ("allocateLoadBalancerNodePorts", "loadBalancerClass",
                "loadBalancerSourceRanges"):
        if key in spec and kind != "LoadBalancer":
            check.error(f"spec.{key}", "may only be used when `type` is 'LoadBalancer'")
    allocate = spec.get("allocateLoadBalancerNodePorts", True)
    if not isinstance(allocate, bool):
        check.error("spec.allocateLoadBalancerNodePorts", f"must be true or false, got "
                                                          f"{allocate!r}")
        allocate = True
    lb_class = spec.get("loadBalancerClass") or ""
    if lb_class and (not isinstance(lb_class, str) or not QUALIFIED.match(lb_class)):
        check.error("spec.loadBalancerClass", f"must be a qualified name (e.g. "
                                              f"example.com/lb), got {lb_class!r}")
        lb_class = ""
    ranges = tuple(r for i, item in enumerate(check.sequence(
        spec.get("loadBalancerSourceRanges"), "spec.loadBalancerSourceRanges"))
        if (r := cidr(str(item).strip(), check, f"spec.loadBalancerSourceRanges[{i}]")))
    health_port = 0
    if "healthCheckNodePort" in spec:
        if kind != "LoadBalancer" or external_policy != "Local":
            check.error("spec.healthCheckNodePort", "may only be set when `type` is "
                                                    "'LoadBalancer' and "
                                                    "`externalTrafficPolicy` is 'Local'")
        else:
            health_port = check.integer(spec["healthCheckNodePort"], "spec.healthCheckNodePort",
                                        NODE_PORT_RANGE[0], NODE_PORT_RANGE[-1]) or 0
    load_balancer_ip = spec.get("loadBalancerIP") or ""
    try:
        load_balancer_ip = str(ipaddress.IPv4Address(load_balancer_ip)) if load_balancer_ip \
            else ""
    except ValueError:
        check.error("spec.loadBalancerIP", f"not an IPv4 address: {load_balancer_ip!r}")
        load_balancer_ip = ""
    return {"allocate_lb_node_ports": allocate, "load_balancer_class": lb_class,
            "load_balancer_source_ranges": ranges, "health_check_node_port": health_port,
            "load_balancer_ip": load_balancer_ip}
