"""A pod's graceful termination, as kubelet does it (kubernetes pkg/kubelet/kuberuntime,
killContainer): the pod is marked terminating at once — its endpoints stop being ready, so no
new connection goes to it while those it has go on — and each container, all at once, runs its
preStop hook (exec, sleep or httpGet) within the grace period, then gets SIGTERM, and SIGKILL
when what is left of terminationGracePeriodSeconds has passed (at least 2 s after the hook,
kubelet's minimum shutdown window). Then the sandbox goes: CNI DEL, the namespace, the store's
pod. It all runs in the background, as it does in a cluster; `cut_short` ends it at once
(teardown).
"""

from __future__ import annotations

import http.client
import signal
import threading
import time
from typing import TYPE_CHECKING

from kemu.kernel.exec import call_in
from kemu.kernel.processes import Process
from kemu.scenario.objects import Container

if TYPE_CHECKING:
    from kemu.cluster.kubelet import Kubelet, Pod

MINIMUM_GRACE_S = 2.0  # kubelet's minimumGracePeriodInSeconds
HTTP_HOOK_S = 10.0  # the longest kemu waits for an httpGet preStop's answer


class Termination:
    def __init__(self, kubelet: Kubelet, pod: Pod):
        self.kubelet, self.pod = kubelet, pod
        self.cut = threading.Event()
        self.hooks: list[Process] = []
        self.thread = threading.Thread(target=self._run, name=f"terminate {pod.spec.key}",
                                       daemon=True)

    def start(self) -> Termination:
        self.thread.start()
        return self

    def cut_short(self) -> None:
        """No more grace: hooks and containers killed now (teardown)."""
        self.cut.set()
        for hook in self.hooks:
            hook.stop(grace=0)
        for container in self.pod.containers:
            container.signal(signal.SIGKILL)

    def _run(self) -> None:
        workers = [threading.Thread(target=self._stop, args=(spec, proc), daemon=True)
                   for spec, proc in zip(self.pod.spec.containers, self.pod.containers,
                                         strict=False)]
        for worker in workers:
            worker.start()
        for worker in workers:
            worker.join()
        self.kubelet.finish_termination(self.pod)

    def _stop(self, spec: Container, container: Process) -> None:
        grace = float(self.pod.spec.termination_grace_s)
        if spec.pre_stop and grace > 0 and not self.cut.is_set():
            began = time.monotonic()
            self._hook(spec, grace)
            grace -= int(time.monotonic() - began)  # kubelet counts whole seconds
        grace = max(grace, MINIMUM_GRACE_S)
        container.signal(signal.SIGTERM)
        if not container.ended_within(0 if self.cut.is_set() else grace):
            container.signal(signal.SIGKILL)
            container.ended_within(10)

    def _hook(self, spec: Container, grace: float) -> None:
        """The preStop hook, for at most `grace` seconds; its failure does not stop the
        termination (kubelet records an event and goes on)."""
        hook = spec.pre_stop
        assert hook is not None
        if hook.kind == "sleep":
            self.cut.wait(min(hook.seconds, grace))
        elif hook.kind == "exec":
            process = Process(self.pod.netns, hook.command, f"preStop of {self.pod.spec.key}",
                              self.kubelet.state).start()
            self.hooks.append(process)
            if self.cut.is_set() or not process.ended_within(grace):  # cut short meanwhile
                process.stop(grace=0)
        else:
            port = self.pod.spec.port_number(hook.port)
            if port is None:
                return

            def get() -> None:  # from the node, as kubelet's handler does
                try:  # (a short timeout: a teardown must not wait out the grace period)
                    conn = http.client.HTTPConnection(self.pod.ip, port,
                                                      timeout=min(grace, HTTP_HOOK_S))
                    conn.request("GET", hook.path)
                    conn.getresponse().read()
                    conn.close()
                except OSError:
                    pass

            call_in(self.pod.node.netns, get)
