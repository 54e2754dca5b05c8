"""Services: every type, ports, affinity, traffic policies, external IPs. Pure."""

from __future__ import annotations

import re
from typing import Any

from kemu.scenario.addressing import NODE_PORT_RANGE
from kemu.scenario.manifests.checker import DNS_SUBDOMAIN, Checker, metadata
from kemu.scenario.objects import Service, ServicePort

IGNORED_SERVICE_FIELDS = {"ipFamilies", "ipFamilyPolicy", "clusterIPs",
                          "allocateLoadBalancerNodePorts", "loadBalancerSourceRanges",
                          "loadBalancerClass"}
SERVICE_TYPES = ("ClusterIP", "NodePort", "LoadBalancer", "ExternalName")


def parse_service(doc: dict[str, Any], check: Checker) -> None:
    check.fields(doc, "", {"apiVersion", "kind", "metadata", "spec", "status"})
    name, namespace, _ = metadata(doc, check)
    spec = check.mapping(doc.get("spec"), "spec")
    check.fields(spec, "spec", {"type", "clusterIP", "ports", "selector", "externalIPs",
                                "sessionAffinity", "sessionAffinityConfig",
                                "externalTrafficPolicy", "externalName", "loadBalancerIP",
                                "internalTrafficPolicy", "publishNotReadyAddresses"},
                 IGNORED_SERVICE_FIELDS)
    kind = spec.get("type", "ClusterIP")
    if kind not in SERVICE_TYPES:
        check.error("spec.type", f"must be one of {', '.join(SERVICE_TYPES)}, got {kind!r}")
        return
    if spec.get("internalTrafficPolicy", "Cluster") != "Cluster":
        check.error("spec.internalTrafficPolicy", "only Cluster is supported")
    if spec.get("publishNotReadyAddresses"):
        check.error("spec.publishNotReadyAddresses", "is not supported")
    cluster_ip = spec.get("clusterIP", "")
    if not isinstance(cluster_ip, str):
        check.error("spec.clusterIP", f"must be an address or None, got {cluster_ip!r}")
        cluster_ip = ""
    selector = check.labels(spec["selector"], "spec.selector") if "selector" in spec else None
    ports = []
    port_docs = check.sequence(spec.get("ports"), "spec.ports")
    for i, p in enumerate(port_docs):
        path = f"spec.ports[{i}]"
        port_doc = check.mapping(p, path)
        check.fields(port_doc, path, {"name", "protocol", "port", "targetPort", "nodePort"},
                     {"appProtocol"})
        number = check.integer(port_doc.get("port"), f"{path}.port", 1, 65535)
        protocol = port_doc.get("protocol", "TCP")
        if protocol not in ("TCP", "UDP"):
            check.error(f"{path}.protocol", f"must be TCP or UDP, got {protocol!r}")
        port_name = port_doc.get("name", "")
        if len(port_docs) > 1 and not port_name:
            check.error(f"{path}.name", "a service with several ports must name each")
        target = check.port_ref(port_doc.get("targetPort", number), f"{path}.targetPort")
        node_port = 0
        if "nodePort" in port_doc:
            if kind not in ("NodePort", "LoadBalancer"):
                check.error(f"{path}.nodePort", f"only NodePort and LoadBalancer services have "
                                                f"node ports, this one is {kind}")
            node_port = check.integer(port_doc["nodePort"], f"{path}.nodePort",
                                      NODE_PORT_RANGE[0], NODE_PORT_RANGE[-1]) or 0
        if number is not None and target is not None:
            ports.append(ServicePort(number, target, str(protocol), str(port_name), node_port))
    names = [p.name for p in ports if p.name]
    for dup in sorted({n for n in names if names.count(n) > 1}):
        check.error("spec.ports", f"port name {dup!r} is used twice")
    external_name = spec.get("externalName", "")
    if kind == "ExternalName":
        if not isinstance(external_name, str) or not DNS_SUBDOMAIN.match(external_name):
            check.error("spec.externalName", f"an ExternalName service needs a DNS name, got "
                                             f"{external_name!r}")
        if selector:
            check.error("spec.selector", "an ExternalName service has no selector")
    elif external_name:
        check.error("spec.externalName", f"applies to type ExternalName only, not {kind}")
    elif not ports:
        check.error("spec.ports", "a service needs at least one port")
    if cluster_ip == "None" and kind != "ClusterIP":
        check.error("spec.clusterIP", f"a headless service (None) must be type ClusterIP, "
                                      f"not {kind}")
    affinity = spec.get("sessionAffinity", "None")
    if affinity not in ("None", "ClientIP"):
        check.error("spec.sessionAffinity", f"must be None or ClientIP, got {affinity!r}")
    timeout = 10800
    config = check.mapping(spec.get("sessionAffinityConfig"), "spec.sessionAffinityConfig")
    check.fields(config, "spec.sessionAffinityConfig", {"clientIP"})
    client = check.mapping(config.get("clientIP"), "spec.sessionAffinityConfig.clientIP")
    check.fields(client, "spec.sessionAffinityConfig.clientIP", {"timeoutSeconds"})
    if "timeoutSeconds" in client:
        timeout = check.integer(client["timeoutSeconds"],
                                "spec.sessionAffinityConfig.clientIP.timeoutSeconds", 1,
                                86400) or timeout
    policy = spec.get("externalTrafficPolicy", "Cluster")
    if policy not in ("Cluster", "Local"):
        check.error("spec.externalTrafficPolicy", f"must be Cluster or Local, got {policy!r}")
    elif policy == "Local" and kind not in ("NodePort", "LoadBalancer"):
        check.error("spec.externalTrafficPolicy", f"applies to NodePort and LoadBalancer "
                                                  f"services, not {kind}")
    external_ips = tuple(str(ip) for ip in check.sequence(spec.get("externalIPs"),
                                                          "spec.externalIPs"))
    for i, ip in enumerate(external_ips):
        if not re.match(r"^\d{1,3}(\.\d{1,3}){3}$", ip):
            check.error(f"spec.externalIPs[{i}]", f"not an IPv4 address: {ip!r}")
    if name:
        check.out.services.append(Service(
            name=name, namespace=namespace, type=kind, cluster_ip=cluster_ip, ports=tuple(ports),
            selector=selector, external_ips=external_ips, session_affinity=affinity,
            affinity_timeout_s=timeout, external_traffic_policy=policy,
            external_name=str(external_name), load_balancer_ip=str(spec.get("loadBalancerIP",
                                                                            ""))))
