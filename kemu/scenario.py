"""Scenario files: YAML → checked, typed `Scenario`. Pure: nothing is created here.

Two passes, and every problem of a pass is reported at once: first the JSON schema
(kemu/schemas/scenario.schema.json: shapes, unknown keys), then the meaning (plugin installed,
CIDRs disjoint, manifests valid, pods schedulable, measurement endpoints exist). Each problem
names the file and the field path, e.g. `quickstart.yaml: measurements[1].to.pod: …`.
"""

from __future__ import annotations

import copy
import ipaddress
import itertools
import json
from dataclasses import dataclass, replace
from importlib import resources
from pathlib import Path
from typing import Any

import jsonschema
import yaml

from kemu import ingress
from kemu.errors import KemuError, Problem, ScenarioError
from kemu.external import (
    DEFAULT_CIDR,
    HEALTH_KEYS,
    ExternalHostSpec,
    ExternalSpec,
    LoadBalancerSpec,
    allocate_vips,
)
from kemu.manifests import parse_manifest
from kemu.objects import (
    Container,
    ContainerPort,
    Ingress,
    Namespace,
    NetworkPolicy,
    NodeSpec,
    PodSpec,
    Secret,
    Service,
    ServicePort,
    matches,
)
from kemu.registry import load_group
from kemu.scheduler import SchedulingError, schedule
from kemu.services import allocate, dns_service_ip
from kemu.units import parse_duration_ms, parse_rate_mbit
from kemu.workloads import IMAGES, container_argv, known_images

DEFAULT_POD_CIDR = "10.244.0.0/16"
DEFAULT_SERVICE_CIDR = "10.96.0.0/12"
DEFAULT_UNDERLAY_CIDR = "172.18.0.0/16"
DEFAULT_TOPOLOGY = "single-switch"

# Keys each measurement type takes besides name/type/from/to, with defaults.
MEASUREMENT_PARAMS: dict[str, dict[str, Any]] = {
    "ping": {"repeat": 1, "count": 10, "interval": 0.2, "size": 56},
    "iperf3": {"repeat": 1, "duration": 5, "parallel": 1, "reverse": False, "protocol": "tcp",
               "bitrate": None},
    "http": {"repeat": 1, "count": 20, "path": "/", "host": None},
    "dns": {"repeat": 1, "count": 10, "query": None},
    "failover": {"repeat": 1, "fail": None, "at": 2.0, "duration": 30.0, "interval": 0.1,
                 "timeout": 0.5, "path": "/"},
}
# What each measurement type can be aimed at.
TARGETS = {"ping": ("pod", "node", "external"), "iperf3": ("pod", "node", "external"),
           "http": ("pod", "service", "nodePort", "loadBalancer", "external"), "dns": (),
           "failover": ("loadBalancer",)}
SOURCES = ("pod", "node", "external")


@dataclass(frozen=True)
class LinkParams:
    bw_mbit: float | None = None
    delay_ms: float = 0.0  # one way, where the node sends onto its link
    jitter_ms: float = 0.0
    loss_pct: float = 0.0
    queue: int = 0  # 0: the emulator's default


@dataclass(frozen=True)
class TopologySpec:
    name: str = DEFAULT_TOPOLOGY
    underlay_cidr: ipaddress.IPv4Network = ipaddress.IPv4Network(DEFAULT_UNDERLAY_CIDR)
    link: LinkParams = LinkParams()


@dataclass(frozen=True)
class ClusterSpec:
    nodes: tuple[NodeSpec, ...]
    cni_plugin: str
    cni_options: dict[str, Any]
    pod_cidr: ipaddress.IPv4Network
    service_cidr: ipaddress.IPv4Network
    proxy_mode: str = "iptables"  # kube-proxy mode asked for
    node_grace_s: float = 40.0  # kube-controller-manager's node-monitor-grace-period


@dataclass(frozen=True)
class DNSConfig:
    enabled: bool = True
    cluster_ip: str = ""
    domain: str = "cluster.local"


