"""The one way kemu runs a command: in a network namespace it names, checked.

A `Netns` says where: a node's or an external host's namespace (held by its Mininet shell,
entered with `nsenter --net=/proc/PID/ns/net`), a pod's (a named namespace under /run/netns,
entered with `ip netns exec`, which also lays the pod's /etc/netns files such as resolv.conf
over /etc, as the pod's containers see them), or kemu's own (`HOST`). `run` runs a command
there and raises `CommandError` — command, exit status, stderr and place — when it fails;
`call_in` runs a Python function there, in a thread that joins the namespace (kubelet's
probes open their sockets from the node that way, without a process).
"""

from __future__ import annotations

import ctypes
import os
import subprocess
import threading
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import TypeVar

from kemu.errors import CommandError, TimedOut

CLONE_NEWNET = 0x40000000
_libc = ctypes.CDLL(None, use_errno=True)
T = TypeVar("T")


@dataclass(frozen=True)
class Netns:
    """A network namespace to run commands in. `label` names it in errors ("node node1")."""

    label: str
    path: str = ""  # /proc/PID/ns/net or /run/netns/NAME; "" is kemu's own namespace
    name: str = ""  # a named namespace (a pod's): entered with `ip netns exec`

    @classmethod
    def of_process(cls, pid: int, label: str) -> Netns:
        return cls(label, f"/proc/{pid}/ns/net")

    @classmethod
    def named(cls, name: str, label: str) -> Netns:
        return cls(label, f"/run/netns/{name}", name)

    def prefix(self) -> list[str]:
        """The argv prefix that runs a command here (for programs that run it themselves)."""
        if self.name:
            return ["ip", "netns", "exec", self.name]
        if self.path:
            return ["nsenter", f"--net={self.path}", "--"]
        return []


HOST = Netns("host")


@dataclass(frozen=True)
class Result:
    returncode: int
    stdout: str
    stderr: str

    @property
    def ok(self) -> bool:
        return self.returncode == 0


def run(where: Netns, argv: Sequence[str], *, input: str | None = None,
        env: dict[str, str] | None = None, check: bool = True,
        timeout: float | None = None) -> Result:
    """Run `argv` in `where` and wait for it. With `check` (the default) a non-zero exit
    raises CommandError; without, the caller reads the Result. A command still running after
    `timeout` seconds is killed and raises TimedOut either way."""
    argv = [str(a) for a in argv]
    try:
        proc = subprocess.run([*where.prefix(), *argv], input=input, env=env,
                              capture_output=True, text=True, timeout=timeout)
    except subprocess.TimeoutExpired:
        raise TimedOut(argv, timeout or 0, where.label) from None
    except OSError as e:
        raise CommandError(argv, 127, e.strerror or str(e), where.label) from None
    if check and proc.returncode != 0:
        raise CommandError(argv, proc.returncode, proc.stderr or proc.stdout, where.label)
    return Result(proc.returncode, proc.stdout, proc.stderr)


def interactive(where: Netns, argv: Sequence[str]) -> int:
    """Run `argv` in `where` with kemu's own stdin, stdout and stderr (a shell command);
    returns its exit status."""
    try:
        return subprocess.run([*where.prefix(), *argv]).returncode
    except OSError as e:
        raise CommandError(list(argv), 127, e.strerror or str(e), where.label) from None


def call_in(where: Netns, fn: Callable[[], T]) -> T:
    """fn() inside `where`, from this process: a short-lived thread joins the namespace
    (setns changes only the calling thread) and runs it there."""
    if not where.path:
        return fn()
    result: list[T] = []
    error: list[BaseException] = []

    def target() -> None:
        try:
            fd = os.open(where.path, os.O_RDONLY)
            try:
                if _libc.setns(fd, CLONE_NEWNET) != 0:
                    raise OSError(ctypes.get_errno(), f"setns {where.path}")
            finally:
                os.close(fd)
            result.append(fn())
        except BaseException as e:  # handed to the caller's thread
            error.append(e)

    thread = threading.Thread(target=target, daemon=True)
    thread.start()
    thread.join()
    if error:
        raise error[0]
    return result[0]
