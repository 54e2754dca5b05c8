"""The Kubernetes objects kemu works with, as plain typed data (what was asked for, not what
was built). Field names follow the Kubernetes API, in Python spelling."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any


@dataclass(frozen=True)
class NodeSpec:
    name: str
    labels: dict[str, str] = field(default_factory=dict)


@dataclass(frozen=True)
class ContainerPort:
    container_port: int
    name: str = ""
    protocol: str = "TCP"
    host_port: int = 0  # 0: none; else the node's port mapped to it (CNI portmap)
    host_ip: str = ""  # "": every address of the node


@dataclass(frozen=True)
class Probe:
    """A readinessProbe: tcpSocket, httpGet or exec, with kubelet's timing fields."""

    kind: str  # "tcpSocket" | "httpGet" | "exec"
    port: int | str = 0  # number or container port name (tcpSocket, httpGet)
    path: str = "/"  # httpGet
    command: tuple[str, ...] = ()  # exec
    initial_delay_s: float = 0
    period_s: float = 10
    timeout_s: float = 1
    success_threshold: int = 1
    failure_threshold: int = 3


@dataclass(frozen=True)
class Hook:
    """A container's lifecycle.preStop: exec a command, sleep, or GET a path."""

    kind: str  # exec | sleep | httpGet
    command: tuple[str, ...] = ()
    seconds: int = 0
    port: int | str = 0
    path: str = "/"


@dataclass(frozen=True)
class Container:
    name: str
    image: str = ""
    command: tuple[str, ...] = ()
    args: tuple[str, ...] = ()
    ports: tuple[ContainerPort, ...] = ()
    env: tuple[tuple[str, str], ...] = ()
    readiness: Probe | None = None
    entrypoint: tuple[str, ...] = ()  # what runs for its image (scenario/images.py)
    stand_in: bool = False  # kemu has no program for its image: kemu/stand-in runs
    pre_stop: Hook | None = None  # lifecycle.preStop


@dataclass(frozen=True)
class PodDNSConfig:
    """A pod's spec.dnsConfig: merged into what its dnsPolicy gives (kemu/k8s/resolv_conf.py)."""

    nameservers: tuple[str, ...] = ()
    searches: tuple[str, ...] = ()
    options: tuple[tuple[str, str | None], ...] = ()  # (name, value or None)


@dataclass(frozen=True)
class PodSpec:
    name: str
    namespace: str = "default"
    labels: dict[str, str] = field(default_factory=dict)
    containers: tuple[Container, ...] = ()
    node_name: str = ""  # spec.nodeName: pinned by the user
    node_selector: dict[str, str] = field(default_factory=dict)
    owner: str = ""  # e.g. "Deployment/web"
    dns_policy: str = "ClusterFirst"  # ClusterFirst | ClusterFirstWithHostNet | Default | None
    dns_config: PodDNSConfig | None = None
    termination_grace_s: int = 30  # terminationGracePeriodSeconds
    hostname: str = ""  # spec.hostname ("": the pod's name)
    subdomain: str = ""  # spec.subdomain: with a headless Service of that name, a DNS name
    host_aliases: tuple[tuple[str, tuple[str, ...]], ...] = ()  # (ip, hostnames)
    readiness_gates: tuple[str, ...] = ()  # condition types that must be True for Ready

    @property
    def key(self) -> str:
        """namespace/name, unique in the cluster."""
        return f"{self.namespace}/{self.name}"

    def port_number(self, port: int | str, protocol: str = "TCP") -> int | None:
        """A container port by number or by name (as a Service's targetPort names it)."""
        if isinstance(port, int):
            return port
        for container in self.containers:
            for p in container.ports:
                if p.name == port and p.protocol == protocol:
                    return p.container_port
        return None


@dataclass(frozen=True)
class ServicePort:
    port: int
    target_port: int | str  # number, or the name of a container port
    protocol: str = "TCP"
    name: str = ""
    node_port: int = 0  # 0: none (ClusterIP) or not yet allocated


@dataclass(frozen=True)
class Service:
    name: str
    namespace: str = "default"
    type: str = "ClusterIP"  # ClusterIP | NodePort | LoadBalancer | ExternalName
    cluster_ip: str = ""  # "" until allocated; "None" for a headless service
    ports: tuple[ServicePort, ...] = ()
    selector: dict[str, str] | None = None  # None: endpoints are not managed
    external_ips: tuple[str, ...] = ()
    session_affinity: str = "None"  # None | ClientIP
    affinity_timeout_s: int = 10800
    external_traffic_policy: str = "Cluster"  # Cluster | Local
    external_name: str = ""
    load_balancer_ip: str = ""
    internal_traffic_policy: str = "Cluster"  # Cluster | Local
    health_check_node_port: int = 0  # LoadBalancer + Local: given, or allocated
    allocate_lb_node_ports: bool = True  # LoadBalancer: spec.allocateLoadBalancerNodePorts
    load_balancer_class: str = ""  # "": the cloud's own load balancer takes it
    load_balancer_source_ranges: tuple[str, ...] = ()  # CIDRs let through to the LB IP
    publish_not_ready: bool = False  # spec.publishNotReadyAddresses
    traffic_distribution: str = ""  # "" | PreferClose

    @property
    def needs_health_check(self) -> bool:
        """A health check node port: LoadBalancer with externalTrafficPolicy Local."""
        return self.type == "LoadBalancer" and self.external_traffic_policy == "Local"

    @property
    def key(self) -> str:
        return f"{self.namespace}/{self.name}"

    @property
    def headless(self) -> bool:
        return self.cluster_ip == "None"