@dataclass(frozen=True)
class Endpoint:
    """One end of a measurement: a pod (namespace/name), a node, a Service's ClusterIP, or a
    Service's node port on a node. `port` is the resolved port number where one applies."""

    pod: str = ""
    node: str = ""
    service: str = ""  # namespace/name
    port: int = 0
    node_port: bool = False
    external: str = ""  # an external host
    load_balancer: bool = False  # the service's external IP

    def __str__(self) -> str:
        if self.external:
            return f"external/{self.external}"
        if self.load_balancer:
            return f"lb/{self.service.removeprefix('default/')}:{self.port}"
        if self.service:
            name = self.service.removeprefix("default/")
            return f"{self.node}:nodePort/{name}" if self.node_port else f"svc/{name}:{self.port}"
        if self.node:
            return f"node/{self.node}"
        return self.pod.removeprefix("default/")


@dataclass(frozen=True)
class MeasurementSpec:
    name: str
    type: str
    source: Endpoint
    target: Endpoint | None  # None for dns (it queries a name)
    params: dict[str, Any]


@dataclass(frozen=True)
class Scenario:
    name: str
    description: str
    path: str
    cluster: ClusterSpec
    topology: TopologySpec
    pods: tuple[PodSpec, ...]
    placement: dict[str, str]  # pod key → node name
    measurements: tuple[MeasurementSpec, ...]
    services: tuple[Service, ...] = ()
    policies: tuple[NetworkPolicy, ...] = ()
    namespaces: tuple[Namespace, ...] = ()
    dns: DNSConfig = DNSConfig(enabled=False)
    external: ExternalSpec | None = None
    ingresses: tuple[Ingress, ...] = ()
    secrets: tuple[Secret, ...] = ()
    warnings: tuple[Problem, ...] = ()


@dataclass(frozen=True)
class Run:
    """One combination of a scenario's matrix (or the scenario itself, with no params)."""

    params: dict[str, Any]
    scenario: Scenario

    @property
    def label(self) -> str:
        return ", ".join(f"{k.rsplit('.', 1)[-1]}={v}" for k, v in self.params.items())


def load_schema() -> dict[str, Any]:
    text = resources.files("kemu").joinpath("schemas/scenario.schema.json").read_text()
    return json.loads(text)


def field_path(parts: Any) -> str:
    """['measurements', 1, 'to', 'pod'] → 'measurements[1].to.pod'."""
    out = ""
    for part in parts:
        out += f"[{part}]" if isinstance(part, int) else (f".{part}" if out else str(part))
    return out


def _read(path: Path) -> Any:
    try:
        text = path.read_text()
    except OSError as e:
        raise KemuError(f"{path}: cannot read scenario: {e.strerror}") from None
    try:
        return yaml.safe_load(text)
    except yaml.YAMLError as e:
        mark = getattr(e, "problem_mark", None)
        where = f"line {mark.line + 1}, column {mark.column + 1}" if mark else ""
        raise ScenarioError([Problem(where, f"not valid YAML: {getattr(e, 'problem', e)}",
                                     str(path))]) from None


def load_scenario(path: str | Path) -> Scenario:
    """Read and check a scenario file without a matrix. Raises ScenarioError listing every
    problem."""
    runs = load_runs(path)
    if len(runs) != 1 or runs[0].params:
        raise KemuError(f"{path} has a matrix of {len(runs)} runs; use load_runs")
    return runs[0].scenario


def load_runs(path: str | Path) -> list[Run]:
    """Read and check a scenario file: every combination of its matrix (one run if it has
    none), each checked before any is built."""
    path = Path(path)
    return parse_runs(_read(path), str(path))


def parse_runs(doc: Any, file: str = "<scenario>") -> list[Run]:
    validator = jsonschema.Draft202012Validator(load_schema())
    errors = sorted(validator.iter_errors(doc), key=lambda e: list(map(str, e.absolute_path)))
    if errors:
        raise ScenarioError([Problem(field_path(e.absolute_path) or "(top level)",
                                     _schema_message(e), file) for e in errors])
    matrix = doc.get("matrix") or {}
    runs, problems = [], []
    for params in _combinations(matrix):
        variant = copy.deepcopy(doc)
        variant.pop("matrix", None)
        for key, value in params.items():
            _set_path(variant, key, value)
        try:
            runs.append(Run(params, parse_scenario(variant, file)))
        except ScenarioError as e:
            if not params:
                raise
            label = ", ".join(f"{k}={v}" for k, v in params.items())
            problems += [Problem(f"matrix[{label}] {p.where}", p.what, p.file)
                         for p in e.problems]
    if problems:
        raise ScenarioError(problems)
    return runs


