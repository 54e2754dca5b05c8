"""Kubernetes manifests → kemu objects: Pod, apps/v1 Deployment, Service, Namespace and
networking.k8s.io/v1 NetworkPolicy.

Pure: parses and checks plain dicts. Every problem names the field path within the document;
the caller prefixes the document's place (`workloads[2]` or `web.yaml#1`). Fields that do
nothing in a network emulation (resources, probes for liveness, volumes…) are accepted with a
warning naming them; fields kemu does not know are errors, never silently ignored.
"""

from __future__ import annotations

import ipaddress
import re
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from typing import Any

from kemu.errors import Problem
from kemu.objects import (
    Container,
    ContainerPort,
    Ingress,
    IngressBackend,
    IngressPath,
    IngressRule,
    Namespace,
    NetworkPolicy,
    PodSpec,
    PolicyPeer,
    PolicyPort,
    PolicyRule,
    Probe,
    Secret,
    Service,
    ServicePort,
)
from kemu.workloads import IMAGES, known_images

DNS_LABEL = re.compile(r"^[a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?$")
DNS_SUBDOMAIN = re.compile(r"^[a-z0-9]([-a-z0-9.]{0,251}[a-z0-9])?$")

# Fields with no network meaning: accepted, reported as ignored.
IGNORED_POD_FIELDS = {
    "restartPolicy", "terminationGracePeriodSeconds", "volumes", "serviceAccountName",
    "serviceAccount", "securityContext", "affinity", "tolerations", "imagePullSecrets",
    "priorityClassName", "schedulerName", "dnsPolicy", "enableServiceLinks",
}
IGNORED_CONTAINER_FIELDS = {
    "resources", "imagePullPolicy", "livenessProbe", "startupProbe", "volumeMounts",
    "securityContext", "terminationMessagePath", "terminationMessagePolicy", "workingDir",
}
IGNORED_DEPLOYMENT_FIELDS = {
    "strategy", "revisionHistoryLimit", "minReadySeconds", "progressDeadlineSeconds", "paused",
}
IGNORED_METADATA_FIELDS = {"annotations", "uid", "resourceVersion", "generation",
                           "creationTimestamp", "managedFields"}

IGNORED_SERVICE_FIELDS = {"ipFamilies", "ipFamilyPolicy", "clusterIPs",
                          "allocateLoadBalancerNodePorts", "loadBalancerSourceRanges",
                          "loadBalancerClass"}
SUPPORTED_KINDS = ("v1/Pod", "apps/v1/Deployment", "v1/Service", "v1/Namespace", "v1/Secret",
                   "networking.k8s.io/v1/NetworkPolicy", "networking.k8s.io/v1/Ingress",
                   "extensions/v1beta1/Ingress", "networking.k8s.io/v1beta1/Ingress")
SERVICE_TYPES = ("ClusterIP", "NodePort", "LoadBalancer", "ExternalName")
NODE_PORT_RANGE = (30000, 32767)  # kube-apiserver's --service-node-port-range default


@dataclass
class Parsed:
    pods: list[PodSpec] = field(default_factory=list)
    services: list[Service] = field(default_factory=list)
    policies: list[NetworkPolicy] = field(default_factory=list)
    namespaces: list[Namespace] = field(default_factory=list)
    ingresses: list[Ingress] = field(default_factory=list)
    secrets: list[Secret] = field(default_factory=list)
    templates: dict[str, PodSpec] = field(default_factory=dict)  # Deployment key → its pods'
    problems: list[Problem] = field(default_factory=list)
    warnings: list[Problem] = field(default_factory=list)


