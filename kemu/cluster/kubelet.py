"""The kubelet of one node: runs pods as a container runtime and kubelet would, and reports
their status to the store (the API server's part).

A pod is a network namespace (what the pause container holds in Kubernetes: its sandbox),
attached to the cluster network by the node's CNI config; its containers are host programs
started inside that namespace, so they share the pod's IP and reach each other on localhost.
As containerd does, the runtime brings up `lo` with the `loopback` plugin and `eth0` with the
node's network config.
"""

from __future__ import annotations

import http.client
import os
import socket
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from kemu.clock import patience
from kemu.cluster.termination import Termination
from kemu.errors import KemuError, NotReadyError, TimedOut
from kemu.images.base import container_argv
from kemu.k8s.hosts_file import NSSWITCH, hosts_file
from kemu.k8s.resolv_conf import resolv_conf
from kemu.k8s.store import Store
from kemu.kernel.cni import Attachment, NetworkConfigList, pod_ips
from kemu.kernel.exec import HOST, Netns, Result, call_in, run
from kemu.kernel.node import K8sNode
from kemu.kernel.processes import Process, stop_all
from kemu.kernel.records import RunState, delete_netns, remove_path
from kemu.registry import images
from kemu.scenario.model import DNSConfig
from kemu.scenario.objects import Container, PodSpec, Probe


def _kemus(container: Container) -> bool:
    """Whether kemu's own program runs for it (a built-in image, the stand-in, or an image
    the scenario's `images:` sends to a built-in one)."""
    if container.command:
        return False
    if container.stand_in or container.image in images():
        return True
    return any(container.entrypoint == tuple(image.entrypoint(container))
               for image in images().values())


NETNS_ETC = Path("/etc/netns")  # `ip netns exec NAME` bind-mounts files from here over /etc
ETC_FILES = ("resolv.conf", "hosts", "nsswitch.conf")

LOOPBACK_CONF = {"cniVersion": "1.0.0", "name": "cni-loopback",
                 "plugins": [{"type": "loopback"}]}


@dataclass
class Pod:
    """A pod as its node runs it: the sandbox (a named network namespace) and containers."""

    spec: PodSpec
    node: K8sNode
    sandbox: str  # the network namespace's name
    ip: str = ""
    cni_result: dict[str, Any] = field(default_factory=dict)
    containers: list[Process] = field(default_factory=list)
    ready: bool = False
    terminating: bool = False  # being deleted: termination.py
    started_at: float = 0.0
    # container → [next probe time, successes in a row, failures in a row, ready (0/1)]
    probe_state: dict[str, list[float]] = field(default_factory=dict)

    @property
    def netns(self) -> Netns:
        return Netns.named(self.sandbox, f"pod {self.spec.key}")

    @property
    def running(self) -> bool:
        return bool(self.containers) and all(c.running() for c in self.containers)

    @property
    def name(self) -> str:
        return self.spec.name

    def exec(self, *argv: str, timeout: float | None = None) -> Result:
        """Run a command inside the pod (like `kubectl exec`), returning its result."""
        return run(self.netns, argv, check=False, timeout=timeout)

    def listening(self, port: int) -> bool:
        """Is a TCP socket listening on `port` in the pod? (Read through a process in it.)"""
        for container in self.containers:
            for table in ("tcp", "tcp6"):
                try:
                    lines = Path(f"/proc/{container.pid}/net/{table}").read_text().splitlines()
                except OSError:
                    continue
                for line in lines[1:]:
                    fields = line.split()
                    if fields[3] == "0A" and int(fields[1].rsplit(":", 1)[1], 16) == port:
                        return True
        return False


