"""A checked scenario, as frozen data: the cluster, its underlay, the world outside, what to
measure and what happens when. What load.py returns; every later stage reads it, none changes
it. Pure."""

from __future__ import annotations

import ipaddress
from dataclasses import dataclass, field
from typing import Any

from kemu import registry
from kemu.errors import Problem
from kemu.scenario.objects import (
    EndpointSlice,
    Ingress,
    IngressClass,
    Namespace,
    NetworkPolicy,
    NodeSpec,
    PodSpec,
    Rollout,
    Secret,
    Service,
)

DEFAULT_POD_CIDR = "10.244.0.0/16"
DEFAULT_SERVICE_CIDR = "10.96.0.0/12"
DEFAULT_UNDERLAY_CIDR = "172.18.0.0/16"
DEFAULT_EXTERNAL_CIDR = "192.168.100.0/24"
DEFAULT_TOPOLOGY = "single-switch"


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
class Timing:
    """The control plane's clocks: how soon a change reaches the data plane. Upstream's
    defaults unless the scenario says otherwise; the `fast` profile (opt-in, for tests and
    demos) makes kube-proxy write every change at once and nodes NotReady after 5 s."""

    profile: str = "upstream"  # upstream | fast
    min_sync_s: float = 1.0  # kube-proxy --iptables-min-sync-period (after a burst of 2)
    sync_s: float = 30.0  # kube-proxy --iptables-sync-period (its rules checked)
    node_grace_s: float = 50.0  # kube-controller-manager --node-monitor-grace-period (1.32+)
    slice_batch_s: float = 0.0  # kube-controller-manager --endpointslice-updates-batch-period

    def describe(self) -> dict[str, Any]:
        """As results.json records it, in the settings' own names (seconds)."""
        return {"profile": self.profile, "kubeProxy.minSyncPeriod": self.min_sync_s,
                "kubeProxy.syncPeriod": self.sync_s,
                "nodeMonitorGracePeriod": self.node_grace_s,
                "endpointSliceBatchPeriod": self.slice_batch_s}


TIMING_PROFILES = {"upstream": Timing(),
                   "fast": Timing("fast", min_sync_s=0.0, node_grace_s=5.0)}


@dataclass(frozen=True)
class ClusterSpec:
    nodes: tuple[NodeSpec, ...]
    cni_plugin: str
    cni_options: dict[str, Any]
    pod_cidr: ipaddress.IPv4Network
    service_cidr: ipaddress.IPv4Network
    proxy_mode: str = "iptables"  # kube-proxy mode asked for
    timing: Timing = Timing()
    policy_engine: str = ""  # what enforces NetworkPolicy: calico, canal, or "" (nothing)
    max_pods: int = 110  # kubelet's maxPods: the pods a node runs at most

    @property
    def node_grace_s(self) -> float:
        return self.timing.node_grace_s


@dataclass(frozen=True)
class UpstreamDNS:
    """The resolver of the nodes' own network (the datacenter's, or the cloud's VPC resolver):
    what CoreDNS forwards to and dnsPolicy Default pods ask. It answers the names the
    scenario declares — every external host as `<host>.<externalDomain>`, and `records` —
    and NXDOMAIN for the rest, after `latency_ms`; a `failure_rate` share of queries fails
    (`timeout`: no answer; `servfail`)."""

    ip: str = ""  # its address: the underlay's first
    records: dict[str, tuple[str, ...]] = field(default_factory=dict)  # FQDN. → IPv4s
    latency_ms: float = 0.0
    failure_rate: float = 0.0
    failure_mode: str = "timeout"  # timeout | servfail


RESOLVER_HOST = "resolver"  # the upstream resolver's host name: no node or external host's
ROUTER_HOST = "bgp-router"  # metallb-bgp's router: no external host's
DEFAULT_EXTERNAL_DOMAIN = "example.com"  # RFC 2606: reserved, never a real site


@dataclass(frozen=True)
class DNSConfig:
    """The cluster DNS as kubeadm deploys CoreDNS: its Corefile's `ttl 30` and `cache 30`
    (which, since kubeadm 1.32, leaves the cluster domain's answers uncached)."""

    enabled: bool = True
    cluster_ip: str = ""
    domain: str = "cluster.local"
    ttl: int = 30  # the kubernetes plugin's TTL on every answer, s
    cache: int = 30  # the cache plugin's cap on how long a forwarded answer is kept, s
    upstream: UpstreamDNS = field(default_factory=UpstreamDNS)


