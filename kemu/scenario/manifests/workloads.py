"""Pods, Deployments and Namespaces: what runs where. Fields with no network meaning
(resources, volumes, liveness probes…) are accepted with a warning naming them. Pure."""

from __future__ import annotations

import re
from dataclasses import replace
from typing import Any

from kemu.scenario.manifests.checker import (
    DNS_SUBDOMAIN,
    SERVER_METADATA,
    Checker,
    ipv4,
    metadata,
    strings,
)
from kemu.scenario.objects import (
    Container,
    ContainerPort,
    Hook,
    Namespace,
    PodDNSConfig,
    PodSpec,
    Probe,
    Rollout,
)

# Fields with no network meaning: accepted, reported as ignored.
IGNORED_POD_FIELDS = {
    "restartPolicy", "volumes", "serviceAccountName",
    "serviceAccount", "securityContext", "affinity", "tolerations", "imagePullSecrets",
    "priorityClassName", "schedulerName", "enableServiceLinks",
}
DNS_LABEL = re.compile(r"[a-z0-9]([-a-z0-9]*[a-z0-9])?")
DNS_POLICIES = ("ClusterFirstWithHostNet", "ClusterFirst", "Default", "None")
IGNORED_CONTAINER_FIELDS = {
    "resources", "imagePullPolicy", "livenessProbe", "startupProbe", "volumeMounts",
    "securityContext", "terminationMessagePath", "terminationMessagePolicy", "workingDir",
}
IGNORED_DEPLOYMENT_FIELDS = {"revisionHistoryLimit", "progressDeadlineSeconds", "paused"}
PERCENT = re.compile(r"^[0-9]+%$")


def parse_pod(doc: dict[str, Any], check: Checker) -> None:
    check.fields(doc, "", {"apiVersion", "kind", "metadata", "spec", "status"})
    name, namespace, labels = metadata(doc, check)
    pod = _pod_spec(doc.get("spec"), check, "spec", name, namespace, labels, owner="")
    if pod:
        check.out.pods.append(pod)


def parse_deployment(doc: dict[str, Any], check: Checker) -> None:
    check.fields(doc, "", {"apiVersion", "kind", "metadata", "spec", "status"})
    name, namespace, _ = metadata(doc, check)
    spec = check.mapping(doc.get("spec"), "spec")
    check.fields(spec, "spec", {"replicas", "selector", "template", "strategy",
                                "minReadySeconds"}, IGNORED_DEPLOYMENT_FIELDS)
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
    check.fields(tmeta, "spec.template.metadata", {"labels", "name", *SERVER_METADATA})
    tlabels = check.labels(tmeta.get("labels"), "spec.template.metadata.labels")
    if match_labels and any(tlabels.get(k) != v for k, v in match_labels.items()):
        check.error("spec.template.metadata.labels",
                    f"selector {match_labels} does not match template labels {tlabels}")
    template_pod = _pod_spec(template.get("spec"), check, "spec.template.spec", name,
                             namespace, tlabels, owner=f"Deployment/{name}")
    if check.room and replicas > check.room[0]:
        check.error("spec.replicas", f"{replicas} pods do not fit: the cluster has room for "
                                     f"{check.room[0]} more ({check.room[1]})")
        replicas = 0
    if template_pod:
        check.out.templates[f"{namespace}/{name}"] = template_pod  # scaling makes more
        check.out.rollouts[f"{namespace}/{name}"] = _rollout(spec, check)
        # Deterministic names (web-0, web-1, …) instead of Kubernetes' random hashes, so that
        # scenarios and results can name pods.
        check.out.pods += [replace(template_pod, name=f"{name}-{i}") for i in range(replicas)]


