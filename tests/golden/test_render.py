"""Every pure renderer, on one cluster (render/world.yaml) with every kind of object: what
kube-proxy, the policy agent, cluster DNS, the ingress controller, the load balancer and each
backend's CNI config would be given. Pods get addresses in order on their nodes (host-local's
order) and are all ready."""

import ipaddress
import json
from pathlib import Path

import pytest

from kemu import registry
from kemu.backend import PodNetwork
from kemu.edge.config import lb_config
from kemu.k8s import dns, ingress, network_policy
from kemu.k8s.endpointslices import controller_slices, endpoint_map
from kemu.k8s.ipam import SubnetLeaseStore
from kemu.k8s.kube_proxy import iptables as kube_proxy
from kemu.k8s.resolv_conf import resolv_conf
from kemu.k8s.store import PodStatus
from kemu.scenario import load_scenario

from .plain import dumps

HERE = Path(__file__).parent / "render"
RUN = Path("/run/kemu/RUN")  # the run directory as the renderers would be given it


def underlay_ip(index):
    return ipaddress.IPv4Address("172.18.0.2") + index


@pytest.fixture(scope="module")
def world():
    scenario = load_scenario(HERE / "world.yaml")
    leases = SubnetLeaseStore(scenario.cluster.pod_cidr)
    for i, node in enumerate(scenario.cluster.nodes):
        leases.acquire(node.name, underlay_ip(i))
    taken: dict[str, int] = {}
    pods = []
    for spec in scenario.pods:
        node = scenario.placement[spec.key]
        taken[node] = taken.get(node, 1) + 1
        ip = str(leases.get(node).subnet.network_address + taken[node])
        pods.append(PodStatus(spec, ip, node, True))
    eps = endpoint_map(scenario.services, [*scenario.slices, *(
        s for svc in scenario.services for s in controller_slices(svc, pods))])
    return scenario, leases, pods, eps


@pytest.mark.parametrize("node", ["node1", "node2", "node3"])
def test_kube_proxy_rules(world, node, golden):
    scenario, _, _, eps = world
    index = [n.name for n in scenario.cluster.nodes].index(node)
    golden(HERE / f"kube-proxy-{node}.rules",
           kube_proxy.render(node, str(underlay_ip(index)), str(scenario.cluster.pod_cidr),
                             scenario.services, eps))


@pytest.mark.parametrize("node", ["node1", "node2", "node3"])
def test_policy_chains(world, node, golden):
    scenario, _, pods, _ = world
    namespaces = {ns.name: ns for ns in scenario.namespaces}
    golden(HERE / f"policy-{node}.rules",
           network_policy.render(node, list(scenario.policies), pods, namespaces))


def test_dns_records(world, golden):
    scenario, _, pods, eps = world
    records = dns.records(list(scenario.services), eps, pods, scenario.dns.domain)
    golden(HERE / "dns-records.json", json.dumps(records, indent=1, sort_keys=True) + "\n")


def test_resolv_conf(world, golden):
    scenario = world[0]
    pod = next(p for p in scenario.pods if p.namespace == "shop")
    golden(HERE / "resolv-shop.conf", resolv_conf(pod, scenario.dns))


def test_nginx_config(world, golden):
    scenario, _, _, eps = world
    directory = RUN / "ingress"
    certs = {"": (directory / "certs/default.crt", directory / "certs/default.key"),
             "shop.example.com": (directory / "certs/shop.example.com.crt",
                                  directory / "certs/shop.example.com.key")}
    golden(HERE / "nginx-world.conf", ingress.render(
        list(scenario.ingresses), list(scenario.ingress_classes), list(scenario.services), eps,
        directory, certs))


def test_load_balancer_config(world, golden):
    scenario = world[0]
    assert scenario.external
    nodes = [(n.name, str(underlay_ip(i)), f"0e:00:00:00:00:0{i + 1}")
             for i, n in enumerate(scenario.cluster.nodes)]
    golden(HERE / "lb.json", dumps(lb_config(scenario.external, list(scenario.services),
                                             nodes)))


@pytest.mark.parametrize("name", sorted(registry.backends()))
def test_cni_config(world, name, golden):
    scenario = world[0]
    cls = registry.backends()[name]
    backend = cls(PodNetwork(scenario.cluster.pod_cidr, 1500, RUN, None), {})
    leases = SubnetLeaseStore(scenario.cluster.pod_cidr, cls.subnet_len)
    leases.acquire("node1", underlay_ip(0))
    lease = leases.acquire("node2", underlay_ip(1))
    golden(HERE / f"cni-{name}.conflist",
           json.dumps(backend.cni_config(_Named("node2"), lease), indent=2) + "\n")


class _Named:
    """A node as far as cni_config looks: its name."""

    def __init__(self, name):
        self.name = name
