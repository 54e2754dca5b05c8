"""The processes kemu starts and owns: daemons in nodes (BIRD, flannel's UDP proxy, the delay
line), pods' containers, programs on external hosts, the load-balancer app, measurement tools.

Each is started in a namespace (kernel/exec.py) in a session of its own, so it is stopped as a
whole process group and a terminal's Ctrl-C reaches kemu, which stops it, rather than the
process; recorded in the run's journal the moment it exists, so teardown and `kemu clean`
always find it; its output goes to a log file or a pipe; it is stopped by pid, never by name:
SIGTERM, a grace period, then SIGKILL.
"""

from __future__ import annotations

import io
import os
import shutil
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterable, Sequence
from pathlib import Path
from typing import IO, Any

from kemu.errors import KemuError, TimedOut
from kemu.kernel.exec import HOST, Netns, Result
from kemu.kernel.records import RunState

PIPE, DEVNULL, STDOUT = subprocess.PIPE, subprocess.DEVNULL, subprocess.STDOUT  # start()


def find_binary(name: str, source: str) -> str:
    """A helper kemu builds (scripts/setup.sh puts it next to the venv's python) or finds on
    PATH."""
    beside = Path(sys.executable).parent / name
    found = str(beside) if beside.exists() else shutil.which(name)
    if not found:
        raise KemuError(f"{name} is not built: run scripts/setup.sh (it compiles {source})")
    return found


class Process:
    """One process: `start()` it, talk to it (`send`, `read_until`), `stop()` it."""

    def __init__(self, where: Netns, argv: Sequence[str], what: str,
                 state: RunState | None = None, log: Path | None = None,
                 env: dict[str, str] | None = None, pass_fds: Sequence[int] = ()):
        self.where, self.argv, self.what = where, [str(a) for a in argv], what
        self.state, self.log, self.env, self.pass_fds = state, log, env, tuple(pass_fds)
        self.proc: subprocess.Popen[Any] | None = None

    @property
    def pid(self) -> int:
        assert self.proc is not None, f"{self.what} was not started"
        return self.proc.pid

    @property
    def returncode(self) -> int | None:
        return self.proc.returncode if self.proc else None

    def start(self, stdin: int | None = DEVNULL, stdout: int | IO[Any] | None = None,
              stderr: int | None = None, text: bool = False) -> Process:
        """Start it. stdout goes to the log (default), or PIPE / DEVNULL; stderr follows the
        log, or `stderr` (PIPE, subprocess.STDOUT)."""
        log_file: IO[bytes] | None = None
        if self.log is not None:
            self.log.parent.mkdir(parents=True, exist_ok=True)
            log_file = open(self.log, "ab")
        try:
            out = stdout if stdout is not None else (log_file or DEVNULL)
            err = stderr if stderr is not None else (log_file or DEVNULL)
            self.proc = subprocess.Popen([*self.where.prefix(), *self.argv], stdin=stdin,
                                         stdout=out, stderr=err, env=self.env, text=text,
                                         start_new_session=True, pass_fds=self.pass_fds)
        except OSError as e:
            raise KemuError(f"cannot start {self.what} ({self.argv[0]}): "
                            f"{e.strerror}") from None
        finally:
            if log_file:
                log_file.close()
        if self.state is not None:
            self.state.record_process(self.proc.pid, self.what)
        return self

    def running(self) -> bool:
        return self.proc is not None and self.proc.poll() is None

    def failure(self) -> str:
        """Why it is not running: the end of its log."""
        try:
            tail = self.log.read_text(errors="replace").strip().splitlines()[-5:] \
                if self.log else []
        except OSError:
            tail = []
        return f"{self.what} exited" + (": " + " | ".join(tail) if tail else "")

    def send(self, lines: Iterable[str]) -> None:
        """Lines to its stdin (started with stdin=PIPE): a daemon's control channel."""
        if not self.running() or self.proc is None or self.proc.stdin is None:
            raise KemuError(self.failure())
        data = "".join(line + "\n" for line in lines)
        self.proc.stdin.write(data if isinstance(self.proc.stdin, io.TextIOBase)
                              else data.encode())
        self.proc.stdin.flush()

    def read_until(self, done: Callable[[str], bool], what: str) -> str:
        """Read its stdout (a PIPE) line by line until `done(text so far)`; KemuError with
        `what` and the output when it ends first."""
        assert self.proc is not None and self.proc.stdout is not None
        text = ""
        while not done(text):
            line = self.proc.stdout.readline()
            if not line:
                raise KemuError(f"{what}: {text.strip()[-300:] or self.failure()}")
            text += line if isinstance(line, str) else line.decode(errors="replace")
        return text

    def drain(self) -> None:
        """Keep reading its stdout in the background: a full pipe would stall it."""
        assert self.proc is not None and self.proc.stdout is not None
        threading.Thread(target=self.proc.stdout.read, daemon=True).start()

    def communicate(self, timeout: float | None = None) -> Result:
        """Wait for it to end and collect its piped output; TimedOut (killed) after
        `timeout`."""
        assert self.proc is not None
        try:
            out, err = self.proc.communicate(timeout=timeout)
        except subprocess.TimeoutExpired:
            self.stop(grace=0)
            raise TimedOut(self.argv, timeout or 0, self.where.label) from None
        self._forget()
        return Result(self.proc.returncode, _text(out), _text(err))

    def signal(self, sig: int) -> None:
        """Send `sig` to its process group (if it still runs)."""
        if self.running() and self.proc is not None:
            try:
                os.killpg(self.proc.pid, sig)
            except ProcessLookupError:
                pass

    def wait(self, timeout: float | None = None) -> int:
        assert self.proc is not None
        code = self.proc.wait(timeout)
        self._forget()
        return code

    def ended_within(self, seconds: float) -> bool:
        """Wait up to `seconds` for it to end; whether it has (reaped if so)."""
        if self.proc is None:
            return True
        try:
            self.proc.wait(timeout=seconds)
        except subprocess.TimeoutExpired:
            return False
        self._forget()
        return True

    def stop(self, grace: float = 1.0) -> None:
        """SIGTERM to its group, up to `grace` seconds to end, then SIGKILL (at once with
        grace 0); reaped and forgotten by the run's records. Harmless when already gone."""
        stop_all([self], grace)

    def _forget(self) -> None:
        if self.state is not None and self.proc is not None:
            self.state.forget_process(self.proc.pid)


