"""Services: address allocation (what the API server does on create) and endpoints (what the
endpoints controller derives from ready pods). Pure."""

from __future__ import annotations

import ipaddress
from dataclasses import dataclass, replace

from kemu.manifests import NODE_PORT_RANGE as NODE_PORTS
from kemu.objects import PodSpec, Service, ServicePort, matches

NODE_PORT_RANGE = range(NODE_PORTS[0], NODE_PORTS[1] + 1)
API_SERVER_OFFSET = 1  # .1 is the API server's service (kemu has none, but keeps it free)
DNS_OFFSET = 10  # where kubeadm puts the cluster DNS


@dataclass(frozen=True)
class PodStatus:
    """A pod as the controllers see it: where it runs and whether it is ready."""

    spec: PodSpec
    ip: str
    node: str
    ready: bool


@dataclass(frozen=True)
class Endpoint:
    pod: str  # namespace/name
    ip: str
    node: str
    port: int  # the target port on the pod


def dns_service_ip(service_cidr: ipaddress.IPv4Network) -> str:
    return str(service_cidr.network_address + DNS_OFFSET)


def allocate(services: list[Service], service_cidr: ipaddress.IPv4Network,
             reserved: tuple[str, ...] = ()) -> tuple[list[Service], list[tuple[str, str]]]:
    """Give every service its ClusterIP and node ports: the ones asked for are checked, the
    others allocated in order (deterministic, so a scenario always builds the same cluster).
    Returns the services and (service key, problem) pairs."""
    problems: list[tuple[str, str]] = []
    taken_ips = {str(service_cidr.network_address + API_SERVER_OFFSET), *reserved}
    taken_ports: set[tuple[int, str]] = set()
    for svc in services:
        if svc.cluster_ip not in ("", "None"):
            try:
                address = ipaddress.IPv4Address(svc.cluster_ip)
            except ValueError:
                problems.append((svc.key, f"spec.clusterIP {svc.cluster_ip!r} is not an address"))
                continue
            if address not in service_cidr or address in (service_cidr.network_address,
                                                          service_cidr.broadcast_address):
                problems.append((svc.key, f"spec.clusterIP {address} is not a usable address "
                                          f"of the service CIDR {service_cidr}"))
            elif svc.cluster_ip in taken_ips:
                problems.append((svc.key, f"spec.clusterIP {address} is already taken"))
            taken_ips.add(svc.cluster_ip)
        for port in svc.ports:
            if port.node_port:
                if (port.node_port, port.protocol) in taken_ports:
                    problems.append((svc.key, f"nodePort {port.node_port}/{port.protocol} is "
                                              f"already taken"))
                taken_ports.add((port.node_port, port.protocol))
    free_ips = (str(ip) for ip in service_cidr.hosts() if str(ip) not in taken_ips)
    free_ports = (p for p in NODE_PORT_RANGE)
    out = []
    for svc in services:
        if svc.type != "ExternalName" and svc.cluster_ip == "":
            svc = replace(svc, cluster_ip=next(free_ips))
        if svc.type in ("NodePort", "LoadBalancer"):
            ports = []
            for port in svc.ports:
                if not port.node_port:
                    number = next(p for p in free_ports if (p, port.protocol) not in taken_ports)
                    taken_ports.add((number, port.protocol))
                    port = replace(port, node_port=number)
                ports.append(port)
            svc = replace(svc, ports=tuple(ports))
        out.append(svc)
    return out, problems


def endpoints(service: Service, port: ServicePort, pods: list[PodStatus]) -> list[Endpoint]:
    """Ready pods selected by the service, with the port this service port targets on each
    (a named targetPort may differ from pod to pod; pods without it are left out)."""
    if service.selector is None:
        return []
    found = []
    for pod in pods:
        if not pod.ready or pod.spec.namespace != service.namespace or \
                not matches(service.selector, pod.spec.labels) or not service.selector:
            continue
        number = pod.spec.port_number(port.target_port, port.protocol)
        if number is not None:
            found.append(Endpoint(pod.spec.key, pod.ip, pod.node, number))
    return sorted(found, key=lambda e: ipaddress.IPv4Address(e.ip))