def _rollout(spec: dict[str, Any], check: Checker) -> Rollout:
    """spec.strategy and spec.minReadySeconds, checked as the API server checks them."""
    strategy = check.mapping(spec.get("strategy"), "spec.strategy")
    check.fields(strategy, "spec.strategy", {"type", "rollingUpdate"})
    kind = strategy.get("type", "RollingUpdate")
    if kind not in ("RollingUpdate", "Recreate"):
        check.error("spec.strategy.type", f"Unsupported value: {kind!r}: supported values: "
                                          f"Recreate, RollingUpdate")
        kind = "RollingUpdate"
    rolling = check.mapping(strategy.get("rollingUpdate"), "spec.strategy.rollingUpdate")
    if rolling and kind == "Recreate":
        check.error("spec.strategy.rollingUpdate", "may not be specified when strategy `type` "
                                                   "is 'Recreate'")
    check.fields(rolling, "spec.strategy.rollingUpdate", {"maxSurge", "maxUnavailable"})
    limits = {}
    for key in ("maxSurge", "maxUnavailable"):
        value = rolling.get(key, "25%")
        if isinstance(value, bool) or not (isinstance(value, int) and value >= 0 or
                                           isinstance(value, str) and PERCENT.match(value)):
            check.error(f"spec.strategy.rollingUpdate.{key}", f"must be a whole number >= 0 "
                                                             f"or a percentage, got {value!r}")
            value = "25%"
        limits[key] = value
    if all(limits[k] in (0, "0%") for k in limits):
        check.error("spec.strategy.rollingUpdate.maxUnavailable",
                    "may not be 0 when `maxSurge` is 0")
    min_ready = check.integer(spec.get("minReadySeconds", 0), "spec.minReadySeconds", 0, 10**6)
    return Rollout(kind, limits["maxSurge"], limits["maxUnavailable"], min_ready or 0)


def _pod_spec(value: Any, check: Checker, path: str, name: str, namespace: str,
              labels: dict[str, str], owner: str) -> PodSpec | None:
    spec = check.mapping(value, path)
    check.fields(spec, path, {"containers", "nodeName", "nodeSelector", "hostname",
                              "subdomain", "hostAliases", "readinessGates", "dnsPolicy",
                              "dnsConfig", "hostNetwork",
                              "terminationGracePeriodSeconds"}, IGNORED_POD_FIELDS)
    grace = check.integer(spec.get("terminationGracePeriodSeconds", 30),
                          f"{path}.terminationGracePeriodSeconds", 0, 10**9)
    if spec.get("hostNetwork", False) is not False:
        check.error(f"{path}.hostNetwork", "not supported: kemu gives every pod a network "
                                           "namespace of its own (a pod in its node's network "
                                           "is not emulated)")
    dns_policy = spec.get("dnsPolicy", "ClusterFirst")
    if dns_policy not in DNS_POLICIES:
        check.error(f"{path}.dnsPolicy", f"Unsupported value: {dns_policy!r}: supported values: "
                                         f"{', '.join(DNS_POLICIES)}")
        dns_policy = "ClusterFirst"
    dns_config = _dns_config(spec["dnsConfig"], check, f"{path}.dnsConfig") \
        if spec.get("dnsConfig") is not None else None
    if dns_policy == "None" and not (dns_config and dns_config.nameservers):
        check.error(f"{path}.dnsConfig", "must provide at least one DNS nameserver when "
                                         "dnsPolicy is set to None")
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
    hostname, subdomain = (_dns_label(spec.get(key, ""), check, f"{path}.{key}")
                           for key in ("hostname", "subdomain"))
    aliases = _host_aliases(spec.get("hostAliases"), check, f"{path}.hostAliases")
    gates = []
    for i, gate in enumerate(check.sequence(spec.get("readinessGates"), f"{path}.readinessGates")):
        where = f"{path}.readinessGates[{i}]"
        doc = check.mapping(gate, where)
        check.fields(doc, where, {"conditionType"})
        if not isinstance(doc.get("conditionType"), str) or not doc["conditionType"]:
            check.error(f"{where}.conditionType", "Required value")
        else:
            gates.append(doc["conditionType"])
    if not name or any(c is None for c in parsed):
        return None
    return PodSpec(name=name, namespace=namespace, labels=labels,
                   containers=tuple(c for c in parsed if c), node_name=node_name,
                   node_selector=node_selector, owner=owner, dns_policy=dns_policy,
                   dns_config=dns_config, termination_grace_s=30 if grace is None else grace,
                   hostname=hostname, subdomain=subdomain, host_aliases=aliases,
                   readiness_gates=tuple(gates))