def stop_all(processes: Sequence[Process], grace: float = 1.0) -> None:
    """Stop many at once: SIGTERM to all, `grace` seconds for all of them together, then
    SIGKILL to what is left (a node's containers go down together, as a VM's do)."""
    started = [p for p in processes if p.proc is not None]
    for p in started:
        assert p.proc is not None
        if p.proc.stdin:
            try:
                p.proc.stdin.close()
            except OSError:
                pass
        p.signal(signal.SIGTERM if grace else signal.SIGKILL)
    deadline = time.monotonic() + grace
    for p in started:
        assert p.proc is not None
        try:
            p.proc.wait(timeout=max(0.0, deadline - time.monotonic()))
        except subprocess.TimeoutExpired:
            p.signal(signal.SIGKILL)
            p.proc.wait()
        p._forget()


class Daemon(Process):
    """A long-running process of a backend inside a node (BIRD, flannel's UDP proxy), logging
    to a file in the run directory."""

    def __init__(self, node: Any, name: str, argv: list[str], state: RunState, log: Path):
        super().__init__(node.netns, argv, f"{name} on {node.name}", state, log)
        self.node, self.name = node, name

    def start(self, stdin: int | None = DEVNULL, stdout: int | IO[Any] | None = None,
              stderr: int | None = None, text: bool = False) -> Daemon:
        super().start(stdin, stdout, stderr, text)
        return self

    def ready(self, line: str = "ready") -> None:
        """Wait for the daemon to say `line` on its stdout (started with stdout=PIPE)."""
        assert self.proc is not None and self.proc.stdout is not None
        said = self.proc.stdout.readline()
        if _text(said).strip() != line:
            raise KemuError(self.failure())


class ProcessGroup:
    """The processes of the measurements in flight (clients, and servers in target pods), so
    that a run ending early — a failure, Ctrl-C — stops them before its teardown: a server
    left in a pod whose namespace is deleted would wait for a client forever."""

    def __init__(self) -> None:
        self._procs: set[Process] = set()
        self._lock = threading.Lock()
        self._stopped = False

    def start(self, where: Netns, argv: Sequence[str], what: str, **start: Any) -> Process:
        """Start a process of the group (Process.start's keywords; text by default)."""
        with self._lock:
            if self._stopped:
                raise KemuError("the run is stopping")
            proc = Process(where, argv, what).start(**{"text": True, **start})
            self._procs.add(proc)
        return proc

    def run(self, where: Netns, argv: Sequence[str], timeout: float) -> Result:
        """Run to the end, output captured; TimedOut (killed) after `timeout` — and stopped
        at once, like the rest, by stop()."""
        proc = self.start(where, argv, argv[0], stdout=PIPE, stderr=PIPE)
        try:
            return proc.communicate(timeout)
        finally:
            self.end(proc)

    def end(self, proc: Process) -> None:
        """Kill (if still running) and reap one process."""
        proc.stop(grace=0)
        with self._lock:
            self._procs.discard(proc)

    def stop(self) -> None:
        """Kill every process in flight, and refuse new ones."""
        with self._lock:
            self._stopped = True
            procs = list(self._procs)
        for proc in procs:
            proc.signal(signal.SIGKILL)


def spawn(argv: Sequence[str], what: str, pass_fds: Sequence[int] = ()) -> Process:
    """A process of kemu's own in kemu's namespace, detached from it (a lab's owner): no
    stdio, a session of its own."""
    return Process(HOST, argv, what, pass_fds=pass_fds).start(stdout=DEVNULL,
                                                               stderr=DEVNULL)


def _text(data: Any) -> str:
    if data is None:
        return ""
    return data if isinstance(data, str) else data.decode(errors="replace")