def _combinations(matrix: dict[str, list[Any]]) -> list[dict[str, Any]]:
    keys = list(matrix)
    return [dict(zip(keys, values, strict=True))
            for values in itertools.product(*(matrix[k] for k in keys))]


def _set_path(doc: dict[str, Any], dotted: str, value: Any) -> None:
    """Set cluster.cni.plugin-style paths, creating mappings on the way (numbers index lists)."""
    target: Any = doc
    *parents, last = dotted.split(".")
    for part in parents:
        if isinstance(target, list):
            target = target[int(part)]
        else:
            target = target.setdefault(part, {})
    if isinstance(target, list):
        target[int(last)] = value
    else:
        target[last] = value


def parse_scenario(doc: Any, file: str = "<scenario>") -> Scenario:
    validator = jsonschema.Draft202012Validator(load_schema())
    errors = sorted(validator.iter_errors(doc), key=lambda e: list(map(str, e.absolute_path)))
    if errors:
        raise ScenarioError([Problem(field_path(e.absolute_path) or "(top level)",
                                     _schema_message(e), file) for e in errors])
    return _Semantics(doc, file).check()


def _schema_message(error: jsonschema.ValidationError) -> str:
    if error.validator == "additionalProperties":
        return f"unknown field: {error.message.split('(')[-1].rstrip(')')}"
    if error.validator == "oneOf" and error.context:
        # Name the alternative that came closest rather than "is not valid under any".
        best = jsonschema.exceptions.best_match(error.context)
        return best.message
    return error.message