@dataclass(frozen=True)
class SliceEndpoint:
    """One endpoint of an EndpointSlice (discovery.k8s.io/v1), with its conditions: `ready`
    — may take new connections; `serving` — answering, whether terminating or not;
    `terminating` — being deleted."""

    ip: str
    ready: bool = True
    serving: bool = True
    terminating: bool = False
    node: str = ""  # nodeName
    zone: str = ""
    pod: str = ""  # targetRef: namespace/name of the pod, "" for another address


@dataclass(frozen=True)
class EndpointSlice:
    """Endpoints of a Service that share one set of ports: made by the EndpointSlice
    controller for a Service with a selector (kemu/k8s/endpointslices.py), given in manifests
    for one without (an Endpoints object is mirrored into one, as Kubernetes does)."""

    name: str
    namespace: str
    service: str  # the label kubernetes.io/service-name
    ports: tuple[tuple[str, int, str], ...]  # (name, port, protocol)
    endpoints: tuple[SliceEndpoint, ...]
    managed_by: str = "endpointslice-controller.k8s.io"

    @property
    def key(self) -> str:
        return f"{self.namespace}/{self.name}"


@dataclass(frozen=True)
class PolicyPeer:
    """One entry of a NetworkPolicy rule's from/to list."""

    pod_selector: dict[str, str] | None = None
    namespace_selector: dict[str, str] | None = None
    ip_block: str = ""  # CIDR
    ip_block_except: tuple[str, ...] = ()


@dataclass(frozen=True)
class PolicyPort:
    protocol: str = "TCP"
    port: int | str | None = None  # None: every port of the protocol
    end_port: int | None = None


@dataclass(frozen=True)
class PolicyRule:
    peers: tuple[PolicyPeer, ...] = ()  # empty: from/to anywhere
    ports: tuple[PolicyPort, ...] = ()  # empty: every port


@dataclass(frozen=True)
class NetworkPolicy:
    name: str
    namespace: str
    pod_selector: dict[str, str]
    policy_types: tuple[str, ...]  # "Ingress", "Egress"
    ingress: tuple[PolicyRule, ...] = ()
    egress: tuple[PolicyRule, ...] = ()

    @property
    def key(self) -> str:
        return f"{self.namespace}/{self.name}"


@dataclass(frozen=True)
class Namespace:
    name: str
    labels: dict[str, str] = field(default_factory=dict)