def _dns_label(value: Any, check: Checker, path: str) -> str:
    """A pod's hostname or subdomain: an RFC 1123 label, as the API server validates it."""
    if value == "":
        return ""
    if not isinstance(value, str) or not DNS_LABEL.fullmatch(value) or len(value) > 63:
        check.error(path, f"a lowercase RFC 1123 label must consist of lower case alphanumeric "
                          f"characters or '-', and must start and end with an alphanumeric "
                          f"character, got {value!r}")
        return ""
    return value


def _host_aliases(value: Any, check: Checker,
                  path: str) -> tuple[tuple[str, tuple[str, ...]], ...]:
    """spec.hostAliases: (ip, hostnames) entries kubelet adds to the pod's /etc/hosts."""
    aliases = []
    for i, entry in enumerate(check.sequence(value, path)):
        where = f"{path}[{i}]"
        doc = check.mapping(entry, where)
        check.fields(doc, where, {"ip", "hostnames"})
        aliases.append((ipv4(doc.get("ip"), check, f"{where}.ip"),
                        strings(doc.get("hostnames"), check, f"{where}.hostnames")))
    return tuple(aliases)


def _dns_config(value: Any, check: Checker, path: str) -> PodDNSConfig:
    """spec.dnsConfig, with the API server's limits (3 nameservers, 32 search domains)."""
    doc = check.mapping(value, path)
    check.fields(doc, path, {"nameservers", "searches", "options"})
    nameservers = tuple(ipv4(v, check, f"{path}.nameservers[{i}]")
                        for i, v in enumerate(check.sequence(doc.get("nameservers"),
                                                             f"{path}.nameservers")))
    if len(nameservers) > 3:
        check.error(f"{path}.nameservers", f"must not have more than 3 nameservers: "
                                           f"{list(nameservers)}")
    searches = strings(doc.get("searches"), check, f"{path}.searches")
    if len(searches) > 32 or len(" ".join(searches)) > 2048:
        check.error(f"{path}.searches", "must not have more than 32 search paths or 2048 "
                                        "characters in all")
    for i, domain in enumerate(searches):
        if not DNS_SUBDOMAIN.fullmatch(domain.rstrip(".")):
            check.error(f"{path}.searches[{i}]", f"must be a DNS subdomain, got {domain!r}")
    options = []
    for i, item in enumerate(check.sequence(doc.get("options"), f"{path}.options")):
        option = check.mapping(item, f"{path}.options[{i}]")
        check.fields(option, f"{path}.options[{i}]", {"name", "value"})
        if not isinstance(option.get("name"), str) or not option["name"]:
            check.error(f"{path}.options[{i}].name", "Required value")
            continue
        value = option.get("value")
        options.append((option["name"], None if value is None else str(value)))
    return PodDNSConfig(tuple(n for n in nameservers if n), searches, tuple(options))


