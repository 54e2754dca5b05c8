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
from dataclasses import dataclass, field, replace
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
    owner_template,
    replacement,
    scale,
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
    "ping": {"repeat": 1, "warmup": 0, "count": 10, "interval": 0.2, "size": 56},
    "iperf3": {"repeat": 1, "warmup": 0, "duration": 5, "parallel": 1, "reverse": False,
               "protocol": "tcp", "bitrate": None},
    "http": {"repeat": 1, "warmup": 0, "count": 20, "interval": 0.0, "timeout": 2.0,
             "path": "/", "host": None},
    "dns": {"repeat": 1, "warmup": 0, "count": 10, "query": None},
    "failover": {"repeat": 1, "warmup": 0, "fail": None, "at": 2.0, "duration": 30.0,
                 "interval": 0.1, "timeout": 0.5, "path": "/"},
    "tcp-rr": {"repeat": 1, "warmup": 0, "duration": 2, "size": 64, "port": None},
    "tcp-connect": {"repeat": 1, "warmup": 0, "count": 20, "interval": 0.01, "timeout": 1.0,
                    "port": None},
    "http-load": {"repeat": 1, "warmup": 0, "duration": 5, "connections": 10, "threads": 2,
                  "timeout": 2, "path": "/", "host": None, "port": None},
}
# What each measurement type can be aimed at.
TARGETS = {"ping": ("pod", "node", "external"), "iperf3": ("pod", "node", "external"),
           "http": ("pod", "service", "nodePort", "loadBalancer", "external"), "dns": (),
           "failover": ("loadBalancer",), "tcp-rr": ("pod", "node", "external"),
           "tcp-connect": ("pod", "node", "service", "nodePort", "loadBalancer", "external"),
           "http-load": ("pod", "service", "nodePort", "loadBalancer", "external")}
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
    link: LinkParams = LinkParams()  # every node's link
    wan: LinkParams | None = None  # the link between zones (topologies that have one)


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
    background: bool = False  # runs alongside the measurements after it


# What each event does, and the keys it takes besides `at` and `action`.
EVENT_KEYS = {
    "node-down": ("node",), "node-up": ("node",),  # the node stops/starts answering
    "link-down": ("link",), "link-up": ("link",),  # carrier lost/back on a link
    "link-set": ("link", "bw", "delay", "jitter", "loss"),  # new link parameters
    "delete-pod": ("pod", "namespace"),  # kubectl delete pod: its Deployment replaces it
    "scale": ("deployment", "namespace", "replicas"),  # kubectl scale deployment
    "apply": ("manifest", "file"),  # kubectl apply: a Service or NetworkPolicy
    "delete": ("kind", "name", "namespace"),  # kubectl delete service|networkpolicy
}


@dataclass(frozen=True)
class EventSpec:
    """One change on a run's timeline, `at` seconds after its measurements start."""

    at: float
    action: str
    target: str  # a node, a link, a pod or Deployment key, or the object's key
    link: dict[str, Any] = field(default_factory=dict)  # link-set: the LinkParams changed
    replicas: int = 0
    objects: tuple[Service | NetworkPolicy, ...] = ()  # apply
    kind: str = ""  # delete: Service or NetworkPolicy

    def __str__(self) -> str:
        units = {"bw_mbit": ("bw", "mbit"), "delay_ms": ("delay", "ms"),
                 "jitter_ms": ("jitter", "ms"), "loss_pct": ("loss", "%")}
        changes = " ".join(f"{units[k][0]}={v:g}{units[k][1]}" for k, v in self.link.items())
        extra = {"scale": f" to {self.replicas}", "link-set": f" {changes}",
                 "delete": f" {self.kind}"}.get(self.action, "")
        return f"{self.action} {self.target.removeprefix('default/')}{extra}"


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
    events: tuple[EventSpec, ...] = ()  # in time order
    templates: dict[str, PodSpec] = field(default_factory=dict)  # Deployment key → pod


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


