"""The cluster's live objects, as the API server holds them: pods (with where they run, their
address and readiness), Services, NetworkPolicies, Namespaces, Ingresses, Secrets, nodes'
readiness and the endpoints derived from them. One lock, and a version every change bumps:
controllers reconcile when it moved (as Kubernetes controllers do from their informers),
whatever changed — a pod, a label, a policy, a node."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterable
from dataclasses import dataclass, replace
from typing import Any

from kemu.scenario.objects import Namespace, NetworkPolicy, PodSpec, Service, key_of, kind_of

# Besides pods: what manifests declare (EndpointSlices: those of selectorless Services)
KINDS = ("Service", "NetworkPolicy", "Namespace", "Ingress", "IngressClass", "Secret",
         "EndpointSlice")

EndpointMap = dict[tuple[str, str], list[Any]]  # (service key, port name) → its Endpoints


@dataclass(frozen=True)
class PodStatus:
    """A pod as the API server holds it. Times are monotonic seconds. Ready, as kubelet
    decides it: every container ready and every readiness gate's condition True."""

    spec: PodSpec
    ip: str = ""
    node: str = ""
    ready: bool = False
    created: float = 0.0  # when it was created
    ready_since: float | None = None  # when it first became Ready
    terminating: bool = False  # being deleted (deletionTimestamp set), until it is gone
    containers_ready: bool = False  # the ContainersReady condition (kubelet's prober)
    conditions: frozenset[str] = frozenset()  # readiness-gate conditions set True


@dataclass(frozen=True)
class NodeStatus:
    name: str
    ready: bool = True  # the node lifecycle controller's view
    unreachable_since: float | None = None  # when its heartbeats stopped (monotonic)


class Store:
    def __init__(self, nodes: Iterable[str], objects: Iterable[Any] = ()):
        """`objects`: the Services, NetworkPolicies, Namespaces, Ingresses and Secrets."""
        self.lock = threading.RLock()  # one change, or one reconcile, at a time
        self.version = 0
        self._pods: dict[str, PodStatus] = {}
        self._objects: dict[str, dict[str, Any]] = {kind: {} for kind in KINDS}
        for obj in objects:
            self._objects[kind_of(obj)][key_of(obj)] = obj
        self._nodes = {name: NodeStatus(name) for name in nodes}
        self._endpoints: EndpointMap = {}
        self._slices: list[Any] = []

    def _bump(self) -> None:
        self.version += 1

    # -- reads (copies: safe to use outside the lock) ----------------------------------------

    def pod(self, key: str) -> PodStatus:
        with self.lock:
            return self._pods[key]

    def pods(self) -> list[PodStatus]:
        with self.lock:
            return list(self._pods.values())

    def objects(self, kind: str) -> list[Any]:
        with self.lock:
            return list(self._objects[kind].values())

    def services(self) -> list[Service]:
        return self.objects("Service")

    def policies(self) -> list[NetworkPolicy]:
        return self.objects("NetworkPolicy")

    def namespaces(self) -> dict[str, Namespace]:
        return {ns.name: ns for ns in self.objects("Namespace")}

    def node(self, name: str) -> NodeStatus:
        with self.lock:
            return self._nodes[name]

    def nodes(self) -> list[NodeStatus]:
        with self.lock:
            return list(self._nodes.values())

    def endpoints(self) -> EndpointMap:
        with self.lock:
            return dict(self._endpoints)

    def slices(self) -> list[Any]:
        """Every EndpointSlice: the controller's and the manifests'."""
        with self.lock:
            return list(self._slices)

    # -- changes -----------------------------------------------------------------------------

    def create_pod(self, spec: PodSpec, node: str) -> PodStatus:
        with self.lock:
            status = PodStatus(spec, node=node, created=time.monotonic())
            self._pods[spec.key] = status
            self._bump()
            return status

    def update_pod(self, key: str, **changes: Any) -> None:
        """Change a pod's status (ip, containers_ready, conditions, terminating); Ready follows
        from the containers and the readiness gates, and its first time is remembered."""
        with self.lock:
            old = self._pods.get(key)
            if old is None:
                return  # deleted meanwhile
            new = replace(old, **changes)
            new = replace(new, ready=new.containers_ready and
                          set(new.spec.readiness_gates) <= new.conditions)
            if new.ready and new.ready_since is None:
                new = replace(new, ready_since=time.monotonic())
            if new != old:
                self._pods[key] = new
                self._bump()

    def delete_pod(self, key: str) -> None:
        with self.lock:
            if self._pods.pop(key, None) is not None:
                self._bump()

    def apply(self, obj: Any) -> None:
        """kubectl apply of a Service, NetworkPolicy, Namespace, Ingress or Secret: created,
        or replaced."""
        with self.lock:
            self._objects[kind_of(obj)][key_of(obj)] = obj
            self._bump()

    def delete(self, kind: str, key: str) -> None:
        """kubectl delete of one of those."""
        with self.lock:
            if self._objects[kind].pop(key, None) is not None:
                self._bump()

    def set_node(self, name: str, **changes: Any) -> None:
        with self.lock:
            old = self._nodes[name]
            new = replace(old, **changes)
            if new != old:
                self._nodes[name] = new
                self._bump()

    def set_endpoints(self, endpoints: EndpointMap, slices: list[Any]) -> None:
        """What the EndpointSlice controller and the slices' readers made of the rest."""
        with self.lock:
            self._slices = slices
            if endpoints != self._endpoints:
                self._endpoints = endpoints
                self._bump()