@dataclass(frozen=True)
class Rollout:
    """A Deployment's spec.strategy and minReadySeconds: how a rollout replaces its pods."""

    type: str = "RollingUpdate"  # or Recreate
    max_surge: int | str = "25%"  # a number of pods, or a percentage of the replicas
    max_unavailable: int | str = "25%"
    min_ready_s: int = 0

    def limits(self, replicas: int) -> tuple[int, int]:
        """(max surge, max unavailable) in pods, as the Deployment controller resolves them:
        surge rounded up, unavailability down, and never both 0."""
        def resolve(value: int | str, up: bool) -> int:
            if isinstance(value, int):
                return value
            share = replicas * int(value.rstrip("%"))
            return -(-share // 100) if up else share // 100

        surge, unavailable = resolve(self.max_surge, True), resolve(self.max_unavailable, False)
        return surge, (1 if surge == 0 and unavailable == 0 else unavailable)


@dataclass(frozen=True)
class Deployment:
    """A Deployment as an event applies it: its pods' template and how many to run."""

    template: PodSpec  # named as the Deployment
    replicas: int
    rollout: Rollout = Rollout()

    @property
    def namespace(self) -> str:
        return self.template.namespace

    @property
    def key(self) -> str:
        return self.template.key


def kind_of(obj: Any) -> str:
    """The Kubernetes kind of one of these objects."""
    return {PodSpec: "Pod", Namespace: "Namespace"}.get(type(obj), type(obj).__name__)


def key_of(obj: Any) -> str:
    """namespace/name (a Namespace: its name)."""
    return obj.name if isinstance(obj, Namespace) else str(obj.key)


def qualified(doc: dict[str, Any], field: str) -> str:
    """The namespace/name of the object `doc[field]` names, written as kubectl users write it:
    `namespace/name`, or `name` in `doc`'s `namespace` (default: default)."""
    name = str(doc.get(field) or "")
    return name if "/" in name else f"{doc.get('namespace') or 'default'}/{name}"


def replicas_of(template: PodSpec, pods: set[str]) -> list[str]:
    """The keys of a Deployment's pods among `pods`, by index (kemu names them <name>-<n>,
    deterministic rather than Kubernetes' hashes, so scenarios can name them)."""
    prefix = f"{template.namespace}/{template.name}-"
    mine = [k for k in pods if k.startswith(prefix) and k[len(prefix):].isdigit()]
    return sorted(mine, key=lambda k: int(k[len(prefix):]))


def owner_template(templates: dict[str, PodSpec], key: str) -> PodSpec | None:
    """The pod template of the Deployment whose pod `key` is (by its <name>-<n> name)."""
    return next((t for t in templates.values() if replicas_of(t, {key})), None)


def scale(template: PodSpec, pods: set[str], replicas: int,
          used: frozenset[str] | set[str] = frozenset()) -> tuple[list[str], list[str]]:
    """What the ReplicaSet controller does to reach `replicas`: (pod keys to create, pod keys
    to delete). New pods take the lowest indices no pod of the run has had (`used`), so one
    name always means one pod in the results; the highest indices go first."""
    current = replicas_of(template, pods)
    if replicas <= len(current):
        return [], current[replicas:][::-1]
    prefix, n, taken = f"{template.namespace}/{template.name}-", 0, pods | used
    add: list[str] = []
    while len(current) + len(add) < replicas:
        if f"{prefix}{n}" not in taken:
            add.append(f"{prefix}{n}")
        n += 1
    return add, []


def replacement(template: PodSpec, pods: set[str],
                used: frozenset[str] | set[str] = frozenset()) -> str:
    """The name the ReplicaSet controller gives the pod that replaces a deleted one (still in
    `pods`)."""
    return scale(template, pods, len(replicas_of(template, pods)) + 1, used)[0][0]


def matches(selector: dict[str, str], labels: dict[str, str]) -> bool:
    """Kubernetes equality-based label selection (matchLabels)."""
    return all(labels.get(k) == v for k, v in selector.items())


@dataclass(frozen=True)
class IngressBackend:
    service: str
    port: int | str  # number or the Service port's name


@dataclass(frozen=True)
class IngressPath:
    path: str
    path_type: str  # Prefix | Exact | ImplementationSpecific
    backend: IngressBackend


@dataclass(frozen=True)
class IngressRule:
    host: str  # "" for any host
    paths: tuple[IngressPath, ...]


@dataclass(frozen=True)
class NginxAnnotations:
    """The `nginx.ingress.kubernetes.io/*` annotations of an Ingress that kemu follows, with
    ingress-nginx's defaults (docs/user-guide/nginx-configuration/annotations.md; timeouts in
    seconds, as its ConfigMap's proxy-*-timeout)."""

    rewrite_target: str = ""
    use_regex: bool = False
    ssl_redirect: bool = True  # for hosts with TLS
    force_ssl_redirect: bool = False  # for hosts without TLS too
    canary: bool = False
    canary_weight: int = 0
    canary_weight_total: int = 100
    canary_by_header: str = ""
    canary_by_header_value: str = ""
    canary_by_cookie: str = ""
    affinity: str = ""  # "cookie", or "" for none
    session_cookie_name: str = "INGRESSCOOKIE"
    session_cookie_path: str = ""  # "" for the location's path
    proxy_connect_timeout: int = 5
    proxy_send_timeout: int = 60
    proxy_read_timeout: int = 60


@dataclass(frozen=True)
class Ingress:
    name: str
    namespace: str
    rules: tuple[IngressRule, ...] = ()
    default_backend: IngressBackend | None = None
    tls: tuple[tuple[tuple[str, ...], str], ...] = ()  # (hosts, secret name)
    class_name: str = ""  # spec.ingressClassName (or the older class annotation); "" for none
    nginx: NginxAnnotations = NginxAnnotations()

    @property
    def key(self) -> str:
        return f"{self.namespace}/{self.name}"


@dataclass(frozen=True)
class IngressClass:
    """networking.k8s.io/v1 IngressClass: which controller serves Ingresses of this class, and
    whether Ingresses naming no class get it (the is-default-class annotation)."""

    name: str
    controller: str
    default: bool = False

    @property
    def key(self) -> str:
        return self.name


def ingress_class(ingress: Ingress, classes: list[IngressClass] | tuple[IngressClass, ...]
                  ) -> IngressClass | None:
    """The IngressClass an Ingress has: the one it names, or, naming none, the default one
    (the DefaultIngressClass admission plugin); None if that class does not exist."""
    name = ingress.class_name or next((c.name for c in classes if c.default), "")
    return next((c for c in classes if c.name == name), None)


@dataclass(frozen=True)
class Secret:
    """A kubernetes.io/tls Secret: a certificate and its key (PEM)."""

    name: str
    namespace: str
    cert: str
    key_pem: str

    @property
    def key(self) -> str:
        return f"{self.namespace}/{self.name}"