def read_document(path: Path) -> Any:
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
    return parse_runs(read_document(path), str(path))


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
        self.templates: dict[str, PodSpec] = {}
        self.places: dict[str, str] = {}  # object key → where it was declared
        self.external_hosts: list[str] = []

    def error(self, where: str, what: str, file: str = "") -> None:
        self.problems.append(Problem(where, what, file or self.file))

    def check(self) -> Scenario:
        cluster = self._cluster(self.doc["cluster"])
        topology = self._topology(self.doc.get("topology") or {})
        if cluster and topology:
            cluster = self._lay_out(cluster, topology)
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
        applied = self._applied(self.doc.get("events") or [])
        services: list[Service] = []
        if cluster:
            # Services applied by events later get their addresses now, after the others'.
            services, clashes = allocate(self.services + applied, cluster.service_cidr)
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
        events: list[EventSpec] = []
        if cluster and topology:
            events = self._events(self.doc.get("events") or [], cluster, topology, pods,
                                  services[len(services) - len(applied):])
            services = services[:len(services) - len(applied)]
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
                        warnings=tuple(self.warnings), events=tuple(events),
                        templates=self.templates)

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
        link = self._link_params(LinkParams(), doc.get("link") or {}, "topology.link")
        wan = None
        if "wan" in doc:
            if not getattr(topologies.get(name.lower()), "has_wan", False):
                self.error("topology.wan", f"topology {name!r} has no link between zones "
                                           f"(the zones topology has)")
            wan = self._link_params(LinkParams(), doc["wan"], "topology.wan")
        if underlay is None:
            return None
        return TopologySpec(name.lower(), underlay, link, wan)

    def _link_params(self, base: LinkParams, doc: dict[str, Any], where: str) -> LinkParams:
        """`base` with the link parameters `doc` gives (bw, delay, jitter, loss, queue)."""
        link = replace(base, **self._link_changes(doc, where))
        if link.jitter_ms > link.delay_ms:
            self.error(f"{where}.jitter", "jitter larger than the delay would need packets to "
                                          "leave before they were sent")
        return link

    def _link_changes(self, doc: dict[str, Any], where: str) -> dict[str, Any]:
        """The LinkParams fields `doc` sets, parsed."""
        changes: dict[str, Any] = {}
        if "bw" in doc:
            try:
                changes["bw_mbit"] = parse_rate_mbit(doc["bw"])
            except ValueError as e:
                self.error(f"{where}.bw", str(e))
        for key in ("delay", "jitter"):
            if key in doc:
                try:
                    changes[f"{key}_ms"] = parse_duration_ms(doc[key])
                except ValueError as e:
                    self.error(f"{where}.{key}", str(e))
        if "loss" in doc:
            try:
                changes["loss_pct"] = float(str(doc["loss"]).rstrip("%"))
                if not 0 <= changes["loss_pct"] <= 100:
                    raise ValueError
            except ValueError:
                self.error(f"{where}.loss", f"a percentage 0-100, got {doc['loss']!r}")
        if "queue" in doc:
            changes["queue"] = doc["queue"]
        return changes

    def _lay_out(self, cluster: ClusterSpec, topology: TopologySpec) -> ClusterSpec:
        """The topology places the nodes (e.g. in zones, by label) and may refuse a cluster
        it cannot lay out."""
        topo_cls = load_group("kemu.topologies").get(topology.name)
        lay_out = getattr(topo_cls, "lay_out", None)
        if lay_out is None:
            return cluster
        nodes, problems = lay_out(list(cluster.nodes))
        for problem in problems:
            self.error("cluster.nodes", problem)
        return replace(cluster, nodes=tuple(nodes))

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
                self.templates.update(parsed.templates)
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
                if key not in allowed and key not in ("name", "type", "from", "to",
                                                      "background"):
                    self.error(f"{where}.{key}", f"not a parameter of {kind} "
                                                 f"(it takes: {', '.join(allowed)})")
            if doc.get("bitrate") and doc.get("protocol", "tcp") != "udp":
                self.error(f"{where}.bitrate", "bitrate applies to protocol: udp only")
            self._tool_params(doc, kind, where)
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
                out.append(MeasurementSpec(doc["name"], kind, source, target, params,
                                           doc.get("background", False)))
        if docs and docs[-1].get("background"):
            self.error(f"measurements[{len(docs) - 1}].background", "the last measurement "
                       "has nothing to run alongside: put the background load before the "
                       "measurements it should disturb")
        for i, m in enumerate(out):  # a server port is one per target namespace
            clash = next((later for later in out[i + 1:] if m.background and
                          later.type == m.type and later.target == m.target and
                          m.type in ("iperf3", "tcp-rr")), None)
            if clash:
                self.error("measurements", f"{clash.name} would start its {m.type} server on "
                           f"{m.target} while background measurement {m.name} may still use "
                           f"the same port: measure to another target")
        return out

    def _tool_params(self, doc: dict[str, Any], kind: str, where: str) -> None:
        """What sockperf (tcp-rr) and wrk (http-load) accept, said before anything is built."""
        duration = doc.get("duration", MEASUREMENT_PARAMS[kind].get("duration"))
        if kind in ("tcp-rr", "http-load") and duration is not None and \
                (duration < 1 or duration != int(duration)):
            self.error(f"{where}.duration", f"{kind} runs for whole seconds (≥ 1); got {duration}")
        timeout = doc.get("timeout", 1)
        if kind == "http-load" and (timeout < 1 or timeout != int(timeout)):
            self.error(f"{where}.timeout", f"wrk's timeout is whole seconds (≥ 1); got {timeout}")
        if kind == "tcp-rr" and not 14 <= doc.get("size", 64) <= 65000:
            self.error(f"{where}.size", "sockperf messages are 14 to 65000 bytes")
        if kind == "http-load":
            threads = doc.get("threads", MEASUREMENT_PARAMS[kind]["threads"])
            connections = doc.get("connections", MEASUREMENT_PARAMS[kind]["connections"])
            if connections < threads:
                self.error(f"{where}.connections", f"wrk needs at least one connection per "
                                                   f"thread ({connections} < {threads} threads)")
        if kind == "tcp-connect" and "node" in (doc.get("to") or {}) and \
                "nodePort" not in doc["to"] and not doc.get("port"):
            self.error(f"{where}.port", "a tcp-connect to a node needs the `port` to connect to")

    def _applied(self, docs: list[dict[str, Any]]) -> list[Service]:
        """Parse what `apply` events will create (their services need addresses now)."""
        self.event_objects: dict[int, list[Service | NetworkPolicy]] = {}
        services: list[Service] = []
        for i, doc in enumerate(docs):
            if doc["action"] != "apply":
                continue
            where = f"events[{i}]"
            if ("manifest" in doc) == ("file" in doc):
                self.error(where, "apply takes one of `manifest` (inline) or `file`")
                continue
            if "file" in doc:
                path = Path(self.file).parent / doc["file"]
                try:
                    sources = [(d, str(path), f"document {k}") for k, d in enumerate(
                        yaml.safe_load_all(path.read_text())) if d is not None]
                except (OSError, yaml.YAMLError) as e:
                    self.error(f"{where}.file", f"cannot read {path}: {e}")
                    continue
            else:
                sources = [(doc["manifest"], self.file, f"{where}.manifest")]
            objects: list[Service | NetworkPolicy] = []
            for manifest, file, place in sources:
                parsed = parse_manifest(manifest, file, place)
                self.problems += parsed.problems
                if parsed.pods or parsed.namespaces or parsed.ingresses or parsed.secrets:
                    self.error(place, "events apply Services and NetworkPolicies only")
                objects += [*parsed.services, *parsed.policies]
                services += parsed.services
                for key in [o.key for o in objects]:
                    self.places[key] = place
            self.event_objects[i] = objects
        return services

    def _events(self, docs: list[dict[str, Any]], cluster: ClusterSpec, topology: TopologySpec,
                pods: list[PodSpec], applied: list[Service]) -> list[EventSpec]:
        """Each event checked against the cluster as the events before it leave it."""
        nodes = [n.name for n in cluster.nodes]
        topo_cls = load_group("kemu.topologies").get(topology.name)
        if topo_cls is None:
            return []  # reported by _topology
        links = topo_cls.link_names(nodes)
        params = {name: topology.link if name in nodes else topology.wan or LinkParams()
                  for name in links}  # each link's parameters as the events change them
        down: set[str] = set()  # nodes down at that time
        pod_keys = {p.key for p in pods}
        used = set(pod_keys)  # every pod the run will have had, for new pods' names
        objects = {("Service", s.key) for s in self.services} | \
            {("NetworkPolicy", p.key) for p in self.policies}
        allocated = iter(applied)  # the applied services, with their addresses
        out: list[EventSpec] = []
        for i in sorted(range(len(docs)), key=lambda k: docs[k]["at"]):
            doc, where = docs[i], f"events[{i}]"
            action, at = doc["action"], float(doc["at"])
            for key in doc:
                if key not in ("at", "action", *EVENT_KEYS[action]):
                    self.error(f"{where}.{key}", f"not a key of {action} (it takes: "
                                                 f"{', '.join(EVENT_KEYS[action])})")
            namespace = doc.get("namespace", "default")
            if action in ("node-down", "node-up"):
                node = doc.get("node")
                if node not in nodes:
                    self.error(f"{where}.node", f"name the node (nodes: {', '.join(nodes)})")
                    continue
                if (node in down) == (action == "node-down"):
                    self.error(f"{where}.node", f"node {node} is already "
                                                f"{'down' if node in down else 'up'} then")
                    continue
                (down.add if action == "node-down" else down.discard)(node)
                out.append(EventSpec(at, action, node))
            elif action in ("link-down", "link-up", "link-set"):
                if doc.get("link") not in links:
                    self.error(f"{where}.link", f"name the link: a node's own link by the "
                                                f"node's name, or {', '.join(links)}")
                    continue
                given = {k: v for k, v in doc.items() if k in ("bw", "delay", "jitter", "loss")}
                if action == "link-set" and not given:
                    self.error(where, "link-set needs at least one of bw, delay, jitter, loss")
                    continue
                changes = self._link_changes(given, where)
                # Checked as the link will be: its parameters so far, changed.
                params[doc["link"]] = self._link_params(params[doc["link"]], given, where)
                out.append(EventSpec(at, action, doc["link"], link=changes))
            elif action == "delete-pod":
                key = f"{namespace}/{doc.get('pod', '')}"
                if key not in pod_keys:
                    self.error(f"{where}.pod", f"no pod {key} at that time")
                    continue
                template = owner_template(self.templates, key)
                if template:  # its Deployment replaces it, under a new name
                    new = replacement(template, pod_keys, used)
                    pod_keys.add(new)
                    used.add(new)
                pod_keys.discard(key)
                out.append(EventSpec(at, action, key))
            elif action == "scale":
                key = f"{namespace}/{doc.get('deployment', '')}"
                if key not in self.templates:
                    known = ", ".join(sorted(self.templates)) or "none"
                    self.error(f"{where}.deployment", f"no Deployment {key} (Deployments: "
                                                      f"{known})")
                    continue
                if "replicas" not in doc:
                    self.error(f"{where}.replicas", "scale needs the number of replicas")
                    continue
                out.append(EventSpec(at, action, key, replicas=doc["replicas"]))
                add, remove = scale(self.templates[key], pod_keys, doc["replicas"], used)
                pod_keys = (pod_keys | set(add)) - set(remove)
                used.update(add)
            elif action == "apply":
                applied_objects = self.event_objects.get(i, [])
                resolved: list[Service | NetworkPolicy] = []
                for obj in applied_objects:
                    kind = "Service" if isinstance(obj, Service) else "NetworkPolicy"
                    if (kind, obj.key) in objects:
                        self.error(where, f"{kind} {obj.key} exists at that time (an update "
                                          f"is not an event kemu has yet)")
                    objects.add((kind, obj.key))
                    resolved.append(next(allocated) if kind == "Service" else obj)
                if applied_objects:
                    out.append(EventSpec(at, action, ", ".join(o.key for o in resolved),
                                         objects=tuple(resolved)))
            else:  # delete
                kind, key = doc.get("kind", ""), f"{namespace}/{doc.get('name', '')}"
                if kind not in ("Service", "NetworkPolicy"):
                    self.error(f"{where}.kind", "delete takes kind Service or NetworkPolicy")
                    continue
                if (kind, key) not in objects:
                    self.error(f"{where}.name", f"no {kind} {key} at that time")
                    continue
                objects.discard((kind, key))
                out.append(EventSpec(at, action, key, kind=kind))
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
