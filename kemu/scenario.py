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
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path
from typing import Any

import jsonschema
import yaml

from kemu.errors import KemuError, Problem, ScenarioError
from kemu.manifests import parse_manifest
from kemu.objects import NodeSpec, PodSpec, matches
from kemu.registry import load_group
from kemu.scheduler import SchedulingError, schedule
from kemu.units import parse_duration_ms, parse_rate_mbit

DEFAULT_POD_CIDR = "10.244.0.0/16"
DEFAULT_SERVICE_CIDR = "10.96.0.0/12"
DEFAULT_UNDERLAY_CIDR = "172.18.0.0/16"
DEFAULT_TOPOLOGY = "single-switch"

# Keys each measurement type takes besides name/type/from/to, with defaults.
MEASUREMENT_PARAMS: dict[str, dict[str, Any]] = {
    "ping": {"repeat": 1, "count": 10, "interval": 0.2, "size": 56},
    "iperf3": {"repeat": 1, "duration": 5, "parallel": 1, "reverse": False, "protocol": "tcp",
               "bitrate": None},
}


@dataclass(frozen=True)
class LinkParams:
    bw_mbit: float | None = None
    delay_ms: float | None = None


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


@dataclass(frozen=True)
class Endpoint:
    """One end of a measurement: a pod (namespace/name) or a node."""

    pod: str = ""
    node: str = ""

    def __str__(self) -> str:
        if self.node:
            return f"node/{self.node}"
        return self.pod.removeprefix("default/")


@dataclass(frozen=True)
class MeasurementSpec:
    name: str
    type: str
    source: Endpoint
    target: Endpoint
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
    warnings: tuple[Problem, ...] = ()
    raw: dict[str, Any] = field(default_factory=dict, compare=False)


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
        placement: dict[str, str] = {}
        if cluster and pods is not None:
            try:
                placement = schedule(pods, list(cluster.nodes))
            except SchedulingError as e:
                self.error("workloads", str(e))
            self._capacity(cluster, placement)
        measurements = self._measurements(self.doc.get("measurements") or [], pods or [],
                                          cluster)
        if self.problems:
            raise ScenarioError(self.problems)
        assert cluster and topology and pods is not None
        meta = self.doc["metadata"]
        return Scenario(name=meta["name"], description=meta.get("description", ""),
                        path=self.file, cluster=cluster, topology=topology, pods=tuple(pods),
                        placement=placement, measurements=tuple(measurements),
                        warnings=tuple(self.warnings), raw=self.doc)

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
        return ClusterSpec(tuple(nodes), plugin.lower(), options, pod_cidr, service_cidr)

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
        bw = delay = None
        if "bw" in link:
            try:
                bw = parse_rate_mbit(link["bw"])
            except ValueError as e:
                self.error("topology.link.bw", str(e))
        if "delay" in link:
            try:
                delay = parse_duration_ms(link["delay"])
            except ValueError as e:
                self.error("topology.link.delay", str(e))
        if underlay is None:
            return None
        return TopologySpec(name.lower(), underlay, LinkParams(bw, delay))

    def _disjoint(self, cidrs: dict[str, ipaddress.IPv4Network]) -> None:
        items = list(cidrs.items())
        for i, (a, net_a) in enumerate(items):
            for b, net_b in items[i + 1:]:
                if net_a.overlaps(net_b):
                    self.error(b, f"{net_b} overlaps {a} {net_a}")

    def _workloads(self, docs: list[Any]) -> list[PodSpec] | None:
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
        seen: set[str] = set()
        for pod in pods:
            if pod.key in seen:
                self.error("workloads", f"two pods are named {pod.key}")
            seen.add(pod.key)
        return pods

    def _measurements(self, docs: list[dict[str, Any]], pods: list[PodSpec],
                      cluster: ClusterSpec | None) -> list[MeasurementSpec]:
        out = []
        names: set[str] = set()
        node_names = [n.name for n in cluster.nodes] if cluster else []
        for i, doc in enumerate(docs):
            where = f"measurements[{i}]"
            if doc["name"] in names:
                self.error(f"{where}.name", f"measurement name {doc['name']!r} is used twice")
            names.add(doc["name"])
            allowed = MEASUREMENT_PARAMS[doc["type"]]
            for key in doc:
                if key not in allowed and key not in ("name", "type", "from", "to"):
                    self.error(f"{where}.{key}", f"not a parameter of {doc['type']} "
                                                 f"(it takes: {', '.join(allowed)})")
            if doc.get("bitrate") and doc.get("protocol", "tcp") != "udp":
                self.error(f"{where}.bitrate", "bitrate applies to protocol: udp only")
            source = self._endpoint(doc["from"], f"{where}.from", pods, node_names)
            target = self._endpoint(doc["to"], f"{where}.to", pods, node_names)
            if source and target and source == target:
                self.error(f"{where}.to", f"measures from {source} to itself")
            if source and target:
                params = {k: doc.get(k, v) for k, v in allowed.items()}
                out.append(MeasurementSpec(doc["name"], doc["type"], source, target, params))
        return out

    def _endpoint(self, doc: dict[str, Any], where: str, pods: list[PodSpec],
                  node_names: list[str]) -> Endpoint | None:
        kinds = [k for k in ("pod", "node", "selector") if k in doc]
        if len(kinds) != 1:
            self.error(where, "give exactly one of pod, node or selector")
            return None
        namespace = doc.get("namespace", "default")
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