class _Checker:
    """Collects problems and warnings with field paths while walking a document."""

    def __init__(self, out: Parsed, file: str, base: str):
        self.out, self.file, self.base = out, file, base

    def _path(self, path: str) -> str:
        return f"{self.base}.{path}" if path else self.base

    def error(self, path: str, what: str) -> None:
        self.out.problems.append(Problem(self._path(path), what, self.file))

    def warn(self, path: str, what: str) -> None:
        self.out.warnings.append(Problem(self._path(path), what, self.file))

    def mapping(self, value: Any, path: str) -> dict[str, Any]:
        if value is None:
            return {}
        if not isinstance(value, dict):
            self.error(path, f"expected a mapping, got {type(value).__name__}")
            return {}
        return value

    def sequence(self, value: Any, path: str) -> list[Any]:
        if value is None:
            return []
        if not isinstance(value, list):
            self.error(path, f"expected a list, got {type(value).__name__}")
            return []
        return value

    def fields(self, doc: dict[str, Any], path: str, known: set[str],
               ignored: frozenset[str] | set[str] = frozenset()) -> None:
        for key in doc:
            sub = f"{path}.{key}" if path else key
            if key in ignored:
                self.warn(sub, "has no effect in kemu and is ignored")
            elif key not in known:
                self.error(sub, f"unknown field (kemu supports: {', '.join(sorted(known))})")

    def labels(self, value: Any, path: str) -> dict[str, str]:
        labels = self.mapping(value, path)
        for k, v in labels.items():
            if not isinstance(v, str | int | float | bool) or isinstance(v, bool):
                self.error(f"{path}.{k}", "label values must be strings")
        return {str(k): str(v) for k, v in labels.items()}

    def integer(self, value: Any, path: str, low: int, high: int) -> int | None:
        if not isinstance(value, int) or isinstance(value, bool) or not low <= value <= high:
            self.error(path, f"must be a whole number {low}..{high}, got {value!r}")
            return None
        return value

    def port_ref(self, value: Any, path: str) -> int | str | None:
        """A port given by number or by container port name (IANA_SVC_NAME)."""
        if isinstance(value, str) and re.match(r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?$", value) \
                and len(value) <= 15 and not value.isdigit():
            return value
        return self.integer(value, path, 1, 65535)

    def selector(self, value: Any, path: str) -> dict[str, str]:
        """A LabelSelector: matchLabels only (matchExpressions is refused, not ignored)."""
        doc = self.mapping(value, path)
        self.fields(doc, path, {"matchLabels"})
        return self.labels(doc.get("matchLabels"), f"{path}.matchLabels")

    def name(self, value: Any, path: str) -> str:
        if not isinstance(value, str) or not DNS_LABEL.match(value):
            self.error(path, f"must be a DNS label (lower-case letters, digits, '-'; at most 63), "
                             f"got {value!r}")
            return ""
        return value


def parse_manifest(doc: Any, file: str = "", where: str = "") -> Parsed:
    """Parse one manifest document (a Pod or a Deployment) into pod specs."""
    out = Parsed()
    check = _Checker(out, file, where)
    if not isinstance(doc, dict):
        check.error("", "a manifest must be a mapping with apiVersion and kind")
        return out
    kind_key = f"{doc.get('apiVersion')}/{doc.get('kind')}"
    parsers = {"v1/Pod": _parse_pod, "apps/v1/Deployment": _parse_deployment,
               "v1/Service": _parse_service, "v1/Namespace": _parse_namespace,
               "networking.k8s.io/v1/NetworkPolicy": _parse_policy,
               "networking.k8s.io/v1/Ingress": _parse_ingress,
               "networking.k8s.io/v1beta1/Ingress": _parse_ingress_v1beta1,
               "extensions/v1beta1/Ingress": _parse_ingress_v1beta1,
               "v1/Secret": _parse_secret}
    if kind_key in parsers:
        parsers[kind_key](doc, check)
    else:
        check.error("kind", f"{doc.get('kind')!r} of apiVersion {doc.get('apiVersion')!r} is "
                            f"not supported here (supported: {', '.join(SUPPORTED_KINDS)})")
    return out


def _metadata(doc: dict[str, Any], check: _Checker) -> tuple[str, str, dict[str, str]]:
    path = "metadata"
    meta = check.mapping(doc.get(path), path)
    check.fields(meta, path, {"name", "namespace", "labels"}, IGNORED_METADATA_FIELDS)
    name = check.name(meta.get("name"), f"{path}.name")
    namespace = meta.get("namespace", "default")
    if not isinstance(namespace, str) or not DNS_LABEL.match(namespace):
        check.error(f"{path}.namespace", f"must be a DNS label, got {namespace!r}")
        namespace = "default"
    return name, namespace, check.labels(meta.get("labels"), f"{path}.labels")


def _parse_pod(doc: dict[str, Any], check: _Checker) -> None:
    check.fields(doc, "", {"apiVersion", "kind", "metadata", "spec", "status"})
    name, namespace, labels = _metadata(doc, check)
    pod = _pod_spec(doc.get("spec"), check, "spec", name, namespace, labels, owner="")
    if pod:
        check.out.pods.append(pod)


def _parse_deployment(doc: dict[str, Any], check: _Checker) -> None:
    check.fields(doc, "", {"apiVersion", "kind", "metadata", "spec", "status"})
    name, namespace, _ = _metadata(doc, check)
    spec = check.mapping(doc.get("spec"), "spec")
    check.fields(spec, "spec", {"replicas", "selector", "template"}, IGNORED_DEPLOYMENT_FIELDS)
    replicas = spec.get("replicas", 1)
    if not isinstance(replicas, int) or isinstance(replicas, bool) or replicas < 0:
        check.error("spec.replicas", f"must be a whole number >= 0, got {replicas!r}")
        replicas = 0
    selector = check.mapping(spec.get("selector"), "spec.selector")
    check.fields(selector, "spec.selector", {"matchLabels"})
    match_labels = check.labels(selector.get("matchLabels"), "spec.selector.matchLabels")
    if not match_labels:
        check.error("spec.selector.matchLabels", "a Deployment needs a selector")
    template = check.mapping(spec.get("template"), "spec.template")
    check.fields(template, "spec.template", {"metadata", "spec"})
    tmeta = check.mapping(template.get("metadata"), "spec.template.metadata")
    check.fields(tmeta, "spec.template.metadata", {"labels", "name"}, IGNORED_METADATA_FIELDS)
    tlabels = check.labels(tmeta.get("labels"), "spec.template.metadata.labels")
    if match_labels and any(tlabels.get(k) != v for k, v in match_labels.items()):
        check.error("spec.template.metadata.labels",
                    f"selector {match_labels} does not match template labels {tlabels}")
    template_pod = _pod_spec(template.get("spec"), check, "spec.template.spec", name,
                             namespace, tlabels, owner=f"Deployment/{name}")
    if template_pod:
        check.out.templates[f"{namespace}/{name}"] = template_pod  # scaling makes more
        # Deterministic names (web-0, web-1, …) instead of Kubernetes' random hashes, so that
        # scenarios and results can name pods.
        check.out.pods += [replace(template_pod, name=f"{name}-{i}") for i in range(replicas)]


def _pod_spec(value: Any, check: _Checker, path: str, name: str, namespace: str,
              labels: dict[str, str], owner: str) -> PodSpec | None:
    spec = check.mapping(value, path)
    check.fields(spec, path, {"containers", "nodeName", "nodeSelector", "hostname"},
                 IGNORED_POD_FIELDS)
    containers = check.sequence(spec.get("containers"), f"{path}.containers")
    if not containers:
        check.error(f"{path}.containers", "a pod needs at least one container")
    parsed = [_container(c, check, f"{path}.containers[{i}]") for i, c in enumerate(containers)]
    names = [c.name for c in parsed if c]
    for dup in sorted({n for n in names if names.count(n) > 1}):
        check.error(f"{path}.containers", f"container name {dup!r} is used twice")
    node_name = spec.get("nodeName", "")
    if not isinstance(node_name, str):
        check.error(f"{path}.nodeName", "must be a node name")
        node_name = ""
    node_selector = check.labels(spec.get("nodeSelector"), f"{path}.nodeSelector")
    if not name or any(c is None for c in parsed):
        return None
    return PodSpec(name=name, namespace=namespace, labels=labels,
                   containers=tuple(c for c in parsed if c), node_name=node_name,
                   node_selector=node_selector, owner=owner)


def _container(value: Any, check: _Checker, path: str) -> Container | None:
    doc = check.mapping(value, path)
    check.fields(doc, path, {"name", "image", "command", "args", "ports", "env",
                             "readinessProbe"}, IGNORED_CONTAINER_FIELDS)
    name = check.name(doc.get("name"), f"{path}.name")
    image = doc.get("image", "")
    command = _strings(doc.get("command"), check, f"{path}.command")
    args = _strings(doc.get("args"), check, f"{path}.args")
    if not command and image not in IMAGES:
        check.error(f"{path}.image", f"unknown image {image!r}: use a built-in image "
                                     f"({', '.join(known_images())}) or give `command`")
    ports = []
    for i, p in enumerate(check.sequence(doc.get("ports"), f"{path}.ports")):
        ppath = f"{path}.ports[{i}]"
        port = check.mapping(p, ppath)
        check.fields(port, ppath, {"containerPort", "name", "protocol"}, {"hostPort", "hostIP"})
        number = port.get("containerPort")
        if not isinstance(number, int) or not 0 < number < 65536:
            check.error(f"{ppath}.containerPort", f"must be a port number 1-65535, got {number!r}")
            continue
        protocol = port.get("protocol", "TCP")
        if protocol not in ("TCP", "UDP", "SCTP"):
            check.error(f"{ppath}.protocol", f"must be TCP, UDP or SCTP, got {protocol!r}")
        ports.append(ContainerPort(number, str(port.get("name", "")), str(protocol)))
    env = []
    for i, e in enumerate(check.sequence(doc.get("env"), f"{path}.env")):
        item = check.mapping(e, f"{path}.env[{i}]")
        check.fields(item, f"{path}.env[{i}]", {"name", "value"})
        if not isinstance(item.get("name"), str):
            check.error(f"{path}.env[{i}].name", "must be a string")
            continue
        env.append((item["name"], str(item.get("value", ""))))
    readiness = _probe(doc["readinessProbe"], check, f"{path}.readinessProbe") \
        if "readinessProbe" in doc else None
    if not name:
        return None
    return Container(name=name, image=str(image), command=command, args=args,
                     ports=tuple(ports), env=tuple(env), readiness=readiness)


def _probe(value: Any, check: _Checker, path: str) -> Probe | None:
    doc = check.mapping(value, path)
    timing = {"initialDelaySeconds": ("initial_delay_s", 0), "periodSeconds": ("period_s", 1),
              "timeoutSeconds": ("timeout_s", 1), "successThreshold": ("success_threshold", 1),
              "failureThreshold": ("failure_threshold", 1)}
    kinds = [k for k in ("tcpSocket", "httpGet", "exec") if k in doc]
    check.fields(doc, path, {"tcpSocket", "httpGet", "exec", *timing},
                 {"terminationGracePeriodSeconds"})
    if len(kinds) != 1:
        check.error(path, "give exactly one of tcpSocket, httpGet, exec (grpc is not supported)")
        return None
    kind = kinds[0]
    action = check.mapping(doc[kind], f"{path}.{kind}")
    values: dict[str, Any] = {}
    for key, (attr, low) in timing.items():
        if key in doc and (number := check.integer(doc[key], f"{path}.{key}", low, 3600)) \
                is not None:
            values[attr] = number
    if kind == "exec":
        check.fields(action, f"{path}.exec", {"command"})
        command = _strings(action.get("command"), check, f"{path}.exec.command")
        if not command:
            check.error(f"{path}.exec.command", "an exec probe needs a command")
        return Probe("exec", command=command, **values)
    known = {"port", "host"} | ({"path", "scheme", "httpHeaders"} if kind == "httpGet" else set())
    check.fields(action, f"{path}.{kind}", known)
    if action.get("host"):
        check.error(f"{path}.{kind}.host", "probes go to the pod's own address; host is not "
                                           "supported")
    if action.get("scheme", "HTTP") != "HTTP":
        check.error(f"{path}.{kind}.scheme", "only HTTP is supported")
    if action.get("httpHeaders"):
        check.warn(f"{path}.{kind}.httpHeaders", "has no effect in kemu and is ignored")
    port = check.port_ref(action.get("port"), f"{path}.{kind}.port")
    if port is None:
        return None
    return Probe(kind, port=port, path=str(action.get("path", "/")), **values)


def _parse_namespace(doc: dict[str, Any], check: _Checker) -> None:
    check.fields(doc, "", {"apiVersion", "kind", "metadata", "spec", "status"})
    meta = check.mapping(doc.get("metadata"), "metadata")
    check.fields(meta, "metadata", {"name", "labels"}, IGNORED_METADATA_FIELDS)
    name = check.name(meta.get("name"), "metadata.name")
    labels = check.labels(meta.get("labels"), "metadata.labels")
    if name:
        # Kubernetes labels every namespace with its name (namespaceSelector relies on it).
        check.out.namespaces.append(Namespace(name, {**labels,
                                                     "kubernetes.io/metadata.name": name}))


def _parse_service(doc: dict[str, Any], check: _Checker) -> None:
    check.fields(doc, "", {"apiVersion", "kind", "metadata", "spec", "status"})
    name, namespace, _ = _metadata(doc, check)
    spec = check.mapping(doc.get("spec"), "spec")
    check.fields(spec, "spec", {"type", "clusterIP", "ports", "selector", "externalIPs",
                                "sessionAffinity", "sessionAffinityConfig",
                                "externalTrafficPolicy", "externalName", "loadBalancerIP",
                                "internalTrafficPolicy", "publishNotReadyAddresses"},
                 IGNORED_SERVICE_FIELDS)
    kind = spec.get("type", "ClusterIP")
    if kind not in SERVICE_TYPES:
        check.error("spec.type", f"must be one of {', '.join(SERVICE_TYPES)}, got {kind!r}")
        return
    if spec.get("internalTrafficPolicy", "Cluster") != "Cluster":
        check.error("spec.internalTrafficPolicy", "only Cluster is supported")
    if spec.get("publishNotReadyAddresses"):
        check.error("spec.publishNotReadyAddresses", "is not supported")
    cluster_ip = spec.get("clusterIP", "")
    if not isinstance(cluster_ip, str):
        check.error("spec.clusterIP", f"must be an address or None, got {cluster_ip!r}")
        cluster_ip = ""
    selector = check.labels(spec["selector"], "spec.selector") if "selector" in spec else None
    ports = []
    port_docs = check.sequence(spec.get("ports"), "spec.ports")
    for i, p in enumerate(port_docs):
        path = f"spec.ports[{i}]"
        port_doc = check.mapping(p, path)
        check.fields(port_doc, path, {"name", "protocol", "port", "targetPort", "nodePort"},
                     {"appProtocol"})
        number = check.integer(port_doc.get("port"), f"{path}.port", 1, 65535)
        protocol = port_doc.get("protocol", "TCP")
        if protocol not in ("TCP", "UDP"):
            check.error(f"{path}.protocol", f"must be TCP or UDP, got {protocol!r}")
        port_name = port_doc.get("name", "")
        if len(port_docs) > 1 and not port_name:
            check.error(f"{path}.name", "a service with several ports must name each")
        target = check.port_ref(port_doc.get("targetPort", number), f"{path}.targetPort")
        node_port = 0
        if "nodePort" in port_doc:
            if kind not in ("NodePort", "LoadBalancer"):
                check.error(f"{path}.nodePort", f"only NodePort and LoadBalancer services have "
                                                f"node ports, this one is {kind}")
            node_port = check.integer(port_doc["nodePort"], f"{path}.nodePort",
                                      *NODE_PORT_RANGE) or 0
        if number is not None and target is not None:
            ports.append(ServicePort(number, target, str(protocol), str(port_name), node_port))
    names = [p.name for p in ports if p.name]
    for dup in sorted({n for n in names if names.count(n) > 1}):
        check.error("spec.ports", f"port name {dup!r} is used twice")
    external_name = spec.get("externalName", "")
    if kind == "ExternalName":
        if not isinstance(external_name, str) or not DNS_SUBDOMAIN.match(external_name):
            check.error("spec.externalName", f"an ExternalName service needs a DNS name, got "
                                             f"{external_name!r}")
        if selector:
            check.error("spec.selector", "an ExternalName service has no selector")
    elif external_name:
        check.error("spec.externalName", f"applies to type ExternalName only, not {kind}")
    elif not ports:
        check.error("spec.ports", "a service needs at least one port")
    if cluster_ip == "None" and kind != "ClusterIP":
        check.error("spec.clusterIP", f"a headless service (None) must be type ClusterIP, "
                                      f"not {kind}")
    affinity = spec.get("sessionAffinity", "None")
    if affinity not in ("None", "ClientIP"):
        check.error("spec.sessionAffinity", f"must be None or ClientIP, got {affinity!r}")
    timeout = 10800
    config = check.mapping(spec.get("sessionAffinityConfig"), "spec.sessionAffinityConfig")
    check.fields(config, "spec.sessionAffinityConfig", {"clientIP"})
    client = check.mapping(config.get("clientIP"), "spec.sessionAffinityConfig.clientIP")
    check.fields(client, "spec.sessionAffinityConfig.clientIP", {"timeoutSeconds"})
    if "timeoutSeconds" in client:
        timeout = check.integer(client["timeoutSeconds"],
                                "spec.sessionAffinityConfig.clientIP.timeoutSeconds", 1,
                                86400) or timeout
    policy = spec.get("externalTrafficPolicy", "Cluster")
    if policy not in ("Cluster", "Local"):
        check.error("spec.externalTrafficPolicy", f"must be Cluster or Local, got {policy!r}")
    elif policy == "Local" and kind not in ("NodePort", "LoadBalancer"):
        check.error("spec.externalTrafficPolicy", f"applies to NodePort and LoadBalancer "
                                                  f"services, not {kind}")
    external_ips = tuple(str(ip) for ip in check.sequence(spec.get("externalIPs"),
                                                          "spec.externalIPs"))
    for i, ip in enumerate(external_ips):
        if not re.match(r"^\d{1,3}(\.\d{1,3}){3}$", ip):
            check.error(f"spec.externalIPs[{i}]", f"not an IPv4 address: {ip!r}")
    if name:
        check.out.services.append(Service(
            name=name, namespace=namespace, type=kind, cluster_ip=cluster_ip, ports=tuple(ports),
            selector=selector, external_ips=external_ips, session_affinity=affinity,
            affinity_timeout_s=timeout, external_traffic_policy=policy,
            external_name=str(external_name), load_balancer_ip=str(spec.get("loadBalancerIP",
                                                                            ""))))


def _parse_policy(doc: dict[str, Any], check: _Checker) -> None:
    check.fields(doc, "", {"apiVersion", "kind", "metadata", "spec", "status"})
    name, namespace, _ = _metadata(doc, check)
    spec = check.mapping(doc.get("spec"), "spec")
    check.fields(spec, "spec", {"podSelector", "policyTypes", "ingress", "egress"})
    if "podSelector" not in spec:
        check.error("spec.podSelector", "is required ({} selects every pod of the namespace)")
    pod_selector = check.selector(spec.get("podSelector"), "spec.podSelector")
    rules: dict[str, list[PolicyRule]] = {"ingress": [], "egress": []}
    for direction, peer_key in (("ingress", "from"), ("egress", "to")):
        for i, r in enumerate(check.sequence(spec.get(direction), f"spec.{direction}")):
            path = f"spec.{direction}[{i}]"
            rule = check.mapping(r, path)
            check.fields(rule, path, {peer_key, "ports"})
            peers = [_policy_peer(p, check, f"{path}.{peer_key}[{k}]")
                     for k, p in enumerate(check.sequence(rule.get(peer_key),
                                                          f"{path}.{peer_key}"))]
            ports = [_policy_port(p, check, f"{path}.ports[{k}]")
                     for k, p in enumerate(check.sequence(rule.get("ports"), f"{path}.ports"))]
            rules[direction].append(PolicyRule(tuple(p for p in peers if p),
                                               tuple(p for p in ports if p)))
    types = spec.get("policyTypes")
    if types is None:  # Kubernetes' default: Ingress, plus Egress when egress rules exist
        types = ["Ingress"] + (["Egress"] if "egress" in spec else [])
    for i, t in enumerate(check.sequence(types, "spec.policyTypes")):
        if t not in ("Ingress", "Egress"):
            check.error(f"spec.policyTypes[{i}]", f"must be Ingress or Egress, got {t!r}")
    if name:
        check.out.policies.append(NetworkPolicy(name, namespace, pod_selector, tuple(types),
                                                tuple(rules["ingress"]),
                                                tuple(rules["egress"])))


def _policy_peer(value: Any, check: _Checker, path: str) -> PolicyPeer | None:
    doc = check.mapping(value, path)
    check.fields(doc, path, {"podSelector", "namespaceSelector", "ipBlock"})
    if "ipBlock" in doc:
        if len(doc) > 1:
            check.error(path, "ipBlock cannot be combined with selectors")
        block = check.mapping(doc["ipBlock"], f"{path}.ipBlock")
        check.fields(block, f"{path}.ipBlock", {"cidr", "except"})
        cidr = _cidr(block.get("cidr"), check, f"{path}.ipBlock.cidr")
        excepts = [_cidr(e, check, f"{path}.ipBlock.except[{k}]")
                   for k, e in enumerate(check.sequence(block.get("except"),
                                                        f"{path}.ipBlock.except"))]
        return PolicyPeer(ip_block=cidr, ip_block_except=tuple(e for e in excepts if e)) \
            if cidr else None
    if not doc:
        check.error(path, "give podSelector, namespaceSelector or ipBlock")
        return None
    return PolicyPeer(
        pod_selector=check.selector(doc["podSelector"], f"{path}.podSelector")
        if "podSelector" in doc else None,
        namespace_selector=check.selector(doc["namespaceSelector"], f"{path}.namespaceSelector")
        if "namespaceSelector" in doc else None)


def _policy_port(value: Any, check: _Checker, path: str) -> PolicyPort | None:
    doc = check.mapping(value, path)
    check.fields(doc, path, {"protocol", "port", "endPort"})
    protocol = doc.get("protocol", "TCP")
    if protocol not in ("TCP", "UDP"):
        check.error(f"{path}.protocol", f"must be TCP or UDP, got {protocol!r}")
        return None
    port = check.port_ref(doc["port"], f"{path}.port") if "port" in doc else None
    end = check.integer(doc["endPort"], f"{path}.endPort", 1, 65535) if "endPort" in doc \
        else None
    if end is not None and not isinstance(port, int):
        check.error(f"{path}.endPort", "needs a numeric port to start the range")
    return PolicyPort(str(protocol), port, end)


def _cidr(value: Any, check: _Checker, path: str) -> str:
    try:
        return str(ipaddress.IPv4Network(str(value), strict=False))
    except ValueError:
        check.error(path, f"not an IPv4 CIDR: {value!r}")
        return ""


def _strings(value: Any, check: _Checker, path: str) -> tuple[str, ...]:
    items = check.sequence(value, path)
    if not all(isinstance(x, str | int | float) for x in items):
        check.error(path, "must be a list of strings")
        return ()
    return tuple(str(x) for x in items)


PATH_TYPES = ("Prefix", "Exact", "ImplementationSpecific")


BackendParser = Callable[[Any, str], "IngressBackend | None"]


def _parse_ingress(doc: dict[str, Any], check: _Checker) -> None:
    """networking.k8s.io/v1 Ingress: backend.service.{name, port.{number|name}}."""

    def backend(value: Any, path: str) -> IngressBackend | None:
        b = check.mapping(value, path)
        check.fields(b, path, {"service"})
        svc = check.mapping(b.get("service"), f"{path}.service")
        check.fields(svc, f"{path}.service", {"name", "port"})
        port = check.mapping(svc.get("port"), f"{path}.service.port")
        check.fields(port, f"{path}.service.port", {"number", "name"})
        number = check.port_ref(port.get("number", port.get("name")), f"{path}.service.port")
        service = check.name(svc.get("name"), f"{path}.service.name")
        return IngressBackend(service, number) if service and number is not None else None

    _parse_any_ingress(doc, check, backend, "defaultBackend", path_type_required=True)


def _parse_ingress_v1beta1(doc: dict[str, Any], check: _Checker) -> None:
    """The older form the seeds use: serviceName/servicePort, `backend` as the default."""

    def backend(value: Any, path: str) -> IngressBackend | None:
        b = check.mapping(value, path)
        check.fields(b, path, {"serviceName", "servicePort"})
        service = check.name(b.get("serviceName"), f"{path}.serviceName")
        port = check.port_ref(b.get("servicePort"), f"{path}.servicePort")
        return IngressBackend(service, port) if service and port is not None else None

    _parse_any_ingress(doc, check, backend, "backend", path_type_required=False)


def _parse_any_ingress(doc: dict[str, Any], check: _Checker, backend: BackendParser,
                       default_key: str, path_type_required: bool) -> None:
    """What both Ingress versions share: hosts, paths, the default backend, TLS."""
    check.fields(doc, "", {"apiVersion", "kind", "metadata", "spec", "status"})
    name, namespace, _ = _metadata(doc, check)
    spec = check.mapping(doc.get("spec"), "spec")
    check.fields(spec, "spec", {"ingressClassName", default_key, "rules", "tls"})
    rules = []
    for i, r in enumerate(check.sequence(spec.get("rules"), "spec.rules")):
        rule = check.mapping(r, f"spec.rules[{i}]")
        check.fields(rule, f"spec.rules[{i}]", {"host", "http"})
        http = check.mapping(rule.get("http"), f"spec.rules[{i}].http")
        check.fields(http, f"spec.rules[{i}].http", {"paths"})
        paths = []
        for k, p in enumerate(check.sequence(http.get("paths"), f"spec.rules[{i}].http.paths")):
            where = f"spec.rules[{i}].http.paths[{k}]"
            entry = check.mapping(p, where)
            check.fields(entry, where, {"path", "pathType", "backend"})
            path_type = entry.get("pathType", "" if path_type_required
                                  else "ImplementationSpecific")
            if path_type not in PATH_TYPES:
                check.error(f"{where}.pathType", f"must be one of {', '.join(PATH_TYPES)}, "
                                                 f"got {path_type!r}")
            target = backend(entry.get("backend"), f"{where}.backend")
            if target:
                paths.append(IngressPath(_ingress_path(entry.get("path", "/"), check,
                                                       f"{where}.path"), path_type, target))
        rules.append(IngressRule(str(rule.get("host", "")), tuple(paths)))
    default = backend(spec[default_key], f"spec.{default_key}") if default_key in spec \
        else None
    _finish_ingress(name, namespace, rules, default, spec, check)


def _ingress_path(value: Any, check: _Checker, where: str) -> str:
    if not isinstance(value, str) or not value.startswith("/"):
        check.error(where, f"must be an absolute path, got {value!r}")
        return "/"
    return value


def _finish_ingress(name: str, namespace: str, rules: list[IngressRule],
                    default: IngressBackend | None, spec: dict[str, Any],
                    check: _Checker) -> None:
    tls = []
    for i, t in enumerate(check.sequence(spec.get("tls"), "spec.tls")):
        entry = check.mapping(t, f"spec.tls[{i}]")
        check.fields(entry, f"spec.tls[{i}]", {"hosts", "secretName"})
        hosts = _strings(entry.get("hosts"), check, f"spec.tls[{i}].hosts")
        tls.append((hosts, str(entry.get("secretName", ""))))
    if not rules and default is None:
        check.error("spec", "an Ingress needs rules or a default backend")
    if name:
        check.out.ingresses.append(Ingress(name, namespace, tuple(rules), default, tuple(tls)))


def _parse_secret(doc: dict[str, Any], check: _Checker) -> None:
    import base64
    check.fields(doc, "", {"apiVersion", "kind", "metadata", "type", "data", "stringData",
                           "immutable"})
    name, namespace, _ = _metadata(doc, check)
    if doc.get("type") != "kubernetes.io/tls":
        check.error("type", f"only kubernetes.io/tls Secrets are used by kemu, got "
                            f"{doc.get('type')!r}")
        return
    data = {**{k: base64.b64decode(str(v)).decode(errors="replace")
               for k, v in check.mapping(doc.get("data"), "data").items()},
            **{k: str(v) for k, v in check.mapping(doc.get("stringData"), "stringData").items()}}
    for field_name in ("tls.crt", "tls.key"):
        if "-----BEGIN" not in data.get(field_name, ""):
            check.error(f"data.{field_name}", "a PEM block is required")
    if name and not check.out.problems:
        check.out.secrets.append(Secret(name, namespace, data["tls.crt"], data["tls.key"]))
