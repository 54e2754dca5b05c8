"""The cluster's workloads, as the controllers and kubectl change them (a part of Cluster):
pods made as the ReplicaSet controller, the scheduler and the kubelets make them, deleted
gracefully (termination.py); Deployments scaled and rolled out (rollout.py); kubectl apply and
delete of every kind."""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor
from dataclasses import replace
from typing import TYPE_CHECKING, Any

from kemu.cluster.kubelet import Kubelet, Pod
from kemu.cluster.rollout import RollingUpdate
from kemu.edge.config import with_neg_gate
from kemu.errors import KemuError
from kemu.k8s.store import KINDS as STORE_KINDS
from kemu.k8s.store import Store
from kemu.scenario.objects import (
    Deployment,
    Namespace,
    PodSpec,
    Rollout,
    Service,
    key_of,
    owner_template,
    replacement,
    replicas_of,
    scale,
)
from kemu.scenario.scheduler import HostPorts, host_ports, place

if TYPE_CHECKING:
    from kemu.edge.edge import Edge
    from kemu.kernel.node import K8sNode
    from kemu.scenario.model import Scenario


class Workloads:
    scenario: Scenario
    store: Store
    kubelets: dict[str, Kubelet]
    templates: dict[str, PodSpec]
    rollouts: dict[str, Rollout]
    updates: dict[str, RollingUpdate]  # Deployment key → its rollout
    pods_used: set[str]
    edge: Edge | None

    @property
    def pods(self) -> dict[str, Pod]:
        raise NotImplementedError

    @property
    def nodes(self) -> dict[str, K8sNode]:
        raise NotImplementedError

    @property
    def services(self) -> list[Service]:
        raise NotImplementedError

    # -- pods: as the ReplicaSet controller, the scheduler and the kubelets make them ----------

    def _create_pods(self, specs: list[PodSpec], placement: dict[str, str] | None = None) -> None:
        """Create the pods in the store (at once, as a ReplicaSet does), placed as given or
        where the scheduler would put them now (not on a node that is down); their nodes'
        kubelets start them, the nodes in parallel."""
        if placement is None:
            up = [n for n in self.scenario.cluster.nodes
                  if self.store.node(n.name).unreachable_since is None]
            load = {n.name: 0 for n in up}
            taken: HostPorts = {n.name: [] for n in up}
            for status in self.store.pods():
                if status.node in load:
                    load[status.node] += 1
                    taken[status.node] += host_ports(status.spec)
            placement = {spec.key: place(spec, up, load, self.scenario.cluster.max_pods, taken)
                         for spec in specs}
        per_node: dict[str, list[PodSpec]] = {}
        specs = [with_neg_gate(spec, self.services, self.scenario.external) for spec in specs]
        for spec in specs:
            self.pods_used.add(spec.key)  # taken, even if starting it fails
            self.store.create_pod(spec, placement[spec.key])
            per_node.setdefault(placement[spec.key], []).append(spec)

        def start(name: str) -> None:
            kubelet = self.kubelets[name]
            for pod in [kubelet.run_pod(spec) for spec in per_node[name]]:
                kubelet.wait_running(pod)

        with ThreadPoolExecutor(max_workers=min(8, len(per_node) or 1)) as pool:
            list(pool.map(start, per_node))

    def _remove_pod(self, pod: Pod) -> None:
        """Delete it gracefully: terminating now, gone once its containers stopped
        (kemu/cluster/termination.py)."""
        with self.store.lock:
            self.kubelets[pod.node.name].terminate(pod)

    def _active(self) -> set[str]:
        """The pods that are not being deleted: what a ReplicaSet counts."""
        return {key for key, pod in self.pods.items() if not pod.terminating}

    def replicas(self, deployment: str) -> list[str]:
        """The keys of a Deployment's pods now (those terminating left out)."""
        return replicas_of(self.templates[deployment], self._active())

    def _pod(self, key: str) -> Pod:
        pod = self.pods.get(key)
        if pod is None:
            raise KemuError(f"pod {key} does not exist now (not made yet — a rollout makes its "
                            f"pods one by one — or already gone)")
        return pod

    def delete_pod(self, key: str) -> str:
        """kubectl delete pod: the pod terminates (preStop, SIGTERM, then its sandbox goes);
        if a Deployment owns it, its replacement starts at once under a new name, which is
        returned."""
        pod = self._pod(key)
        if pod.terminating:
            return ""
        template = owner_template(self.templates, key)
        new = replacement(template, self._active(), self.pods_used) if template else ""
        self._remove_pod(pod)
        if template:
            self._create_pods([replace(template, name=new.split("/", 1)[1])])
        return new

    def scale(self, deployment: str, replicas: int) -> tuple[list[str], list[str]]:
        """kubectl scale: the Deployment's pods made or deleted (gracefully); returns (made,
        deleted). A rollout in progress ends here (kemu does not scale its two sets of pods
        in proportion, as the Deployment controller would)."""
        self._end_rollout(deployment)
        template = self.templates[deployment]
        add, remove = scale(template, self._active(), replicas, self.pods_used)
        for key in remove:
            self._remove_pod(self._pod(key))
        self._create_pods([replace(template, name=key.split("/", 1)[1]) for key in add])
        return add, remove

    def create_replicas(self, deployment: str, keys: list[str]) -> None:
        """Pods of the Deployment under these names (a rollout's new ones)."""
        template = self.templates[deployment]
        self._create_pods([replace(template, name=key.split("/", 1)[1]) for key in keys])

    def delete_replica(self, key: str) -> None:
        """A Deployment's pod deleted without a replacement (a rollout's old one)."""
        self._remove_pod(self._pod(key))

    def rollout(self, deployment: str, new: list[str]) -> None:
        """kubectl rollout restart: new pods (named `new`) replace the Deployment's, as its
        strategy says, in the background (rollout.py)."""
        self._end_rollout(deployment)  # a new rollout supersedes the one in progress
        rollout = self.rollouts.get(deployment, Rollout())
        self.pods_used.update(new)
        self.updates[deployment] = RollingUpdate(self, deployment, rollout, new).start()

    def _end_rollout(self, deployment: str) -> None:
        update = self.updates.pop(deployment, None)
        if update:
            update.stop()
            if update.error:
                raise KemuError(update.error)

    def crash_pod(self, key: str) -> None:
        """The pod's containers die (the sandbox stays): the controllers notice."""
        pod = self._pod(key)
        with self.store.lock:
            self.kubelets[pod.node.name].crash_pod(pod)

    # -- kubectl apply and delete, of every kind ----------------------------------------------

    def apply(self, objects: tuple[Any, ...]) -> None:
        """kubectl apply: each object created, or replaced (a Deployment scaled to its
        replicas). Objects in a namespace the cluster has not seen make it, as the scenario's
        own do."""
        for obj in objects:
            namespace = getattr(obj, "namespace", "")
            if namespace and namespace not in self.store.namespaces():
                self.store.apply(Namespace(namespace,
                                           {"kubernetes.io/metadata.name": namespace}))
            if isinstance(obj, PodSpec):
                self._create_pods([obj])
            elif isinstance(obj, Deployment):
                self.templates[obj.key] = obj.template
                self.rollouts[obj.key] = obj.rollout
                self.scale(obj.key, obj.replicas)
            else:
                self.store.apply(obj)

    def delete(self, kind: str, key: str) -> None:
        """kubectl delete: a Pod (its Deployment replaces it), a Deployment (with its pods),
        a Namespace (with everything in it), or an object of the store's kinds."""
        if kind == "Pod":
            self.delete_pod(key)
        elif kind == "Deployment":
            self.scale(key, 0)  # ends its rollout, if one is in progress
            del self.templates[key]
        else:
            if kind == "Namespace":
                for deployment in [k for k in self.templates if k.startswith(f"{key}/")]:
                    self.delete("Deployment", deployment)
                for pod in [p for k, p in self.pods.items() if k.startswith(f"{key}/")]:
                    self._remove_pod(pod)
                for other in STORE_KINDS:
                    for obj in self.store.objects(other):
                        if getattr(obj, "namespace", "") == key:
                            self.store.delete(other, key_of(obj))
            self.store.delete(kind, key)
