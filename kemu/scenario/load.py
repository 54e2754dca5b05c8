"""Scenario files: YAML → checked, typed `Scenario`. Pure: nothing is created here.

Two passes, and every problem of a pass is reported at once: first the JSON schema
(schema.json: shapes, unknown keys), then the meaning, in the order below (plugin installed,
CIDRs disjoint, manifests valid, addresses allocated, pods schedulable, measurement ends and
events that exist). Each problem names the file and the field path, e.g.
`quickstart.yaml: measurements[1].to.pod: …`. A `matrix:` makes one run per combination, each
checked before any is built.
"""

from __future__ import annotations

import copy
import itertools
import json
from importlib import resources
from pathlib import Path
from typing import Any

import jsonschema
import yaml

from kemu.errors import KemuError, Problem, ScenarioError
from kemu.scenario import check_cluster, check_events, check_measurements, check_workloads
from kemu.scenario.addressing import (
    API_SERVER_OFFSET,
    allocate,
    allocate_vips,
    keep_addresses,
    underlay_addresses,
)
from kemu.scenario.images import image_map
from kemu.scenario.model import (
    NEG_READINESS_GATE,
    ClusterSpec,
    EventSpec,
    ExternalSpec,
    Run,
    Scenario,
)
from kemu.scenario.objects import Namespace, NetworkPolicy, PodSpec, Service, matches
from kemu.scenario.problems import Checks
from kemu.scenario.scheduler import SchedulingError, schedule


def load_schema() -> dict[str, Any]:
    text = resources.files("kemu.scenario").joinpath("schema.json").read_text()
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
    _check_schema(doc, file)
    matrix = doc.get("matrix") or {}
    runs, problems = [], []
    combinations = _combinations(matrix)
    for i, params in enumerate(combinations):
        if params in combinations[:i]:
            problems.append(Problem(f"matrix[{i}]", f"the same combination as matrix"
                                                    f"[{combinations.index(params)}]", file))
    for params in combinations:
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


def _unset_gates(pods: list[PodSpec], external: ExternalSpec | None, checks: Checks) -> None:
    """A readiness gate whose condition nothing in kemu sets keeps its pod from Ready for
    ever, as in a cluster without the controller that owns the condition: said before."""
    ours = {NEG_READINESS_GATE} if external and external.load_balancer.mode == "pods" \
        else set()
    said = set()
    for pod in pods:
        for gate in sorted(set(pod.readiness_gates) - ours):
            who = f"the pods of {pod.owner}" if pod.owner else f"pod {pod.key}"
            if (who, gate) not in said:
                said.add((who, gate))
                checks.warn_at(pod.key, f"nothing sets the readiness gate {gate!r} of {who}, "
                                        f"so they never become Ready (kemu sets "
                                        f"{NEG_READINESS_GATE!r} for the gce-neg load balancer)")


def _shared_pod_ports(pods: list[PodSpec], services: list[Service],
                      external: ExternalSpec | None, checks: Checks) -> None:
    """Container-native load balancing rewrites a pod's replies by (pod, port): two VIP ports
    reaching one pod port cannot both be answered from their own address. Said before."""
    if not external or external.load_balancer.mode != "pods":
        return
    claims: dict[tuple[str, int, str], set[str]] = {}
    for svc in services:
        if svc.type != "LoadBalancer" or not svc.selector:
            continue
        for pod in pods:
            if pod.namespace != svc.namespace or not matches(svc.selector, pod.labels):
                continue
            for port in svc.ports:
                number = pod.port_number(port.target_port, port.protocol)
                if number is not None:
                    claims.setdefault((pod.key, number, port.protocol), set()).add(
                        f"{svc.key}:{port.port}")
    for (pod_key, number, protocol), vips in sorted(claims.items()):
        if len(vips) > 1:
            checks.warn_at(pod_key, f"{', '.join(sorted(vips))} all reach {pod_key}'s "
                                    f"{protocol} port {number}: behind the gce-neg load "
                                    f"balancer its replies leave from one of them only")


