"""Addresses as the API server and the cloud hand them out: ClusterIPs and node ports on a
Service's creation, load-balancer VIPs from a pool, the cluster DNS address, the nodes'
underlay addresses. Pure and deterministic, so a scenario always builds the same cluster."""

from __future__ import annotations

import ipaddress
from collections.abc import Iterator
from dataclasses import replace

from kemu.scenario.objects import Service

NODE_PORT_RANGE = range(30000, 32768)  # kube-apiserver's --service-node-port-range default
API_SERVER_OFFSET = 1  # .1 is the `kubernetes` Service's (the API server's), and no other's
DNS_OFFSET = 10  # where kubeadm puts the cluster DNS


def dns_service_ip(service_cidr: ipaddress.IPv4Network) -> str:
    return str(service_cidr.network_address + DNS_OFFSET)


def allocate(services: list[Service], service_cidr: ipaddress.IPv4Network,
             reserved: tuple[str, ...] = ()) -> tuple[list[Service], list[tuple[str, str]]]:
    """Give every service its ClusterIP, node ports and health check node port, as the API
    server does on create (pkg/registry/core/service/storage/alloc.go): what is asked for is
    checked, the rest allocated in order. A node port number is taken for every protocol;
    the ports of one Service with the same `port` (TCP and UDP) share one node port; a
    LoadBalancer with allocateLoadBalancerNodePorts false gets none it did not ask for.
    Returns the services and (service key, problem) pairs."""
    problems: list[tuple[str, str]] = []
    taken_ips = {str(service_cidr.network_address + API_SERVER_OFFSET), *reserved}
    taken_ports: dict[int, tuple[str, int]] = {}  # node port → (service, its `port`)
    for svc in services:
        if svc.cluster_ip not in ("", "None"):
            address = ipaddress.IPv4Address(svc.cluster_ip)
            if address not in service_cidr or address in (service_cidr.network_address,
                                                          service_cidr.broadcast_address):
                problems.append((svc.key, f"spec.clusterIPs[0]: failed to allocate IP {address}: "
                                          f"provided IP is not in the valid range. The range "
                                          f"of valid IPs is {service_cidr}"))
            elif svc.cluster_ip in taken_ips and not (
                    svc.key == "default/kubernetes" and address == service_cidr.network_address
                    + API_SERVER_OFFSET):
                problems.append((svc.key, f"spec.clusterIPs[0]: failed to allocate IP {address}: "
                                          f"provided IP is already allocated"))
            taken_ips.add(svc.cluster_ip)
        for i, port in enumerate(svc.ports):
            owner = taken_ports.get(port.node_port)
            if port.node_port and owner and owner != (svc.key, port.port):
                problems.append((svc.key, f"spec.ports[{i}].nodePort: {port.node_port}: "
                                          f"provided port is already allocated"))
            if port.node_port:
                taken_ports[port.node_port] = (svc.key, port.port)
        if svc.health_check_node_port:
            if svc.health_check_node_port in taken_ports:
                problems.append((svc.key, f"spec.healthCheckNodePort: failed to allocate "
                                          f"requested HealthCheck NodePort "
                                          f"{svc.health_check_node_port}: provided port is "
                                          f"already allocated"))
            taken_ports[svc.health_check_node_port] = (svc.key, 0)
    free_ips = (str(ip) for ip in service_cidr.hosts() if str(ip) not in taken_ips)
    free_ports = (p for p in NODE_PORT_RANGE if p not in taken_ports)
    out = []
    for svc in services:
        if svc.type != "ExternalName" and svc.cluster_ip == "":
            svc = replace(svc, cluster_ip=next(free_ips))
        if svc.type == "NodePort" or (svc.type == "LoadBalancer" and svc.allocate_lb_node_ports):
            # findRequestedNodePort: a port without one takes what its twin asked for.
            by_port = {p.port: p.node_port for p in svc.ports if p.node_port}
            ports = []
            for port in svc.ports:
                if not port.node_port:
                    if port.port not in by_port:
                        by_port[port.port] = next(free_ports)
                    port = replace(port, node_port=by_port[port.port])
                ports.append(port)
            svc = replace(svc, ports=tuple(ports))
        if svc.needs_health_check and not svc.health_check_node_port:
            svc = replace(svc, health_check_node_port=next(free_ports))
        out.append(svc)
    return out, problems


def allocate_vips(services: list[Service], pool: ipaddress.IPv4Network,
                  taken: set[str]) -> tuple[list[Service], list[tuple[str, str]]]:
    """Give each LoadBalancer service its external IP: spec.loadBalancerIP if set, else the
    next free pool address (what the cloud's controller does; a Service with a
    loadBalancerClass is another controller's, and gets none). Returns (service, problem)s."""
    problems = []
    used = set(taken)
    services = [replace(s, load_balancer_ip="") if s.load_balancer_class else s
                for s in services]
    for svc in services:
        if svc.type == "LoadBalancer" and svc.load_balancer_ip:
            if svc.load_balancer_ip in used:
                problems.append((svc.key, f"spec.loadBalancerIP {svc.load_balancer_ip} is "
                                          f"already taken"))
            used.add(svc.load_balancer_ip)
    free = (str(ip) for ip in pool.hosts() if str(ip) not in used)
    out = []
    for svc in services:
        if svc.type == "LoadBalancer" and not svc.load_balancer_ip and \
                not svc.load_balancer_class:
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


def keep_addresses(new: Service, old: Service) -> tuple[Service, list[str]]:
    """`new` as an update of `old` (kubectl apply to a Service that exists): it keeps its
    ClusterIP (immutable), its node ports and health check node port where it asks for none,
    and its load-balancer IP. Returns it and what the API server would refuse."""
    problems = []
    if new.cluster_ip not in ("", old.cluster_ip):
        problems.append(f"spec.clusterIP: Invalid value: {new.cluster_ip!r}: field is "
                        f"immutable")
    if new.type != old.type:
        problems.append(f"spec.type: changing a Service's type ({old.type} to {new.type}) is "
                        f"not an update kemu makes yet")
    elif new.needs_health_check != old.needs_health_check:
        problems.append(f"spec.externalTrafficPolicy: changing it ({old.external_traffic_policy} "
                        f"to {new.external_traffic_policy}) allocates or releases the health "
                        f"check node port, which is not an update kemu makes yet")
    kept = {(p.port, p.protocol): p.node_port for p in old.ports}
    ports = tuple(replace(p, node_port=p.node_port or kept.get((p.port, p.protocol), 0))
                  for p in new.ports)
    return replace(new, cluster_ip=old.cluster_ip, ports=ports,
                   health_check_node_port=new.health_check_node_port or
                   old.health_check_node_port,
                   load_balancer_ip=new.load_balancer_ip or old.load_balancer_ip), problems
