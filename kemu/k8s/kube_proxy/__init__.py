"""kube-proxy: a node's Service rules from the view, rendered as kube-proxy's proxier for the
mode renders them (iptables.py) and handed to the node's chains."""

from __future__ import annotations

from kemu.k8s.controllers import RuleSink, View
from kemu.k8s.kube_proxy import iptables


class KubeProxy:
    def __init__(self, node: str, cluster_cidr: str, rules: RuleSink):
        self.node, self.cluster_cidr, self.rules = node, cluster_cidr, rules

    def sync(self, view: View) -> None:
        self.rules.sync(iptables.render(self.node, self.cluster_cidr, view.services,
                                        view.endpoints))
