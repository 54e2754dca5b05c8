"""What a kemu run created, on disk, so that it can always be removed — and nothing else.

Each run owns /run/kemu/<run id>/ (a tmpfs: it does not outlive a reboot, nor do namespaces)
and records there, before or as it creates them, every named network namespace and every
process it starts (pid plus the kernel's start time, so a recycled pid is never killed).
`kemu clean` works from these records alone, even when the scenario file is gone or the run
was killed with SIGKILL. Devices live inside the namespaces, so they go with them.
"""

from __future__ import annotations

import json
import os
import secrets
import shutil
import signal
import threading
import time
from pathlib import Path
from typing import Any

from kemu.kernel.exec import HOST, run

RUN_ROOT = Path(os.environ.get("KEMU_RUN_ROOT", "/run/kemu"))
NETNS_PREFIX = "kemu-"


def process_start_time(pid: int) -> int | None:
    """The process's start time in clock ticks since boot (field 22 of /proc/PID/stat)."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    # The command name (field 2) may hold spaces and parentheses: split after its last ')'.
    return int(stat.rsplit(")", 1)[1].split()[19])


def process_running(pid: int, start: int | None) -> bool:
    """Is (pid, start) still that process, and not a zombie? A SIGKILLed owner stays a zombie
    until whoever adopted it reaps it, and a zombie holds nothing."""
    if start is None or process_start_time(pid) != start:
        return False
    try:
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0] != "Z"
    except OSError:
        return False


class RunState:
    """One run's record: `state.json` (who and when) and `journal.jsonl`, one line appended
    per thing created or removed — cheap enough to record a thousand pods, and safe to read
    after a crash at any point (a torn last line is ignored)."""

    KINDS = ("netns", "processes", "paths", "ovs_bridges")

    def __init__(self, run_id: str, run_dir: Path, data: dict[str, Any]):
        self.run_id, self.dir, self.data = run_id, run_dir, data
        self._lock = threading.Lock()

    @classmethod
    def create(cls, scenario: str) -> RunState:
        run_id = secrets.token_hex(3)
        run_dir = RUN_ROOT / run_id
        run_dir.mkdir(parents=True, mode=0o755)
        header = {"run_id": run_id, "scenario": scenario, "owner_pid": os.getpid(),
                  "owner_start": process_start_time(os.getpid()), "created": time.time()}
        (run_dir / "state.json").write_text(json.dumps(header, indent=1))
        return cls(run_id, run_dir, {**header, **{kind: [] for kind in cls.KINDS}})

    @classmethod
    def load(cls, run_dir: Path) -> RunState:
        data = json.loads((run_dir / "state.json").read_text())
        data.update({kind: [] for kind in cls.KINDS})
        journal = run_dir / "journal.jsonl"
        lines = journal.read_text().splitlines() if journal.exists() else []
        for line in lines:
            try:
                entry = json.loads(line)
            except ValueError:
                continue  # torn by a crash mid-write
            _apply(data, entry["op"], entry["kind"], entry["value"])
        return cls(data["run_id"], run_dir, data)

    def _record(self, op: str, kind: str, value: Any) -> None:
        with self._lock:
            _apply(self.data, op, kind, value)
            with open(self.dir / "journal.jsonl", "a") as journal:
                journal.write(json.dumps({"op": op, "kind": kind, "value": value}) + "\n")

    def netns_name(self, *parts: str) -> str:
        """A namespace name this run owns: kemu-<run id>-<parts…>."""
        return "-".join((NETNS_PREFIX + self.run_id, *parts))

    def record_netns(self, name: str) -> None:
        self._record("add", "netns", name)

    def forget_netns(self, name: str) -> None:
        self._record("del", "netns", name)

    def record_path(self, path: str) -> None:
        """A file or directory kemu is about to create outside its run directory (e.g.
        /etc/netns/X/resolv.conf). Removal takes files, and directories once empty."""
        if path not in self.data["paths"]:
            self._record("add", "paths", path)

    def forget_path(self, path: str) -> None:
        self._record("del", "paths", path)

    def record_ovs_bridge(self, name: str) -> None:
        """An Open vSwitch bridge this run is about to create (named after the run)."""
        self._record("add", "ovs_bridges", name)

    def record_process(self, pid: int, what: str) -> None:
        self._record("add", "processes", {"pid": pid, "start": process_start_time(pid),
                                          "what": what})

    def forget_process(self, pid: int) -> None:
        self._record("del", "processes", {"pid": pid})

    def owner_alive(self) -> bool:
        """Is the kemu process that made this run still running (the same process, not a
        later one that got its pid)?"""
        pid = self.data.get("owner_pid")
        if not isinstance(pid, int) or pid == os.getpid():
            return False
        return process_running(pid, self.data.get("owner_start"))

    def remove(self) -> list[str]:
        """Remove everything recorded: processes, namespaces, then the run directory.
        Returns what was removed, for the user."""
        removed = []
        for proc in reversed(self.data["processes"]):
            if kill_recorded(proc["pid"], proc["start"]):
                removed.append(f"process {proc['pid']} ({proc['what']})")
        for name in reversed(self.data["netns"]):
            if delete_netns(name):
                removed.append(f"netns {name}")
        for bridge in self.data.get("ovs_bridges", []) if shutil.which("ovs-vsctl") else []:
            if run(HOST, ["ovs-vsctl", "--timeout=5", "br-exists", bridge], check=False).ok:
                run(HOST, ["ovs-vsctl", "--timeout=5", "del-br", bridge], check=False)
                removed.append(f"OVS bridge {bridge}")
        for path in reversed(self.data.get("paths", [])):
            if remove_path(Path(path)):
                removed.append(f"path {path}")
        shutil.rmtree(self.dir, ignore_errors=True)
        removed.append(f"run directory {self.dir}")
        remove_path(RUN_ROOT)  # kemu's own, once no run is left in it
        return removed


def _apply(data: dict[str, Any], op: str, kind: str, value: Any) -> None:
    items = data[kind]
    if op == "add":
        items.append(value)
    elif kind == "processes":
        data[kind] = [p for p in items if p["pid"] != value["pid"]]
    elif value in items:
        items.remove(value)


def kill_recorded(pid: int, start: int | None, timeout: float = 2.0) -> bool:
    """SIGTERM, then SIGKILL, the process recorded as (pid, start) — only if it is still that
    same process."""
    if start is None or process_start_time(pid) != start:
        return False
    for sig in (signal.SIGTERM, signal.SIGKILL):
        try:
            os.kill(pid, sig)
        except ProcessLookupError:
            return True
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if process_start_time(pid) != start:
                return True
            _reap(pid)
            time.sleep(0.02)
    return process_start_time(pid) != start


def _reap(pid: int) -> None:
    try:
        os.waitpid(pid, os.WNOHANG)
    except ChildProcessError:
        pass


def remove_path(path: Path) -> bool:
    """Remove a recorded file, or a recorded directory if nothing else is in it."""
    try:
        if path.is_dir():
            path.rmdir()
        else:
            path.unlink()
        return True
    except OSError:
        return False


def delete_netns(name: str) -> bool:
    if not (Path("/run/netns") / name).exists():
        return False
    return run(HOST, ["ip", "netns", "delete", name], check=False).ok


def recorded_runs() -> list[RunState]:
    found = []
    if RUN_ROOT.is_dir():
        for run_dir in sorted(RUN_ROOT.iterdir()):
            try:
                found.append(RunState.load(run_dir))
            except (OSError, ValueError, KeyError):
                continue
    return found


def clean(include_live: bool = False) -> list[str]:
    """Remove what every recorded kemu run left behind. Runs whose kemu process is still alive
    are skipped unless `include_live`, so `kemu clean` never pulls a cluster from under a run."""
    removed = []
    for record in recorded_runs():
        if record.owner_alive() and not include_live:
            continue
        removed += record.remove()
    return removed
