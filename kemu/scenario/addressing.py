"""Addresses as the API server and the cloud hand them out: ClusterIPs and node ports on a
Service's creation, load-balancer VIPs from a pool, the cluster DNS address, the nodes'
underlay addresses. Pure and deterministic, so a scenario always builds the same cluster."""

from __future__ import annotations

import ipaddress
from collections.abc import Iterator
from dataclasses import replace

from kemu.scenario.objects import Service

NODE_PORT_RANGE = range(30000, 32768)  # kube-apiserver's --service-node-port-range default
API_SERVER_OFFSET = 1  # .1 is the API server's service (kemu has none, but keeps it free)
DNS_OFFSET = 10  # where kubeadm puts the cluster DNS


def dns_service_ip(service_cidr: ipaddress.IPv4Network) -> str:
    return str(service_cidr.network_address + DNS_OFFSET)


def allocate(services: list[Service], service_cidr: ipaddress.IPv4Network,
             reserved: tuple[str, ...] = ()) -> tuple[list[Service], list[tuple[str, str]]]:
    """Give every service its ClusterIP and node ports: the ones asked for are checked, the
    others allocated in order. Returns the services and (service key, problem) pairs."""
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


def allocate_vips(services: list[Service], pool: ipaddress.IPv4Network,
                  taken: set[str]) -> tuple[list[Service], list[tuple[str, str]]]:
    """Give each LoadBalancer service its external IP: spec.loadBalancerIP if set, else the
    next free pool address (what the cloud's controller does). Returns (service, problem)s."""
    problems = []
    used = set(taken)
    for svc in services:
        if svc.type == "LoadBalancer" and svc.load_balancer_ip:
            if svc.load_balancer_ip in used:
                problems.append((svc.key, f"spec.loadBalancerIP {svc.load_balancer_ip} is "
                                          f"already taken"))
            used.add(svc.load_balancer_ip)
    free = (str(ip) for ip in pool.hosts() if str(ip) not in used)
    out = []
    for svc in services:
        if svc.type == "LoadBalancer" and not svc.load_balancer_ip:
            address = next(free, None)
            if address is None:
                problems.append((svc.key, f"the load balancer pool {pool} is exhausted"))
            else:
                svc = replace(svc, load_balancer_ip=address)
        out.append(svc)
    return out, problems


def underlay_addresses(cidr: ipaddress.IPv4Network, count: int) -> list[ipaddress.IPv4Interface]:
    """Addresses for `count` nodes on the underlay: .2, .3, ... (like kind's node network)."""
    hosts = list(_first_hosts(cidr, count + 1))
    if len(hosts) < count + 1:
        raise ValueError(f"underlay {cidr} is too small for {count} nodes")
    return [ipaddress.IPv4Interface(f"{ip}/{cidr.prefixlen}") for ip in hosts[1:]]


def _first_hosts(cidr: ipaddress.IPv4Network, n: int) -> Iterator[ipaddress.IPv4Address]:
    for i, ip in enumerate(cidr.hosts()):
        if i >= n:
            return
        yield ip
