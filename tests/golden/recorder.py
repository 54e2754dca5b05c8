"""Records the commands kemu issues instead of running them, for the backend goldens: every
process kemu starts goes through subprocess.run or subprocess.Popen, so those two are replaced
by a recorder that answers as a successful command does (exit 0, no output; a daemon that says
"ready"). This is not a stand-in for the kernel in a data-plane test: the goldens only show
which commands a backend issues, in which order; the integration tests run them for real.

A line per command: `node1$ ip -batch -` (run inside node1, its stdin indented below),
`node1& bird -f …` (started in the background there), `node1&< add …` (written to such a
process's stdin), `host$ …` (run in kemu's own namespace); then the files a step wrote."""

from __future__ import annotations

import io
import itertools
import subprocess
import sys
from pathlib import Path
from typing import Any

FAKE_PIDS = itertools.count(4_000_000)  # beyond pid_max: never a real process


class Recorder:
    def __init__(self, run_dir: Path, names: dict[str, str]):
        self.run_dir = run_dir
        self.names = names  # netns path → node name
        self.lines: list[str] = []
        self.files: dict[Path, str] = {}

    def _place(self, argv: list[str]) -> tuple[str, list[str]]:
        if argv[:1] == ["nsenter"] and argv[1].startswith("--net=") and argv[2] == "--":
            return self.names.get(argv[1][len("--net="):], argv[1]), argv[3:]
        if argv[:3] == ["ip", "netns", "exec"]:
            return argv[3], argv[4:]
        return "host", argv

    def clean(self, text: str) -> str:
        return (text.replace(str(self.run_dir), "<run>")
                .replace(str(Path(sys.executable).parent), "<bin>"))

    def _record(self, mark: str, argv: list[str], stdin: Any = None) -> None:
        where, command = self._place([str(a) for a in argv])
        self.lines.append(self.clean(f"{where}{mark} {' '.join(command)}"))
        if isinstance(stdin, bytes):
            stdin = stdin.decode()
        if stdin:
            self.lines += [self.clean(f"    {line}") for line in stdin.splitlines()]

    def run(self, argv: list[str], *args: Any, **kwargs: Any) -> subprocess.CompletedProcess:
        self._record("$", argv, kwargs.get("input"))
        text = kwargs.get("text") or kwargs.get("universal_newlines")
        empty: Any = "" if text else b""
        return subprocess.CompletedProcess(argv, 0, empty, empty)

    def popen(self, argv: list[str], *args: Any, **kwargs: Any) -> _Process:
        self._record("&", argv)
        where, _ = self._place([str(a) for a in argv])
        return _Process(self, where)

    def files_written(self) -> None:
        """The files under the run directory that are new or changed since the last call."""
        for path in sorted(self.run_dir.rglob("*")):
            if path.is_file() and path.suffix not in (".jsonl", ".log"):
                text = path.read_text()
                if self.files.get(path) != text:
                    self.files[path] = text
                    self.lines.append(f"wrote <run>/{path.relative_to(self.run_dir)}:")
                    self.lines += [f"    {line}" for line in text.splitlines()]

    def text(self) -> str:
        return "\n".join(self.lines) + "\n"


class _Stdin(io.RawIOBase):
    def __init__(self, recorder: Recorder, where: str):
        self.recorder, self.where = recorder, where

    def writable(self) -> bool:
        return True

    def write(self, data: Any) -> int:
        text = data.decode() if isinstance(data, bytes | bytearray) else data
        self.recorder.lines += [f"{self.where}&< {line}" for line in text.splitlines()]
        return len(data)


class _Process:
    """A started process that is ready at once and runs until it is stopped."""

    def __init__(self, recorder: Recorder, where: str):
        self.pid = next(FAKE_PIDS)
        self.stdin = _Stdin(recorder, where)
        self.stdout = io.BytesIO(b"ready\n")
        self.stderr = io.BytesIO(b"")
        self.returncode: int | None = None

    def poll(self) -> int | None:
        return self.returncode

    def wait(self, timeout: float | None = None) -> int:
        self.returncode = 0
        return 0

    def kill(self) -> None:
        self.returncode = -9

    terminate = kill

    def send_signal(self, sig: int) -> None:
        self.returncode = -sig


def install(monkeypatch: Any, recorder: Recorder) -> None:
    monkeypatch.setattr(subprocess, "run", recorder.run)
    monkeypatch.setattr(subprocess, "Popen", recorder.popen)