class _Semantics:
    """Second pass: meaning. Collects problems, raises once."""

    def __init__(self, doc: dict[str, Any], file: str):
        self.doc, self.file = doc, file
        self.problems: list[Problem] = []
        self.warnings: list[Problem] = []
        self.services: list[Service] = []
        self.policies: list[NetworkPolicy] = []
        self.namespaces: list[Namespace] = []
        self.ingresses: list[Ingress] = []
        self.secrets: list[Secret] = []
        self.places: dict[str, str] = {}  # object key → where it was declared
        self.external_hosts: list[str] = []

    def error(self, where: str, what: str, file: str = "") -> None:
        self.problems.append(Problem(where, what, file or self.file))

    def check(self) -> Scenario:
        cluster = self._cluster(self.doc["cluster"])
        topology = self._topology(self.doc.get("topology") or {})
        if cluster and topology:
            self._disjoint({"cluster.podCIDR": cluster.pod_cidr,
                            "cluster.serviceCIDR": cluster.service_cidr,
                            "topology.underlayCIDR": topology.underlay_cidr})
        pods = self._workloads(self.doc.get("workloads") or [])
        dns = self._dns(self.doc["cluster"].get("dns") or {}, cluster)
        if dns.enabled:
            pods.append(DNS_POD)  # last: the user's pods keep the placement they would have
            self.services.insert(0, replace(DNS_SERVICE, cluster_ip=dns.cluster_ip))
        if self.ingresses:  # the ingress controller, exposed as it is in practice
            pods.append(INGRESS_POD)
            kind = "LoadBalancer" if self.doc.get("external") else "NodePort"
            self.services.append(replace(INGRESS_SERVICE, type=kind))
            self._check_ingress_backends()
        external = self._external(self.doc.get("external"), cluster, topology)
        services: list[Service] = []
        if cluster:
            services, clashes = allocate(self.services, cluster.service_cidr)
            if external:
                taken = {external.checker_ip, *external.host_addresses().values()}
                services, more = allocate_vips(services, external.load_balancer.pool, taken)
                clashes += more
            elif any(s.type == "LoadBalancer" for s in services):
                self.warnings.append(Problem("external.loadBalancer", "the scenario has "
                                             "LoadBalancer services but no external load "
                                             "balancer: only their ClusterIPs and NodePorts "
                                             "work", self.file))
            for key, what in clashes:
                self.error(self.places.get(key, "workloads"), what)
        placement: dict[str, str] = {}
        if cluster:
            try:
                placement = schedule(pods, list(cluster.nodes))
            except SchedulingError as e:
                self.error("workloads", str(e))
            self._capacity(cluster, placement)
        measurements = self._measurements(self.doc.get("measurements") or [], pods, services,
                                          cluster, external)
        if self.problems:
            raise ScenarioError(self.problems)
        assert cluster and topology
        meta = self.doc["metadata"]
        declared = {ns.name: ns for ns in self.namespaces}
        used = {p.namespace for p in pods} | {s.namespace for s in services} | {"default"}
        namespaces = [declared.get(n) or Namespace(n, {"kubernetes.io/metadata.name": n})
                      for n in sorted(used | set(declared))]
        return Scenario(name=meta["name"], description=meta.get("description", ""),
                        path=self.file, cluster=cluster, topology=topology, pods=tuple(pods),
                        placement=placement, measurements=tuple(measurements),
                        services=tuple(services), policies=tuple(self.policies),
                        namespaces=tuple(namespaces), dns=dns, external=external,
                        ingresses=tuple(self.ingresses), secrets=tuple(self.secrets),
                        warnings=tuple(self.warnings))

    def _external(self, doc: dict[str, Any] | None, cluster: ClusterSpec | None,
                  topology: TopologySpec | None) -> ExternalSpec | None:
        if doc is None:
            return None
        cidr = self._cidr("external.cidr", doc.get("cidr", DEFAULT_CIDR))
        hosts, names = [], set()
        for i, host in enumerate(doc.get("hosts") or []):
            where = f"external.hosts[{i}]"
            if host["name"] in names or (cluster and host["name"] in
                                         {n.name for n in cluster.nodes}):
                self.error(f"{where}.name", f"{host['name']!r} is already a host or node name")
            names.add(host["name"])
            image, command = host.get("image"), host.get("command")
            if image and command:
                self.error(where, "give image or command, not both")
            if image and image not in IMAGES:
                self.error(f"{where}.image", f"unknown image {image!r} (built-in: "
                                             f"{', '.join(known_images())})")
                continue
            port = host.get("port", 0)
            argv: tuple[str, ...] = tuple(command or ())
            if image:
                ports = (ContainerPort(port),) if port else ()
                argv = tuple(container_argv(Container("main", image, ports=ports)))
            hosts.append(ExternalHostSpec(host["name"], argv, port))
        lb_doc = doc.get("loadBalancer") or {}
        pool = self._cidr("external.loadBalancer.pool", lb_doc["pool"]) if "pool" in lb_doc \
            else None
        if cidr and pool is None:  # the top /27 of the external network
            pool = ipaddress.IPv4Network(f"{cidr.broadcast_address - 31}/27", strict=False) \
                if cidr.prefixlen <= 26 else cidr
        overrides = {HEALTH_KEYS[k]: v for k, v in (lb_doc.get("healthCheck") or {}).items()}
        if cidr and cluster and topology:
            self._disjoint({"external.cidr": cidr, "cluster.podCIDR": cluster.pod_cidr,
                            "cluster.serviceCIDR": cluster.service_cidr,
                            "topology.underlayCIDR": topology.underlay_cidr})
        if cidr is None or pool is None:
            return None
        return ExternalSpec(cidr, tuple(hosts),
                            LoadBalancerSpec(lb_doc.get("preset", "custom"), pool, overrides))

    def _check_ingress_backends(self) -> None:
        """Every backend an Ingress names must be a Service port of its namespace."""
        for ing in self.ingresses:
            backends = [ing.default_backend] if ing.default_backend else []
            backends += [p.backend for rule in ing.rules for p in rule.paths]
            for backend in backends:
                svc = next((s for s in self.services if s.name == backend.service and
                            s.namespace == ing.namespace), None)
                if svc is None:
                    self.error(self.places.get(ing.key, "workloads"),
                               f"Ingress {ing.key}: no service {backend.service!r}")
                elif not any(backend.port in (p.port, p.name) for p in svc.ports):
                    self.error(self.places.get(ing.key, "workloads"),
                               f"Ingress {ing.key}: service {backend.service!r} has no port "
                               f"{backend.port!r}")

    def _dns(self, doc: dict[str, Any], cluster: ClusterSpec | None) -> DNSConfig:
        if not doc.get("enabled", True) or cluster is None:
            return DNSConfig(enabled=False)
        ip = doc.get("clusterIP", dns_service_ip(cluster.service_cidr))
        try:
            if ipaddress.IPv4Address(ip) not in cluster.service_cidr:
                self.error("cluster.dns.clusterIP", f"{ip} is outside the service CIDR "
                                                    f"{cluster.service_cidr}")
        except ValueError:
            self.error("cluster.dns.clusterIP", f"not an IPv4 address: {ip!r}")
        return DNSConfig(True, ip, doc.get("domain", "cluster.local"))

    def _cidr(self, where: str, value: str) -> ipaddress.IPv4Network | None:
        try:
            return ipaddress.IPv4Network(value)
        except ValueError as e:
            self.error(where, f"not an IPv4 CIDR ({e})")
            return None

    def _cluster(self, doc: dict[str, Any]) -> ClusterSpec | None:
        nodes_doc = doc["nodes"]
        if isinstance(nodes_doc, int):
            nodes = [NodeSpec(f"node{i + 1}") for i in range(nodes_doc)]
        else:
            nodes = [NodeSpec(n["name"], dict(n.get("labels", {}))) for n in nodes_doc]
            seen: set[str] = set()
            for i, node in enumerate(nodes):
                if node.name in seen:
                    self.error(f"cluster.nodes[{i}].name", f"node {node.name!r} is listed twice")
                seen.add(node.name)
        plugin = doc["cni"]["plugin"]
        options = doc["cni"].get("options") or {}
        backends = load_group("kemu.backends")
        backend = backends.get(plugin.lower())
        if backend is None:
            self.error("cluster.cni.plugin", f"unknown CNI backend {plugin!r}; installed: "
                                             f"{', '.join(sorted(backends)) or 'none'}")
        else:
            for problem in backend.check_options(options, tuple(n.name for n in nodes)):
                self.error("cluster.cni.options", problem)
        pod_cidr = self._cidr("cluster.podCIDR", doc.get("podCIDR", DEFAULT_POD_CIDR))
        service_cidr = self._cidr("cluster.serviceCIDR",
                                  doc.get("serviceCIDR", DEFAULT_SERVICE_CIDR))
        if pod_cidr and backend is not None:
            extra_bits = backend.subnet_len - pod_cidr.prefixlen
            room = 2 ** extra_bits if extra_bits >= 0 else 0
            if room < len(nodes):
                self.error("cluster.podCIDR", f"{pod_cidr} holds {room} node subnet(s) of "
                                              f"/{backend.subnet_len}; the cluster has "
                                              f"{len(nodes)} nodes")
        if pod_cidr is None or service_cidr is None or backend is None:
            return None
        return ClusterSpec(tuple(nodes), plugin.lower(), options, pod_cidr, service_cidr,
                           (doc.get("kubeProxy") or {}).get("mode", "iptables"),
                           float(doc.get("nodeMonitorGracePeriod", 40.0)))

    def _capacity(self, cluster: ClusterSpec, placement: dict[str, str]) -> None:
        """Each node's pods must fit its subnet (less network, gateway and broadcast)."""
        backend = load_group("kemu.backends")[cluster.cni_plugin]
        room = 2 ** (32 - backend.subnet_len) - 3
        for node in cluster.nodes:
            count = sum(1 for n in placement.values() if n == node.name)
            if count > room:
                self.error("workloads", f"node {node.name} would run {count} pods, but its "
                                        f"/{backend.subnet_len} ({cluster.cni_plugin}) holds "
                                        f"{room}; add nodes")

    def _topology(self, doc: dict[str, Any]) -> TopologySpec | None:
        name = doc.get("name", DEFAULT_TOPOLOGY)
        topologies = load_group("kemu.topologies")
        if name.lower() not in topologies:
            self.error("topology.name", f"unknown topology {name!r}; installed: "
                                        f"{', '.join(sorted(topologies))}")
        underlay = self._cidr("topology.underlayCIDR",
                              doc.get("underlayCIDR", DEFAULT_UNDERLAY_CIDR))
        link = doc.get("link") or {}
        bw = None
        if "bw" in link:
            try:
                bw = parse_rate_mbit(link["bw"])
            except ValueError as e:
                self.error("topology.link.bw", str(e))
        times = {}
        for key in ("delay", "jitter"):
            try:
                times[key] = parse_duration_ms(link[key]) if key in link else 0.0
            except ValueError as e:
                self.error(f"topology.link.{key}", str(e))
        loss = 0.0
        if "loss" in link:
            try:
                loss = float(str(link["loss"]).rstrip("%"))
                if not 0 <= loss <= 100:
                    raise ValueError
            except ValueError:
                self.error("topology.link.loss", f"a percentage 0-100, got {link['loss']!r}")
        if times.get("jitter") and times.get("jitter", 0) > times.get("delay", 0):
            self.error("topology.link.jitter", "jitter larger than the delay would need "
                                               "packets to leave before they were sent")
        if underlay is None:
            return None
        return TopologySpec(name.lower(), underlay, LinkParams(
            bw, times.get("delay", 0.0), times.get("jitter", 0.0), loss, link.get("queue", 0)))

    def _disjoint(self, cidrs: dict[str, ipaddress.IPv4Network]) -> None:
        items = list(cidrs.items())
        for i, (a, net_a) in enumerate(items):
            for b, net_b in items[i + 1:]:
                if net_a.overlaps(net_b):
                    self.error(b, f"{net_b} overlaps {a} {net_a}")

    def _workloads(self, docs: list[Any]) -> list[PodSpec]:
        pods: list[PodSpec] = []
        base = Path(self.file).parent
        for i, doc in enumerate(docs):
            where = f"workloads[{i}]"
            if "file" in doc:
                path = base / doc["file"]
                try:
                    documents = [d for d in yaml.safe_load_all(path.read_text()) if d is not None]
                except OSError as e:
                    self.error(f"{where}.file", f"cannot read {path}: {e.strerror}")
                    continue
                except yaml.YAMLError as e:
                    self.error(f"{where}.file", f"{path} is not valid YAML: {e}")
                    continue
                sources = [(d, str(path), f"document {k}") for k, d in enumerate(documents)]
            else:
                sources = [(doc, self.file, where)]
            for manifest, file, place in sources:
                parsed = parse_manifest(manifest, file, place)
                self.problems += parsed.problems
                self.warnings += parsed.warnings
                pods += parsed.pods
                self.services += parsed.services
                self.policies += parsed.policies
                self.namespaces += parsed.namespaces
                self.ingresses += parsed.ingresses
                self.secrets += parsed.secrets
                keys = [o.key for o in parsed.services] + [o.key for o in parsed.policies] + \
                    [o.key for o in parsed.ingresses]
                for key in keys:
                    self.places[key] = place
        for kind, objects in (("pods", pods), ("services", self.services),
                              ("network policies", self.policies),
                              ("namespaces", self.namespaces)):
            keys = [getattr(o, "key", getattr(o, "name", "")) for o in objects]
            for dup in sorted({k for k in keys if keys.count(k) > 1}):
                self.error("workloads", f"two {kind} are named {dup}")
        return pods

    def _measurements(self, docs: list[dict[str, Any]], pods: list[PodSpec],
                      services: list[Service], cluster: ClusterSpec | None,
                      external: ExternalSpec | None) -> list[MeasurementSpec]:
        out = []
        names: set[str] = set()
        node_names = [n.name for n in cluster.nodes] if cluster else []
        self.external_hosts = [h.name for h in external.hosts] if external else []
        for i, doc in enumerate(docs):
            where = f"measurements[{i}]"
            kind = doc["type"]
            if doc["name"] in names:
                self.error(f"{where}.name", f"measurement name {doc['name']!r} is used twice")
            names.add(doc["name"])
            allowed = MEASUREMENT_PARAMS[kind]
            for key in doc:
                if key not in allowed and key not in ("name", "type", "from", "to"):
                    self.error(f"{where}.{key}", f"not a parameter of {kind} "
                                                 f"(it takes: {', '.join(allowed)})")
            if doc.get("bitrate") and doc.get("protocol", "tcp") != "udp":
                self.error(f"{where}.bitrate", "bitrate applies to protocol: udp only")
            source = self._endpoint(doc["from"], f"{where}.from", pods, services, node_names,
                                    SOURCES)
            if kind == "failover" and doc.get("fail") not in node_names:
                self.error(f"{where}.fail", f"name the node to take down (nodes: "
                                            f"{', '.join(node_names)})")
            target = None
            if kind == "dns":
                if "to" in doc:
                    self.error(f"{where}.to", "a dns measurement resolves `query` from `from`; "
                                              "it has no `to`")
                if not doc.get("query"):
                    self.error(f"{where}.query", "a dns measurement needs the name to resolve")
                if source and source.node:
                    self.error(f"{where}.from", "cluster names resolve in pods (their "
                                                "resolv.conf), not in nodes")
            elif "to" not in doc:
                self.error(where, f"a {kind} measurement needs `to`")
                continue
            else:
                target = self._endpoint(doc["to"], f"{where}.to", pods, services, node_names,
                                        TARGETS[kind])
                if source and target and source == target:
                    self.error(f"{where}.to", f"measures from {source} to itself")
            if source and (target or kind == "dns"):
                params = {k: doc.get(k, v) for k, v in allowed.items()}
                out.append(MeasurementSpec(doc["name"], kind, source, target, params))
        return out

    def _endpoint(self, doc: dict[str, Any], where: str, pods: list[PodSpec],
                  services: list[Service], node_names: list[str],
                  allowed: tuple[str, ...]) -> Endpoint | None:
        kinds = [k for k in ("pod", "node", "selector", "service", "nodePort", "external",
                             "loadBalancer") if k in doc]
        if kinds == ["node", "nodePort"] or kinds == ["nodePort", "node"]:
            kinds = ["nodePort"]
        if len(kinds) != 1:
            self.error(where, "give exactly one of pod, node, selector, service, or nodePort "
                              "with node")
            return None
        kind = "pod" if kinds[0] == "selector" else kinds[0]
        if kind not in allowed:
            self.error(f"{where}.{kinds[0]}", f"this measurement cannot target a {kind} "
                                              f"(it can: {', '.join(allowed) or 'nothing'})")
            return None
        namespace = doc.get("namespace", "default")
        if kind == "external":
            if doc["external"] not in self.external_hosts:
                self.error(f"{where}.external", f"no external host named {doc['external']!r} "
                                                f"(external.hosts: "
                                                f"{', '.join(self.external_hosts) or 'none'})")
                return None
            return Endpoint(external=doc["external"])
        if kind in ("service", "nodePort", "loadBalancer"):
            return self._service_endpoint(doc, where, kind, namespace, services, node_names)
        if "node" in doc:
            if doc["node"] not in node_names:
                self.error(f"{where}.node", f"no node named {doc['node']!r} "
                                            f"(nodes: {', '.join(node_names)})")
                return None
            return Endpoint(node=doc["node"])
        in_namespace = sorted((p for p in pods if p.namespace == namespace), key=lambda p: p.name)
        if "pod" in doc:
            if not any(p.name == doc["pod"] for p in in_namespace):
                names = ", ".join(p.name for p in in_namespace) or "none"
                self.error(f"{where}.pod", f"no pod named {doc['pod']!r} in namespace "
                                           f"{namespace!r} (pods: {names})")
                return None
            return Endpoint(pod=f"{namespace}/{doc['pod']}")
        chosen = [p for p in in_namespace if matches(doc["selector"], p.labels)]
        index = doc.get("index", 0)
        if index >= len(chosen):
            self.error(f"{where}.selector", f"selects {len(chosen)} pod(s) in namespace "
                                            f"{namespace!r}; index {index} is out of range")
            return None
        return Endpoint(pod=chosen[index].key)

    def _service_endpoint(self, doc: dict[str, Any], where: str, kind: str, namespace: str,
                          services: list[Service], node_names: list[str]) -> Endpoint | None:
        name = doc[kind]
        if "." in name:  # NAME.NAMESPACE, as a DNS short name would say it
            name, namespace = name.split(".", 1)
        svc = next((s for s in services if s.name == name and s.namespace == namespace), None)
        if svc is None:
            known = ", ".join(s.name for s in services if s.namespace == namespace) or "none"
            self.error(f"{where}.{kind}", f"no service named {name!r} in namespace "
                                          f"{namespace!r} (services: {known})")
            return None
        if svc.type == "ExternalName" or svc.headless:
            what = "headless" if svc.headless else "ExternalName"
            self.error(f"{where}.{kind}", f"service {svc.key} is {what}: it has no virtual IP "
                                          f"to measure")
            return None
        wanted = doc.get("port")
        ports = [p for p in svc.ports if wanted in (None, p.name, p.port)]
        if not ports:
            self.error(f"{where}.port", f"service {svc.key} has no port {wanted!r}")
            return None
        port = ports[0]
        if kind == "service":
            return Endpoint(service=svc.key, port=port.port)
        if kind == "loadBalancer":
            if svc.type != "LoadBalancer" or not svc.load_balancer_ip:
                self.error(f"{where}.loadBalancer", f"service {svc.key} has no external load "
                                                    f"balancer (type {svc.type}; a scenario "
                                                    f"needs `external:` for one)")
                return None
            return Endpoint(service=svc.key, port=port.port, load_balancer=True)
        if not port.node_port:
            self.error(f"{where}.nodePort", f"service {svc.key} is {svc.type}: it has no node "
                                            f"port")
            return None
        if doc.get("node") not in node_names:
            self.error(f"{where}.node", f"a nodePort target needs the node to aim at "
                                        f"(nodes: {', '.join(node_names)})")
            return None
        return Endpoint(service=svc.key, node=doc["node"], port=port.node_port, node_port=True)