# -- the world outside the cluster -----------------------------------------------------------

# The cloud providers' load balancers as Kubernetes' providers configure them (reference file;
# cloud-provider-gcp, the in-tree AWS provider): what each checks, how often, how many results
# flip a backend. A check is `tcp` (a connection) or `http` (200-399 to GET `path`), on the
# traffic's node port (`traffic`), kube-proxy's health server (`healthz`, 10256) or the
# Service's health check node port (`health-check-node-port`).
#   gce        Cluster: kube-proxy's /healthz every 8 s, 3 failures; Local: the health check
#              node port every 3 s, 2 failures; fails open when no backend is healthy
#   aws-nlb    Cluster: TCP to the node port every 30 s, 3 / 3; Local: /healthz on the health
#              check node port every 10 s, 2 / 2; fails open
#   metallb-l2 one node answers ARP for the VIP, the first of the healthy nodes ordered by
#              sha256(node#IP) (MetalLB's speaker); changes announced by gratuitous ARP
#   metallb-bgp every node's speaker announces the VIP to a BIRD router outside, which
#              spreads flows over them (ECMP); a dead node's routes go with its BGP session
#   gce-neg    container-native (GKE network endpoint groups): the pods are the backends,
#              checked on their serving port (`pod`) by HTTP GET of their readiness probe's
#              path (else /) every 15 s, timeout 15 s, 1 / 2 (ingress-gce
#              pkg/healthchecks); a readiness gate holds a new pod out of Ready until the
#              load balancer finds it healthy
_TCP = {"check": "tcp", "port": "traffic", "path": ""}
_HCNP = {"check": "http", "port": "health-check-node-port", "path": "/healthz"}
PRESETS: dict[str, dict[str, Any]] = {
    "gce": {"mode": "nodeport",
            "Cluster": {"check": "http", "port": "healthz", "path": "/healthz", "interval": 8,
                        "timeout": 1, "healthy_threshold": 1, "unhealthy_threshold": 3,
                        "fail_open": True},
            "Local": {**_HCNP, "interval": 3, "timeout": 1, "healthy_threshold": 1,
                      "unhealthy_threshold": 2, "fail_open": True}},
    "aws-nlb": {"mode": "nodeport",
                "Cluster": {**_TCP, "interval": 30, "timeout": 10, "healthy_threshold": 3,
                            "unhealthy_threshold": 3, "fail_open": True},
                "Local": {**_HCNP, "interval": 10, "timeout": 10, "healthy_threshold": 2,
                          "unhealthy_threshold": 2, "fail_open": True}},
    # MetalLB checks no port: a node announces while it is alive (memberlist) and, for Local,
    # has a ready endpoint; kube-proxy's health and the health check node port stand for that.
    "metallb-l2": {"mode": "l2",
                   "Cluster": {"check": "http", "port": "healthz", "path": "/healthz",
                               "interval": 1, "timeout": 1, "healthy_threshold": 1,
                               "unhealthy_threshold": 3, "fail_open": False},
                   "Local": {**_HCNP, "interval": 1, "timeout": 1, "healthy_threshold": 1,
                             "unhealthy_threshold": 3, "fail_open": False}},
    "gce-neg": {"mode": "pods",
                "Cluster": {"check": "http", "port": "pod", "path": "", "interval": 15,
                            "timeout": 15, "healthy_threshold": 1, "unhealthy_threshold": 2,
                            "fail_open": False}},
    # MetalLB's BGP mode checks nothing: a node's speaker announces while its session with
    # the router lives (hold time 90 s); the timings here only size kemu's wait at start.
    "metallb-bgp": {"mode": "bgp",
                    "Cluster": {"check": "none", "port": "traffic", "path": "", "interval": 1,
                                "timeout": 1, "healthy_threshold": 1, "unhealthy_threshold": 1,
                                "fail_open": False}},
    "custom": {"mode": "nodeport",
               "Cluster": {**_TCP, "interval": 1, "timeout": 0.5, "healthy_threshold": 1,
                           "unhealthy_threshold": 2, "fail_open": False}},
}
NEG_READINESS_GATE = "cloud.google.com/load-balancer-neg-ready"  # what GKE's webhook injects
HEALTH_KEYS = {"interval": "interval", "timeout": "timeout",
               "healthyThreshold": "healthy_threshold",
               "unhealthyThreshold": "unhealthy_threshold", "failOpen": "fail_open"}


