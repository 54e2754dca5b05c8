"""The checks of a scenario's `measurements`: names unique, parameters those of the kind (each
kind, kemu/measure/, says which it takes, what it can run from and be aimed at, and checks
what is its own), and both ends resolved to places that exist: a pod (by name or selector), a
node, a Service's ClusterIP, node port or load balancer, an external host. Pure."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from kemu import registry
from kemu.scenario.model import ClusterSpec, ExternalSpec, MeasurementEnd, MeasurementSpec
from kemu.scenario.objects import PodSpec, Service, matches, qualified
from kemu.scenario.problems import Checks

COMMON = ("name", "type", "from", "to", "background")  # keys every measurement takes


@dataclass(frozen=True)
class Scope:
    """What a kind's own checks may look at besides the measurement's document."""

    nodes: list[str]
    deployments: list[str]  # namespace/name
    source: MeasurementEnd | None  # `from`, resolved
    policy_engine: str = ""  # what enforces NetworkPolicy ("" for nothing)


def measurements(docs: list[dict[str, Any]], pods: list[PodSpec], services: list[Service],
                 deployments: list[str], cluster: ClusterSpec | None,
                 external: ExternalSpec | None, checks: Checks,
                 later: set[str] | None = None) -> list[MeasurementSpec]:
    """Each measurement checked; its ends may name the pods at the start or those events
    make (`later`): whether such a pod exists yet is known when the measurement starts."""
    kinds = registry.measurements()
    ends = _Ends(pods, services, [n.name for n in cluster.nodes] if cluster else [],
                 [h.name for h in external.hosts] if external else [], checks, later)
    out = []
    names: set[str] = set()
    for i, doc in enumerate(docs):
        where = f"measurements[{i}]"
        kind = kinds[doc["type"]]
        if doc["name"] in names:
            checks.error(f"{where}.name", f"measurement name {doc['name']!r} is used twice")
        names.add(doc["name"])
        allowed = kind.defaults()
        for key in doc:
            if key not in allowed and key not in COMMON:
                checks.error(f"{where}.{key}", f"not a parameter of {kind.type} "
                                               f"(it takes: {', '.join(allowed)})")
        source = None
        if not kind.sources:
            if "from" in doc:
                checks.error(f"{where}.from", f"a {kind.type} measurement runs from no place "
                                              f"of the cluster; it has no `from`")
        elif "from" not in doc:
            checks.error(where, f"a {kind.type} measurement needs `from`")
            continue
        else:
            source = ends.resolve(doc["from"], f"{where}.from", kind.sources)
        if not kind.targets and "to" in doc:
            checks.error(f"{where}.to", kind.to_refused or f"a {kind.type} measurement has "
                                                           f"no `to`")
        kind.check(doc, where, checks, Scope(ends.nodes, deployments, source,
                                             cluster.policy_engine if cluster else ""))
        target = None
        if kind.targets:
            if "to" not in doc:
                checks.error(where, f"a {kind.type} measurement needs `to`")
                continue
            target = ends.resolve(doc["to"], f"{where}.to", kind.targets)
            if source and target and source == target:
                checks.error(f"{where}.to", f"measures from {source} to itself")
        if (source or not kind.sources) and (target or not kind.targets):
            params = {k: doc.get(k, v) for k, v in allowed.items()}
            out.append(MeasurementSpec(doc["name"], kind.type, source, target, params,
                                       doc.get("background", False)))
    if docs and docs[-1].get("background"):
        checks.error(f"measurements[{len(docs) - 1}].background", "the last measurement "
                     "has nothing to run alongside: put the background load before the "
                     "measurements it should disturb")
    for i, m in enumerate(out):  # a server port is one per target namespace
        clash = next((later for later in out[i + 1:] if m.background and
                      later.type == m.type and later.target == m.target and
                      kinds[m.type].server), None)
        if clash:
            checks.error("measurements", f"{clash.name} would start its {m.type} server on "
                         f"{m.target} while background measurement {m.name} may still use "
                         f"the same port: measure to another target")
    return out


class _Ends:
    """Resolves a measurement's `from` or `to` to a MeasurementEnd, or reports why not."""

    def __init__(self, pods: list[PodSpec], services: list[Service], nodes: list[str],
                 hosts: list[str], checks: Checks, later: set[str] | None = None):
        self.pods, self.services, self.nodes, self.hosts = pods, services, nodes, hosts
        self.checks = checks
        self.later = later or set()  # pods that events create (a scaled Deployment's, …)

    def resolve(self, doc: dict[str, Any], where: str,
                allowed: tuple[str, ...]) -> MeasurementEnd | None:
        kinds = [k for k in ("pod", "node", "selector", "service", "nodePort", "external",
                             "loadBalancer") if k in doc]
        if kinds == ["node", "nodePort"] or kinds == ["nodePort", "node"]:
            kinds = ["nodePort"]
        if len(kinds) != 1:
            self.checks.error(where, "give exactly one of pod, node, selector, service, or "
                                     "nodePort with node")
            return None
        kind = "pod" if kinds[0] == "selector" else kinds[0]
        if kind not in allowed:
            self.checks.error(f"{where}.{kinds[0]}", f"this measurement cannot target a {kind} "
                                                     f"(it can: {', '.join(allowed) or 'nothing'})")
            return None
        namespace = doc.get("namespace", "default")
        if kind == "external":
            if doc["external"] not in self.hosts:
                self.checks.error(f"{where}.external", f"no external host named "
                                                       f"{doc['external']!r} (external.hosts: "
                                                       f"{', '.join(self.hosts) or 'none'})")
                return None
            return MeasurementEnd(external=doc["external"])
        if kind in ("service", "nodePort", "loadBalancer"):
            return self._service(doc, where, kind, namespace)
        if "node" in doc:
            if doc["node"] not in self.nodes:
                self.checks.error(f"{where}.node", f"no node named {doc['node']!r} "
                                                   f"(nodes: {', '.join(self.nodes)})")
                return None
            return MeasurementEnd(node=doc["node"])
        if "pod" in doc:
            key = qualified(doc, "pod")
            namespace, name = key.split("/", 1)
            first = sorted(p.name for p in self.pods if p.namespace == namespace)
            made = sorted(k.split("/", 1)[1] for k in self.later
                          if k.startswith(f"{namespace}/"))
            if name not in first + made:
                listed = ", ".join(first) or "none"
                listed += f"; made by events: {', '.join(made)}" if made else ""
                self.checks.error(f"{where}.pod", f"no pod named {name!r} in namespace "
                                                  f"{namespace!r} (pods: {listed})")
                return None
            return MeasurementEnd(pod=key)
        in_namespace = sorted((p for p in self.pods if p.namespace == namespace),
                              key=lambda p: p.name)
        chosen = [p for p in in_namespace if matches(doc["selector"], p.labels)]
        index = doc.get("index", 0)
        if index >= len(chosen):
            self.checks.error(f"{where}.selector", f"selects {len(chosen)} pod(s) in namespace "
                                                   f"{namespace!r}; index {index} is out of "
                                                   f"range")
            return None
        return MeasurementEnd(pod=chosen[index].key)

    def _service(self, doc: dict[str, Any], where: str, kind: str,
                 namespace: str) -> MeasurementEnd | None:
        name = doc[kind]
        if "." in name:  # NAME.NAMESPACE, as a DNS short name would say it
            name, namespace = name.split(".", 1)
        svc = next((s for s in self.services if s.name == name and s.namespace == namespace),
                   None)
        error = self.checks.error
        if svc is None:
            known = ", ".join(s.name for s in self.services if s.namespace == namespace) or \
                "none"
            error(f"{where}.{kind}", f"no service named {name!r} in namespace {namespace!r} "
                                     f"(services: {known})")
            return None
        if svc.type == "ExternalName" or svc.headless:
            what = "headless" if svc.headless else "ExternalName"
            error(f"{where}.{kind}", f"service {svc.key} is {what}: it has no virtual IP to "
                                     f"measure")
            return None
        wanted = doc.get("port")
        ports = [p for p in svc.ports if wanted in (None, p.name, p.port)]
        if not ports:
            error(f"{where}.port", f"service {svc.key} has no port {wanted!r}")
            return None
        port = ports[0]
        if kind == "service":
            return MeasurementEnd(service=svc.key, port=port.port)
        if kind == "loadBalancer":
            if svc.load_balancer_class:
                error(f"{where}.loadBalancer", f"service {svc.key} asks for loadBalancerClass "
                                               f"{svc.load_balancer_class}: the cloud's load "
                                               f"balancer leaves it to that controller")
                return None
            if svc.type != "LoadBalancer" or not svc.load_balancer_ip:
                error(f"{where}.loadBalancer", f"service {svc.key} has no external load "
                                               f"balancer (type {svc.type}; a scenario needs "
                                               f"`external:` for one)")
                return None
            return MeasurementEnd(service=svc.key, port=port.port, load_balancer=True)
        if not port.node_port:
            error(f"{where}.nodePort", f"service {svc.key} is {svc.type}: it has no node port")
            return None
        if doc.get("node") not in self.nodes:
            error(f"{where}.node", f"a nodePort target needs the node to aim at "
                                   f"(nodes: {', '.join(self.nodes)})")
            return None
        return MeasurementEnd(service=svc.key, node=doc["node"], port=port.node_port,
                              node_port=True)
