"""kemu's exceptions. The library raises; only the CLI turns them into exit codes."""

from __future__ import annotations

from dataclasses import dataclass


class KemuError(Exception):
    """Base of every error kemu reports to a user."""


@dataclass(frozen=True)
class Problem:
    """One thing wrong with an input: where (file and field path) and what."""

    where: str  # e.g. "measurements[1].to.pod"
    what: str
    file: str = ""

    def __str__(self) -> str:
        location = ": ".join(part for part in (self.file, self.where) if part)
        return f"{location}: {self.what}" if location else self.what


class ScenarioError(KemuError):
    """A scenario or manifest is invalid. Carries every problem found, not just the first."""

    def __init__(self, problems: list[Problem]):
        self.problems = problems
        super().__init__("\n".join(str(p) for p in problems))


class CommandError(KemuError):
    """A command that changes kernel state failed."""

    def __init__(self, cmd: list[str] | str, returncode: int, stderr: str, where: str = ""):
        self.cmd = cmd if isinstance(cmd, str) else " ".join(cmd)
        self.returncode = returncode
        self.stderr = stderr.strip()
        self.where = where
        place = f" in {where}" if where else ""
        super().__init__(f"command failed{place} (exit {returncode}): {self.cmd}\n{self.stderr}")


class TimedOut(CommandError):
    """A command did not finish in the time it was given (it has been killed)."""

    def __init__(self, cmd: list[str] | str, timeout: float, where: str = ""):
        self.timeout = timeout
        super().__init__(cmd, -1, f"timed out after {timeout:g} s", where)


class CapabilityError(KemuError):
    """The scenario needs something this machine lacks (a kernel module, a program)."""


class NotReadyError(KemuError):
    """The emulated cluster did not reach a working state in time."""