def _combinations(matrix: dict[str, list[Any]] | list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Every combination of a mapping's value lists; a list names its combinations itself."""
    if isinstance(matrix, list):
        return [dict(entry) for entry in matrix]
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
    """One scenario document (no matrix) checked: ScenarioError lists every problem."""
    _check_schema(doc, file)
    return _check_meaning(doc, file)


def _addresses(services: list[Service], applied: list[tuple[int, Service]],
               cluster: ClusterSpec, external: ExternalSpec | None,
               checks: Checks) -> tuple[list[Service], dict[tuple[int, str], Service]]:
    """Every Service's addresses, as the API server and the cloud's controller give them: the
    scenario's first, then those events apply, in time order — a new one allocated its own,
    an update keeping those of the Service it replaces. Returns the scenario's Services and
    the applied ones by (event index, key)."""
    seen = {s.key for s in services}
    new = []
    for i, svc in applied:
        if svc.key not in seen:
            new.append((i, svc))
        seen.add(svc.key)
    everything, clashes = allocate(services + [s for _, s in new], cluster.service_cidr)
    if external:
        taken = {external.checker_ip, *external.host_addresses().values()}
        if external.load_balancer.mode == "bgp":  # metallb-bgp's router
            taken.add(str(external.cidr.network_address + 2))
        everything, more = allocate_vips(everything, external.load_balancer.pool, taken)
        clashes += more
    elif any(s.type == "LoadBalancer" for s in everything):
        checks.warn("external.loadBalancer", "the scenario has LoadBalancer services but no "
                                             "external load balancer: only their ClusterIPs "
                                             "and NodePorts work")
    for key, what in clashes:
        checks.error_at(key, what)
    for svc in everything:
        if external and svc.type == "LoadBalancer" and not svc.allocate_lb_node_ports and \
                external.load_balancer.health(svc.external_traffic_policy)["port"] == "traffic":
            checks.error_at(svc.key, f"spec.allocateLoadBalancerNodePorts: false, but the "
                                     f"{external.load_balancer.preset} load balancer checks "
                                     f"the Service's node port (allocate node ports, or use a "
                                     f"preset that checks kube-proxy's health)")
        if external and svc.type == "LoadBalancer" and external.load_balancer.mode == "pods":
            if svc.load_balancer_source_ranges:
                checks.warn_at(svc.key, "spec.loadBalancerSourceRanges: the gce-neg load "
                                        "balancer sends straight to pods, past kube-proxy's "
                                        "firewall chains: not enforced")
            if any(p.protocol == "UDP" for p in svc.ports):
                checks.warn_at(svc.key, "the gce-neg load balancer checks pods over TCP: a UDP "
                                        "port's pods are never healthy, its VIP drops the "
                                        "traffic")
        health = external.load_balancer.health(svc.external_traffic_policy) if external else {}
        if external and svc.type == "LoadBalancer" and health.get("check") == "tcp" and \
                health.get("port") == "traffic" and any(p.protocol == "UDP" for p in svc.ports):
            checks.warn_at(svc.key, f"the {external.load_balancer.preset} load balancer "
                                    f"checks a UDP port's nodes with TCP on its node port, "
                                    f"which nothing answers: every node is unhealthy and the "
                                    f"load balancer "
                                    + ("fails open (sends to all), as the cloud's does"
                                       if health.get("fail_open") else "drops the traffic"))
    first = everything[:len(services)]
    made = {(i, svc.key): svc for (i, _), svc in zip(new, everything[len(services):],
                                                      strict=True)}
    latest = {s.key: s for s in first}
    allocated = {}
    for i, svc in applied:
        if (i, svc.key) not in made:
            svc, problems = keep_addresses(svc, latest[svc.key])
            for what in problems:
                checks.error_at(svc.key, what)
        latest[svc.key] = allocated[(i, svc.key)] = made.get((i, svc.key), svc)
    return first, allocated


def _check_schema(doc: Any, file: str) -> None:
    validator = jsonschema.Draft202012Validator(load_schema())
    errors = sorted(validator.iter_errors(doc), key=lambda e: list(map(str, e.absolute_path)))
    if errors:
        raise ScenarioError([Problem(field_path(e.absolute_path) or "(top level)",
                                     _schema_message(e), file) for e in errors])


def _schema_message(error: jsonschema.ValidationError) -> str:
    if error.validator == "additionalProperties":
        return f"unknown field: {error.message.split('(')[-1].rstrip(')')}"
    if error.validator == "oneOf" and error.context:
        # Name the alternative that came closest rather than "is not valid under any".
        best = jsonschema.exceptions.best_match(error.context)
        return best.message
    return error.message


def _check_meaning(doc: dict[str, Any], file: str) -> Scenario:
    """The second pass, in order; every problem collected, raised once at the end."""
    checks = Checks(file)
    cluster = check_cluster.cluster(doc["cluster"], checks)
    topology = check_cluster.topology(doc.get("topology") or {}, checks)
    if cluster and topology:
        cluster = check_cluster.lay_out(cluster, topology, checks)
        check_cluster.disjoint({"cluster.podCIDR": cluster.pod_cidr,
                                "cluster.serviceCIDR": cluster.service_cidr,
                                "topology.underlayCIDR": topology.underlay_cidr}, checks)
    images = image_map(doc.get("images"), checks)
    objects = check_workloads.workloads(doc.get("workloads") or [], checks,
                                        check_cluster.room(cluster) if cluster else None, images)
    api_server = None
    if cluster and topology and len(cluster.nodes) <= topology.underlay_cidr.num_addresses - 3:
        api_server = (str(cluster.service_cidr.network_address + API_SERVER_OFFSET),
                      str(underlay_addresses(topology.underlay_cidr, len(cluster.nodes))[0].ip))
    external = check_cluster.external(doc.get("external"), cluster, topology, checks)
    dns = check_cluster.dns(doc["cluster"].get("dns") or {}, cluster, topology, external,
                            checks)
    check_workloads.add_ons(objects, dns, bool(doc.get("external")), checks, api_server)
    _unset_gates(objects.pods, external, checks)
    event_docs = doc.get("events") or []
    applied = check_events.applied(event_docs, checks, images)
    in_time = sorted(applied, key=lambda i: event_docs[i]["at"])
    services: list[Service] = []
    allocated: dict[tuple[int, str], Service] = {}  # the Services events apply
    if cluster:
        services, allocated = _addresses(objects.services, [
            (i, obj) for i in in_time for obj in applied[i] if isinstance(obj, Service)],
            cluster, external, checks)
        _shared_pod_ports(objects.pods, services, external, checks)
    placement: dict[str, str] = {}
    if cluster:
        try:
            placement = schedule(objects.pods, list(cluster.nodes), cluster.max_pods)
        except SchedulingError as e:
            checks.error("workloads", str(e))
        check_cluster.capacity(cluster, placement, checks)
    declared = {ns.name: ns for ns in objects.namespaces}
    used = {p.namespace for p in objects.pods} | {s.namespace for s in services} | {"default"}
    namespaces = [declared.get(n) or Namespace(n, {"kubernetes.io/metadata.name": n})
                  for n in sorted(used | set(declared))]
    events: list[EventSpec] = []
    made: set[str] = set()  # pods the events make
    if cluster and topology:
        events, made = check_events.events(
            event_docs, cluster, topology, objects.pods, objects.templates,
            [*services, *objects.policies, *namespaces, *objects.ingresses,
             *objects.ingress_classes, *objects.secrets, *objects.slices],
            applied, allocated, checks)
    applied_policies = any(isinstance(o, NetworkPolicy) for objs in applied.values() for o in objs)
    if cluster and not cluster.policy_engine and (objects.policies or applied_policies):
        checks.warn("cluster.networkPolicy", f"{cluster.cni_plugin} enforces no NetworkPolicy, "
                                             f"so the scenario's policies are not enforced "
                                             f"(as in a cluster); networkPolicy: {{engine: "
                                             f"canal}} puts calico's policy engine on flannel")
    later = list({s.key: s for s in allocated.values()}.values())
    measurements = check_measurements.measurements(doc.get("measurements") or [], objects.pods,
                                                   services + later, list(objects.templates),
                                                   cluster, external, checks, made)
    checks.raise_problems()
    assert cluster and topology
    meta = doc["metadata"]
    return Scenario(name=meta["name"], description=meta.get("description", ""), path=file,
                    cluster=cluster, topology=topology, pods=tuple(objects.pods),
                    placement=placement, measurements=tuple(measurements),
                    services=tuple(services), policies=tuple(objects.policies),
                    namespaces=tuple(namespaces), dns=dns, external=external,
                    ingresses=tuple(objects.ingresses),
                    ingress_classes=tuple(objects.ingress_classes), secrets=tuple(objects.secrets),
                    slices=tuple(objects.slices),
                    warnings=tuple(checks.warnings), events=tuple(events),
                    templates=objects.templates, rollouts=objects.rollouts)
