"""The edge of the emulated network: an Open vSwitch switch and the load-balancer app that
controls it, in Mininet's vocabulary.

The switch lives in the root namespace as a plain L2 device (no address; OVS has no other
way), with TX checksum offload off on its ports (TCP stalls on the userspace datapath
otherwise). It uses the kernel datapath where the openvswitch module exists, the userspace one
elsewhere. The controller is a Mininet Controller whose process is kemu's os-ken runner,
listening for OpenFlow on loopback only.
"""

from __future__ import annotations

import os
import socket
import sys
import time
from pathlib import Path
from typing import Any

from mininet.node import Controller, OVSSwitch

from kemu.clock import patience
from kemu.errors import KemuError
from kemu.kernel import doctor
from kemu.kernel.exec import HOST
from kemu.kernel.processes import Process
from kemu.kernel.records import RunState


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class EdgeSwitch(OVSSwitch):
    def __init__(self, name: str, **params: Any):
        params.setdefault("failMode", "secure")  # no controller, no forwarding
        params.setdefault("protocols", "OpenFlow13")
        params.setdefault("datapath", "kernel" if doctor.module_available("openvswitch")
                          else "user")
        super().__init__(name, **params)


class LBController(Controller):
    def __init__(self, name: str, state: RunState, config: Path, log: Path, **params: Any):
        self.state, self.config, self.log = state, config, log
        self.state_port = free_port()
        self.app: Process | None = None
        super().__init__(name, ip="127.0.0.1", port=free_port(), **params)

    def checkListening(self) -> None:  # noqa: N802 (Mininet's name)
        pass  # the port is free by construction; Mininet's check would need telnet

    def start(self) -> None:
        env = {**os.environ, "KEMU_LB_CONFIG": str(self.config),
               "KEMU_LB_STATE_PORT": str(self.state_port)}
        self.app = Process(HOST, [sys.executable, "-m", "kemu.edge.runner",
                                  "--port", str(self.port)],
                           "load-balancer app (os-ken)", self.state, self.log, env).start()
        deadline = time.monotonic() + patience(20)
        while time.monotonic() < deadline:  # OpenFlow port open: the app is up
            if not self.app.running():
                raise KemuError(f"the load-balancer app exited; see {self.log}")
            try:
                socket.create_connection(("127.0.0.1", self.port), timeout=0.2).close()
                return
            except OSError:
                time.sleep(0.1)
        raise KemuError(f"the load-balancer app did not start listening; see {self.log}")

    def stop(self, *args: Any, **kwargs: Any) -> None:
        if self.app is not None:
            self.app.stop(grace=2.0)
            self.app = None
        super().stop(*args, **kwargs)