@dataclass(frozen=True)
class ExternalHostSpec:
    name: str
    argv: tuple[str, ...] = ()  # what runs on it (an image's command, or `command`)
    port: int = 0


@dataclass(frozen=True)
class LoadBalancerSpec:
    preset: str = "custom"
    pool: ipaddress.IPv4Network = ipaddress.IPv4Network("192.168.100.192/27")
    overrides: dict[str, Any] = field(default_factory=dict)
    hold_time: int = 90  # metallb-bgp: the BGP sessions' hold time, s (MetalLB's default)

    @property
    def mode(self) -> str:
        return str(PRESETS[self.preset]["mode"])

    def health(self, traffic_policy: str) -> dict[str, Any]:
        preset = PRESETS[self.preset]
        return {**preset.get(traffic_policy, preset["Cluster"]), **self.overrides}


@dataclass(frozen=True)
class ExternalSpec:
    cidr: ipaddress.IPv4Network
    hosts: tuple[ExternalHostSpec, ...]
    load_balancer: LoadBalancerSpec
    domain: str = DEFAULT_EXTERNAL_DOMAIN  # the outside resolver names host h `h.<domain>`

    def host_addresses(self) -> dict[str, str]:
        """External hosts from .10 up (.1 is the load balancer's health checker)."""
        return {h.name: str(self.cidr.network_address + 10 + i) for i, h in enumerate(self.hosts)}

    @property
    def checker_ip(self) -> str:
        return str(self.cidr.network_address + 1)


# -- measurements and events ------------------------------------------------------------------

@dataclass(frozen=True)
class MeasurementEnd:
    """Where a measurement runs from or is aimed at: a pod (namespace/name), a node, a
    Service's ClusterIP, a Service's node port on a node, its load balancer's VIP, or an
    external host. `port` is the resolved port number where one applies. (Not a Service's
    endpoint: those are the pods behind it, kemu/k8s/endpoints.py.)"""

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
    type: str  # a measurement kind (kemu/measure/)
    source: MeasurementEnd | None  # None for kinds that run from no place (pod-startup)
    target: MeasurementEnd | None  # None for kinds with no `to` (dns queries a name)
    params: dict[str, Any]
    background: bool = False  # runs alongside the measurements after it


@dataclass(frozen=True)
class EventSpec:
    """One change on a run's timeline, `at` seconds after its measurements start."""

    at: float
    action: str  # an event kind (kemu/events/)
    target: str  # a node, a link, a pod or Deployment key, or the object's key
    link: dict[str, Any] = field(default_factory=dict)  # link-set: the LinkParams changed
    replicas: int = 0
    objects: tuple[Any, ...] = ()  # apply: the objects (kemu/scenario/objects.py)
    kind: str = ""  # delete: the kind
    pods: tuple[str, ...] = ()  # rollout: the new pods' keys

    def __str__(self) -> str:
        return str(registry.events()[self.action].describe(self))


# -- the whole --------------------------------------------------------------------------------

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
    ingress_classes: tuple[IngressClass, ...] = ()
    secrets: tuple[Secret, ...] = ()
    slices: tuple[EndpointSlice, ...] = ()  # given in manifests (selectorless Services')
    warnings: tuple[Problem, ...] = ()
    events: tuple[EventSpec, ...] = ()  # in time order
    templates: dict[str, PodSpec] = field(default_factory=dict)  # Deployment key → pod
    rollouts: dict[str, Rollout] = field(default_factory=dict)  # Deployment key → strategy


@dataclass(frozen=True)
class Run:
    """One combination of a scenario's matrix (or the scenario itself, with no params)."""

    params: dict[str, Any]
    scenario: Scenario

    @property
    def label(self) -> str:
        return ", ".join(f"{k.rsplit('.', 1)[-1]}={v}" for k, v in self.params.items())
