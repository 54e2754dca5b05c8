"""Long-running processes a backend runs inside a node (flannel's UDP proxy, BIRD).

Each is started through nsenter into the node's network namespace, recorded in the run's state
before anything else can fail (so teardown and `kemu clean` always find it), logs to a file in
the run directory, and is stopped by pid — never by name.
"""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path
from typing import IO, Any

from kemu.errors import KemuError
from kemu.node import K8sNode
from kemu.state import RunState, kill_recorded, process_start_time


def find_binary(name: str, source: str) -> str:
    """A helper kemu builds (scripts/setup.sh puts it next to the venv's python) or finds on
    PATH."""
    beside = Path(sys.executable).parent / name
    found = str(beside) if beside.exists() else shutil.which(name)
    if not found:
        raise KemuError(f"{name} is not built: run scripts/setup.sh (it compiles {source})")
    return found


class Daemon:
    def __init__(self, node: K8sNode, name: str, argv: list[str], state: RunState, log: Path):
        self.node, self.name, self.argv, self.state, self.log = node, name, argv, state, log
        self.proc: subprocess.Popen[Any] | None = None

    @property
    def what(self) -> str:
        return f"{self.name} on {self.node.name}"

    def start(self, stdin: int | None = subprocess.DEVNULL,
              stdout: int | IO[Any] | None = None) -> subprocess.Popen[Any]:
        self.log.parent.mkdir(parents=True, exist_ok=True)
        with open(self.log, "ab") as log:
            try:
                self.proc = subprocess.Popen(
                    ["nsenter", f"--net={self.node.netns_path}", "--", *self.argv],
                    stdin=stdin, stdout=stdout if stdout is not None else log, stderr=log,
                    start_new_session=True)
            except OSError as e:
                raise KemuError(f"cannot start {self.what}: {e.strerror}") from None
        self.state.record_process(self.proc.pid, self.what)
        return self.proc

    def running(self) -> bool:
        return self.proc is not None and self.proc.poll() is None

    def failure(self) -> str:
        """The end of the daemon's log, to explain why it is not running."""
        try:
            tail = self.log.read_text().strip().splitlines()[-5:]
        except OSError:
            tail = []
        return f"{self.what} exited" + (": " + " | ".join(tail) if tail else "")

    def stop(self) -> None:
        if self.proc is None:
            return
        if self.proc.stdin:
            self.proc.stdin.close()
        kill_recorded(self.proc.pid, process_start_time(self.proc.pid))
        self.proc.wait()
        self.state.forget_process(self.proc.pid)
        self.proc = None