def _container(value: Any, check: Checker, path: str) -> Container | None:
    doc = check.mapping(value, path)
    check.fields(doc, path, {"name", "image", "command", "args", "ports", "env",
                             "readinessProbe", "lifecycle"}, IGNORED_CONTAINER_FIELDS)
    name = check.name(doc.get("name"), f"{path}.name")
    image = doc.get("image")
    command = strings(doc.get("command"), check, f"{path}.command")
    args = strings(doc.get("args"), check, f"{path}.args")
    # Any image: one kemu has no program for runs a stand-in (scenario/images.py).
    if image is None or image == "":
        check.error(f"{path}.image", "required: an image reference, e.g. nginx:1.14.2")
        image = ""
    elif not isinstance(image, str):
        check.error(f"{path}.image", f"must be a string (an image reference, e.g. "
                                     f"nginx:1.14.2), got {type(image).__name__} {image!r}")
        image = ""
    elif image != image.strip():
        check.error(f"{path}.image", "must not have leading or trailing whitespace")
    ports = []
    for i, p in enumerate(check.sequence(doc.get("ports"), f"{path}.ports")):
        ppath = f"{path}.ports[{i}]"
        port = check.mapping(p, ppath)
        check.fields(port, ppath, {"containerPort", "name", "protocol", "hostPort", "hostIP"})
        number = port.get("containerPort")
        if not isinstance(number, int) or not 0 < number < 65536:
            check.error(f"{ppath}.containerPort", f"must be a port number 1-65535, got {number!r}")
            continue
        host_port = port.get("hostPort", 0)
        if not isinstance(host_port, int) or isinstance(host_port, bool) or \
                not 0 <= host_port < 65536:
            check.error(f"{ppath}.hostPort", f"must be a port number 1-65535, got {host_port!r}")
            host_port = 0
        host_ip = ipv4(port["hostIP"], check, f"{ppath}.hostIP") if "hostIP" in port else ""
        protocol = port.get("protocol", "TCP")
        if protocol not in ("TCP", "UDP", "SCTP"):
            check.error(f"{ppath}.protocol", f"must be TCP, UDP or SCTP, got {protocol!r}")
        ports.append(ContainerPort(number, str(port.get("name", "")), str(protocol), host_port,
                                   host_ip))
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
    pre_stop = _pre_stop(doc["lifecycle"], check, f"{path}.lifecycle") \
        if "lifecycle" in doc else None
    if not name:
        return None
    return Container(name=name, image=str(image), command=command, args=args,
                     ports=tuple(ports), env=tuple(env), readiness=readiness, pre_stop=pre_stop)


def _pre_stop(value: Any, check: Checker, path: str) -> Hook | None:
    """lifecycle.preStop (exec, sleep or httpGet); postStart has no network meaning."""
    doc = check.mapping(value, path)
    check.fields(doc, path, {"preStop"}, {"postStart"})
    if "preStop" not in doc:
        return None
    hook = check.mapping(doc["preStop"], f"{path}.preStop")
    kinds = [k for k in ("exec", "sleep", "httpGet") if k in hook]
    check.fields(hook, f"{path}.preStop", {"exec", "sleep", "httpGet"})
    if len(kinds) != 1:
        check.error(f"{path}.preStop", "give exactly one of exec, sleep, httpGet")
        return None
    where = f"{path}.preStop.{kinds[0]}"
    action = check.mapping(hook[kinds[0]], where)
    if kinds[0] == "exec":
        check.fields(action, where, {"command"})
        command = strings(action.get("command"), check, f"{where}.command")
        if not command:
            check.error(f"{where}.command", "an exec hook needs a command")
        return Hook("exec", command=command)
    if kinds[0] == "sleep":
        check.fields(action, where, {"seconds"})
        seconds = check.integer(action.get("seconds"), f"{where}.seconds", 0, 10**6)
        return Hook("sleep", seconds=seconds or 0)
    check.fields(action, where, {"port", "path", "host", "scheme", "httpHeaders"})
    port = check.port_ref(action.get("port"), f"{where}.port")
    path_value = action.get("path", "/")
    if not isinstance(path_value, str):
        check.error(f"{where}.path", f"must be a string, got {path_value!r}")
        path_value = "/"
    return Hook("httpGet", port=port or 0, path=path_value)


def _probe(value: Any, check: Checker, path: str) -> Probe | None:
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
        command = strings(action.get("command"), check, f"{path}.exec.command")
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
    probe_path = action.get("path", "/")
    if not isinstance(probe_path, str):
        check.error(f"{path}.{kind}.path", f"must be a string, got {probe_path!r}")
        return None
    if port is None:
        return None
    return Probe(kind, port=port, path=probe_path, **values)


def parse_namespace(doc: dict[str, Any], check: Checker) -> None:
    check.fields(doc, "", {"apiVersion", "kind", "metadata", "spec", "status"})
    meta = check.mapping(doc.get("metadata"), "metadata")
    check.fields(meta, "metadata", {"name", "labels", *SERVER_METADATA})
    name = check.name(meta.get("name"), "metadata.name")
    labels = check.labels(meta.get("labels"), "metadata.labels")
    if name:
        # Kubernetes labels every namespace with its name (namespaceSelector relies on it).
        check.out.namespaces.append(Namespace(name, {**labels,
                                                     "kubernetes.io/metadata.name": name}))