class Kubelet:
    def __init__(self, node: K8sNode, network: NetworkConfigList, state: RunState,
                 store: Store, dns: DNSConfig):
        self.node = node
        self.network = network
        self.loopback = NetworkConfigList(LOOPBACK_CONF, network.cni_path)
        self.state = state
        self.store = store
        self.dns = dns  # for the pods' resolv.conf and hosts
        self.pods: dict[str, Pod] = {}  # the runtime's sandboxes, by pod key
        self.terminations: dict[str, Termination] = {}  # pods being deleted, by key
        self.closing = False  # the node is going away (remove_all)
        self.failures: list[str] = []  # what went wrong in the background (a termination)

    def run_pod(self, spec: PodSpec) -> Pod:
        """Sandbox, network, containers — as RunPodSandbox + CreateContainer + StartContainer.
        On failure the pod is torn down again before the error propagates."""
        sandbox = self.state.netns_name(spec.namespace, spec.name)
        self.state.record_netns(sandbox)  # recorded first: a crash right after still cleans up
        run(HOST, ["ip", "netns", "add", sandbox])
        pod = Pod(spec, self.node, sandbox)
        self.pods[spec.key] = pod
        try:
            self.loopback.add(self.node, self._attachment(pod, "lo"))
            pod.cni_result = self.network.add(self.node, self._attachment(pod))
            ips = pod_ips(pod.cni_result)
            if not ips:
                raise KemuError(f"CNI gave pod {spec.key} no address")
            pod.ip = ips[0]
            self.store.update_pod(spec.key, ip=pod.ip)
            self._write_etc(pod)
            pod.started_at = time.monotonic()
            for container in spec.containers:
                self._start_container(pod, container.name, container_argv(container),
                                      dict(container.env))
        except BaseException:
            self.kill_pod(pod)
            raise
        return pod

    def _write_etc(self, pod: Pod) -> None:
        """The pod's /etc/resolv.conf, /etc/hosts (kubelet's) and /etc/nsswitch.conf (its
        image's), through iproute2's per-namespace /etc/netns/NAME/, recorded for removal."""
        directory = NETNS_ETC / pod.sandbox
        files = {"resolv.conf": resolv_conf(pod.spec, self.dns),
                 "hosts": hosts_file(pod.spec, pod.ip, self.dns.domain, socket.gethostname()),
                 "nsswitch.conf": NSSWITCH}
        for path in (NETNS_ETC, directory, *(directory / name for name in files)):
            if not path.exists():
                self.state.record_path(str(path))
        directory.mkdir(parents=True, exist_ok=True)
        assert tuple(files) == ETC_FILES  # what _forget removes
        for name, text in files.items():
            (directory / name).write_text(text)

    def _attachment(self, pod: Pod, ifname: str = "eth0") -> Attachment:
        mappings = tuple((p.host_port, p.container_port, p.protocol, p.host_ip)
                         for c in pod.spec.containers for p in c.ports if p.host_port)
        return Attachment(container_id=pod.sandbox, netns=pod.netns.path, ifname=ifname,
                          port_mappings=mappings if ifname == "eth0" else ())

    def _start_container(self, pod: Pod, name: str, argv: list[str], env: dict[str, str]) -> None:
        environment = {**os.environ, "HOSTNAME": pod.spec.name, "POD_NAME": pod.spec.name,
                       "POD_NAMESPACE": pod.spec.namespace, "POD_IP": pod.ip,
                       "NODE_NAME": self.node.name, "KEMU_RUN_DIR": str(self.state.dir), **env}
        log = self.state.dir / "pods" / f"{pod.spec.namespace}_{pod.spec.name}" / f"{name}.log"
        container = Process(pod.netns, argv, f"pod {pod.spec.key} container {name}",
                            self.state, log, environment)
        pod.containers.append(container)
        try:
            container.start()
        except KemuError as e:
            pod.containers.remove(container)
            raise KemuError(f"pod {pod.spec.key}: container {name}: {e}") from None

    def wait_running(self, pod: Pod, timeout: float = 10.0, best_effort_s: float = 2.0) -> None:
        """Wait until every container is alive and its declared TCP ports listen. kemu's own
        programs (its images, the stand-in) must listen within `timeout`; a program of the
        user's (`command`) is waited for `best_effort_s` at most, and then the pod runs
        anyway, as Kubernetes runs it: a port declared is not a port promised."""
        ours = [p.container_port for c in pod.spec.containers if _kemus(c) for p in c.ports
                if p.protocol == "TCP"]
        theirs = [p.container_port for c in pod.spec.containers if not _kemus(c)
                  for p in c.ports if p.protocol == "TCP"]
        started = time.monotonic()
        while True:
            for spec, container in zip(pod.spec.containers, pod.containers, strict=True):
                if not container.running():
                    raise NotReadyError(f"pod {pod.spec.key}: container {spec.name} exited "
                                        f"with code {container.returncode} (log: "
                                        f"{self.state.dir}/pods)")
            waited = time.monotonic() - started
            if all(pod.listening(port) for port in ours) and \
                    (waited > best_effort_s or all(pod.listening(port) for port in theirs)):
                return
            if waited > patience(timeout):
                raise NotReadyError(f"pod {pod.spec.key}: ports {ours} not listening after "
                                    f"{patience(timeout):.0f} s")
            time.sleep(0.02)

    # -- status -------------------------------------------------------------------------------

    def update_readiness(self) -> None:
        """One round of kubelet's prober: a pod is ready while all its containers run and
        every readiness probe holds (per its period and thresholds). Without a probe, a
        running container is ready. What changed goes to the store."""
        now = time.monotonic()
        due: list[tuple[Pod, Probe, list[float]]] = []
        for pod in list(self.pods.values()):
            for container in pod.spec.containers:
                probe = container.readiness
                if probe is None or not pod.running:
                    continue
                state = pod.probe_state.setdefault(
                    container.name, [pod.started_at + probe.initial_delay_s, 0, 0, 0])
                if now >= state[0]:
                    state[0] = now + probe.period_s
                    due.append((pod, probe, state))
        if due:  # all at once: one slow probe must not hold up every other pod's
            with ThreadPoolExecutor(max_workers=min(16, len(due))) as pool:
                results = list(pool.map(lambda d: self._probe(d[0], d[1]), due))
            for (_, probe, state), ok in zip(due, results, strict=True):
                state[1], state[2] = (state[1] + 1, 0) if ok else (0, state[2] + 1)
                if state[1] >= probe.success_threshold:
                    state[3] = 1
                elif state[2] >= probe.failure_threshold:
                    state[3] = 0
        for pod in list(self.pods.values()):
            pod.ready = pod.running and all(
                pod.probe_state.get(c.name, [0, 0, 0, 0])[3] for c in pod.spec.containers
                if c.readiness)
            self.store.update_pod(pod.spec.key, containers_ready=pod.ready)

    def _probe(self, pod: Pod, probe: Probe) -> bool:
        if probe.kind == "exec":
            try:
                return pod.exec(*probe.command, timeout=probe.timeout_s).ok
            except TimedOut:
                return False
        port = pod.spec.port_number(probe.port)
        if port is None:
            return False

        def attempt() -> bool:  # from the node, as kubelet probes
            try:
                if probe.kind == "tcpSocket":
                    socket.create_connection((pod.ip, port), timeout=probe.timeout_s).close()
                    return True
                conn = http.client.HTTPConnection(pod.ip, port, timeout=probe.timeout_s)
                try:
                    conn.request("GET", probe.path, headers={"User-Agent": "kube-probe/kemu"})
                    return 200 <= conn.getresponse().status < 400
                finally:
                    conn.close()
            except OSError:
                return False

        return call_in(self.node.netns, attempt)

    def crash_pod(self, pod: Pod) -> None:
        """Kill the pod's containers, leaving its sandbox: what a crash looks like to the rest
        of the cluster."""
        stop_all(pod.containers, grace=0)
        pod.ready = False
        self.store.update_pod(pod.spec.key, containers_ready=False)

    # -- removal ------------------------------------------------------------------------------

    def terminate(self, pod: Pod) -> None:
        """Delete the pod gracefully (termination.py): terminating from now on, gone when
        its containers have stopped."""
        if pod.terminating:
            return
        pod.terminating = True
        self.store.update_pod(pod.spec.key, terminating=True)
        self.terminations[pod.spec.key] = Termination(self, pod).start()

    def finish_termination(self, pod: Pod) -> None:
        """Its containers have stopped: the sandbox goes, and the pod with it (unless the whole
        node is going: remove_all takes it then)."""
        if self.closing:
            return
        try:
            with self.store.lock:  # not while the control loop probes this kubelet's pods
                self.kill_pod(pod)
        except KemuError as e:
            self.failures.append(f"deleting pod {pod.spec.key}: {e}")
        self.terminations.pop(pod.spec.key, None)

    def remove_all(self) -> None:
        """The whole node is going away (as when a VM is deleted): pods being deleted are
        cut short, every container stopped at once and the sandboxes dropped in one batch.
        No CNI DEL — the node's namespace, with every veth and bridge in it, goes next;
        single pods are removed with kill_pod."""
        self.closing = True
        for termination in list(self.terminations.values()):
            termination.cut_short()
        for termination in list(self.terminations.values()):
            termination.thread.join(timeout=5)
        pods = list(self.pods.values())
        stop_all([c for pod in pods for c in pod.containers], grace=1.0)
        if pods:
            run(HOST, ["ip", "-force", "-batch", "-"], check=False,
                input="".join(f"netns delete {p.sandbox}\n" for p in pods))
        for pod in pods:
            self._forget(pod)
        self.pods.clear()

    def kill_pod(self, pod: Pod) -> None:
        """StopPodSandbox + RemovePodSandbox: containers, CNI DEL (even after a failed ADD),
        namespace. Tolerates whatever part is already gone."""
        stop_all(pod.containers, grace=1.0)
        pod.containers.clear()
        errors = []
        for conf, ifname in ((self.network, "eth0"), (self.loopback, "lo")):
            try:
                conf.delete(self.node, self._attachment(pod, ifname), pod.cni_result or None)
            except KemuError as e:
                errors.append(e)
        delete_netns(pod.sandbox)
        self._forget(pod)
        self.pods.pop(pod.spec.key, None)
        if errors:
            raise errors[0]

    def _forget(self, pod: Pod) -> None:
        """What the run's records and the store hold of a pod that is gone."""
        if not Path(pod.netns.path).exists():
            self.state.forget_netns(pod.sandbox)  # else `kemu clean` still finds it
        directory = NETNS_ETC / pod.sandbox
        for path in (*(directory / name for name in ETC_FILES), directory):
            if str(path) in self.state.data["paths"] and remove_path(path):
                self.state.forget_path(str(path))
        self.store.delete_pod(pod.spec.key)
