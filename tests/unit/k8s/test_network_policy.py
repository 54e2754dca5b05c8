from kemu.k8s import network_policy
from kemu.k8s.store import PodStatus
from kemu.scenario.objects import (
    Container,
    ContainerPort,
    Namespace,
    NetworkPolicy,
    PodSpec,
    PolicyPeer,
    PolicyPort,
    PolicyRule,
)


def pod(name, ip, node, labels, namespace="default"):
    spec = PodSpec(name, namespace, labels,
                   (Container("c", "kemu/http-echo", ports=(ContainerPort(8080, "http"),)),))
    return PodStatus(spec, ip, node, True)


PODS = [pod("db", "10.244.1.2", "n2", {"app": "db"}),
        pod("api", "10.244.0.2", "n1", {"app": "api"}),
        pod("ops", "10.244.0.3", "n1", {"app": "x"}, namespace="tools")]
NAMESPACES = {"tools": Namespace("tools", {"team": "ops", "kubernetes.io/metadata.name": "tools"})}


def rules(policies, node="n2"):
    return network_policy.render(node, policies, PODS, NAMESPACES).splitlines()


def test_unselected_pods_get_no_rules():
    assert rules([]) == ["*filter", ":KEMU-POLICY - [0:0]",
                         "-A KEMU-POLICY -m conntrack --ctstate ESTABLISHED,RELATED -j ACCEPT",
                         "COMMIT"]


def test_selected_pod_allows_only_its_rules():
    policy = NetworkPolicy("p", "default", {"app": "db"}, ("Ingress",), ingress=(
        PolicyRule((PolicyPeer(pod_selector={"app": "api"}),
                    PolicyPeer(namespace_selector={"team": "ops"})),
                   (PolicyPort("TCP", "http"),)),))
    text = "\n".join(rules([policy]))
    chain = network_policy._chain("KEMU-IN", "default/db")
    assert f"-A {chain} -m comment --comment \"default/p\" -s 10.244.0.2/32 -p tcp -m tcp " \
           f"--dport 8080 -j MARK --or-mark 0x40000" in text  # named port → 8080
    assert "-s 10.244.0.3/32" in text  # ops, by its namespace's label
    assert f"-A KEMU-POLICY -d 10.244.1.2/32 -j {chain}" in text
    assert "-d 10.244.1.2/32 -m mark ! --mark 0x40000/0x40000 -j DROP" in text
    assert rules([policy], node="n1")[-2:] == [
        "-A KEMU-POLICY -m conntrack --ctstate ESTABLISHED,RELATED -j ACCEPT", "COMMIT"]


def test_deny_all_and_ip_block_except():
    deny = NetworkPolicy("deny", "default", {}, ("Ingress",))
    egress = NetworkPolicy("eg", "default", {"app": "db"}, ("Egress",), egress=(
        PolicyRule((PolicyPeer(ip_block="10.244.0.0/16", ip_block_except=("10.244.0.0/24",)),)),))
    text = "\n".join(rules([deny, egress]))
    assert "-d 10.244.1.2/32 -m mark ! --mark 0x40000/0x40000 -j DROP" in text
    block = next(line.split()[1] for line in text.splitlines()
                 if line.startswith("-A KEMU-IPB") and "RETURN" in line)
    assert f"-A {block} -d 10.244.0.0/24 -j RETURN" in text
    assert f"-A {block} -j MARK --or-mark 0x20000" in text