# The cluster DNS add-on, as kubeadm installs CoreDNS: a pod in kube-system behind kube-dns.
DNS_POD = PodSpec(
    name="coredns", namespace="kube-system", labels={"k8s-app": "kube-dns"},
    containers=(Container(name="coredns", image="kemu/cluster-dns", ports=(
        ContainerPort(53, "dns", "UDP"), ContainerPort(53, "dns-tcp", "TCP"))),),
    owner="kemu/dns-addon")
DNS_SERVICE = Service(
    name="kube-dns", namespace="kube-system",
    ports=(ServicePort(53, "dns", "UDP", "dns"), ServicePort(53, "dns-tcp", "TCP", "dns-tcp")),
    selector={"k8s-app": "kube-dns"})

# The ingress controller add-on, as ingress-nginx deploys it.
INGRESS_POD = PodSpec(
    name=f"{ingress.CONTROLLER_NAME}-0", namespace=ingress.CONTROLLER_NAMESPACE,
    labels={"app.kubernetes.io/name": "ingress-nginx"},
    containers=(Container(name="controller", image="kemu/ingress-nginx", ports=(
        ContainerPort(80, "http"), ContainerPort(443, "https"))),),
    owner="kemu/ingress-addon")
INGRESS_SERVICE = Service(
    name=ingress.CONTROLLER_NAME, namespace=ingress.CONTROLLER_NAMESPACE, type="NodePort",
    ports=(ServicePort(80, "http", "TCP", "http"), ServicePort(443, "https", "TCP", "https")),
    selector={"app.kubernetes.io/name": "ingress-nginx"})
