"""Labs: a scenario's cluster left running (as containerlab deploys a lab), used with
`kemu exec`, `shell` and `status`, removed with `kemu down`.

`kemu up` starts an owner process, detached (a session of its own, stdio to
<run dir>/owner.log): it builds the cluster, writes the lab file /run/kemu/labs/<name>.json and
waits for SIGTERM, then tears down. The lab file holds everything the other commands need — run
id, owner, nodes, pods, services and how to enter each namespace — so they work without the
scenario file. It is recorded in the run's state like anything else the run creates: `kemu down`
or `kemu clean` remove it with the rest, even after the owner was SIGKILLed.
"""

from __future__ import annotations

import json
import os
import re
import select
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from kemu import state as run_state
from kemu.clock import patience
from kemu.errors import KemuError
from kemu.files import write_atomic
from kemu.lab_control import SOCKET, LabEvents, inline_files, serve_one
from kemu.state import RunState, kill_recorded, process_running, process_start_time

if TYPE_CHECKING:  # importing the cluster pulls in Mininet: only where it is needed
    from kemu.cluster import Cluster

NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,62}$")
DOWN_TIMEOUT_S = 60.0  # how long `kemu down` waits for the owner's teardown before SIGKILL

Log = Callable[[str], None]


class LabError(KemuError):
    """No such lab, a name already taken, a lab that is not there any more."""


class UnknownTarget(KemuError):
    """A pod or node name that the lab does not have (the message lists those it has)."""


def labs_dir() -> Path:
    return run_state.RUN_ROOT / "labs"


REFRESH = signal.SIGUSR1  # asks a lab's owner to rewrite its lab file from the live cluster


def lab_path(name: str) -> Path:
    return labs_dir() / f"{name}.json"


# -- what a lab looks like from outside its owner --------------------------------------------

@dataclass(frozen=True)
class Target:
    """A place to run commands in: a pod's, a node's or an external host's namespace."""

    kind: str  # pod | node | external
    name: str  # namespace/name for pods
    ip: str
    prefix: tuple[str, ...]  # argv prefix that runs a command there
    node: str = ""  # the node a pod runs on
    pid: int = 0  # nodes and hosts: the process holding the namespace (checked before use)
    start: int | None = None

    @property
    def short(self) -> str:
        return self.name.split("/", 1)[-1]

    def argv(self, command: list[str]) -> list[str]:
        """The full argv; refuses a node whose namespace holder is gone (its pid could now be
        another process, in another namespace)."""
        if self.pid and not process_running(self.pid, self.start):
            raise LabError(f"{self.kind} {self.name} is gone (its namespace's process "
                           f"{self.pid} exited)")
        return [*self.prefix, *command]


class LabView:
    """A lab's nodes, pods and services and how to reach them: read from a lab file, or
    taken from a live Cluster (`kemu run --cli`) — the same record either way."""

    def __init__(self, record: dict[str, Any]):
        self.record = record
        self.name: str = record["name"]
        self.run_id: str = record["run_id"]
        self.scenario: str = record.get("scenario", "")
        cluster = record.get("cluster", {})
        self.nodes: list[dict[str, Any]] = cluster.get("nodes", [])
        self.pods: list[dict[str, Any]] = cluster.get("pods", [])
        self.services: list[dict[str, Any]] = cluster.get("services", [])
        where = record.get("targets", {})
        self.targets: list[Target] = []
        for pod in self.pods:
            key = f"{pod['namespace']}/{pod['name']}"
            self.targets.append(Target("pod", key, pod["ip"],
                                       tuple(where.get("pods", {}).get(key, {}).get("prefix", ())),
                                       node=pod["node"]))
        for node in self.nodes:
            self._add_holder("node", node["name"], node.get("underlay_ip", ""),
                             where.get("nodes", {}))
        for name, ip in cluster.get("external_hosts", {}).items():
            self._add_holder("external", name, ip, where.get("external", {}))

    def _add_holder(self, kind: str, name: str, ip: str, where: dict[str, Any]) -> None:
        entry = where.get(name, {})
        self.targets.append(Target(kind, name, ip, tuple(entry.get("prefix", ())),
                                   pid=entry.get("pid", 0), start=entry.get("start")))

    @classmethod
    def from_cluster(cls, cluster: Cluster, name: str = "") -> LabView:
        return cls(lab_record(cluster, name or cluster.scenario.name))

    @property
    def created(self) -> float:
        return float(self.record.get("created", 0))

    def alive(self) -> bool:
        """Is the owner still running (the same process, not one that reused its pid)?"""
        pid, start = self.record.get("owner_pid"), self.record.get("owner_start")
        return isinstance(pid, int) and start is not None and process_running(pid, start)

    def resolve(self, name: str) -> Target:
        """A pod (`web-0`, or `ns/web-0`; a bare name means the default namespace first, then
        any namespace where it is unique), a node or an external host, by name."""
        exact = [t for t in self.targets if t.name == name]
        if exact:
            return exact[0]
        pods = [t for t in self.targets if t.kind == "pod" and t.short == name]
        if len(pods) > 1:
            default = [t for t in pods if t.name == f"default/{name}"]
            if default:
                return default[0]
            raise UnknownTarget(f"{name!r} is ambiguous: "
                                f"{', '.join(t.name for t in pods)}")
        if pods:
            return pods[0]
        raise UnknownTarget(f"no pod or node named {name!r} in lab {self.name} "
                            f"({self.known()})")

    def known(self) -> str:
        """The lab's targets, for error messages."""
        parts = []
        for kind, label in (("pod", "pods"), ("node", "nodes"), ("external", "external hosts")):
            names = [self._label(t) for t in self.targets if t.kind == kind]
            if names:
                parts.append(f"{label}: {', '.join(names)}")
        return "; ".join(parts) or "it has no pods or nodes"

    def _label(self, target: Target) -> str:
        """A pod by its short name where that is enough."""
        if target.kind == "pod" and target.name.startswith("default/"):
            return target.short
        return target.name

    def ip_of(self, name: str) -> str | None:
        """The IP of the pod, node or host called `name`, if there is exactly one."""
        try:
            return self.resolve(name).ip or None
        except UnknownTarget:
            return None


def lab_record(cluster: Cluster, name: str, scenario_file: str = "") -> dict[str, Any]:
    """What the lab file holds: the cluster as described in results, plus who owns it and the
    argv prefix for entering each namespace."""
    state = cluster.state
    targets: dict[str, dict[str, Any]] = {"pods": {}, "nodes": {}, "external": {}}
    for key, pod in cluster.pods.items():
        targets["pods"][key] = {"netns": pod.netns, "prefix": cluster.exec_prefix(pod)}
    for group, hosts in (("nodes", cluster.nodes), ("external", cluster.externals)):
        for host_name, host in hosts.items():
            targets[group][host_name] = {"pid": host.pid, "start": process_start_time(host.pid),
                                         "netns": host.netns_path,
                                         "prefix": cluster.exec_prefix(host)}
    return {"name": name, "run_id": state.run_id, "scenario": cluster.scenario.name,
            "scenario_file": scenario_file, "run_dir": str(state.dir),
            "owner_pid": state.data.get("owner_pid"), "owner_start": state.data.get("owner_start"),
            "created": time.time(), "cluster": cluster.describe(), "targets": targets}


# -- finding labs ----------------------------------------------------------------------------

def read_lab(path: Path) -> LabView:
    try:
        return LabView(json.loads(path.read_text()))
    except (OSError, ValueError, KeyError, TypeError) as e:
        raise LabError(f"{path}: cannot read lab file: {e}") from None


def refreshed(lab: LabView, timeout: float = 5.0) -> LabView:
    """The lab as it is now (readiness, endpoints): its owner rewrites the lab file on
    REFRESH. A lab whose owner is gone, or does not answer in time, stays as it was."""
    path = lab_path(lab.name)
    pid = lab.record.get("owner_pid")
    if not lab.alive() or not isinstance(pid, int) or not path.exists():
        return lab
    before = path.stat().st_mtime_ns
    os.kill(pid, REFRESH)
    deadline = time.monotonic() + patience(timeout)
    while time.monotonic() < deadline:
        try:
            if path.stat().st_mtime_ns != before:
                return read_lab(path)
        except OSError:
            return lab  # the lab went down meanwhile
        time.sleep(0.05)
    return lab


def labs() -> list[LabView]:
    """Every lab with a lab file (a lab whose owner died is listed too, until `kemu down`)."""
    directory = labs_dir()
    found = []
    for path in sorted(directory.glob("*.json")) if directory.is_dir() else []:
        try:
            found.append(read_lab(path))
        except LabError:
            continue  # torn or foreign: not a lab
    return found


def find_lab(name: str | None) -> LabView:
    """The lab called `name`, or the only one when no name is given."""
    all_labs = labs()
    if name:
        for lab in all_labs:
            if lab.name == name:
                return lab
        raise LabError(f"no lab named {name!r}" + (
            f" (labs: {', '.join(lab.name for lab in all_labs)})" if all_labs
            else " (no lab is running; `kemu up SCENARIO` starts one)"))
    if not all_labs:
        raise LabError("no lab is running (`kemu up SCENARIO` starts one)")
    if len(all_labs) > 1:
        raise LabError(f"{len(all_labs)} labs are running: name one "
                       f"({', '.join(lab.name for lab in all_labs)})")
    return all_labs[0]


def check_name(name: str) -> None:
    if not NAME.match(name):
        raise LabError(f"lab name {name!r}: use letters, digits, '.', '_' and '-' "
                       f"(at most 63, starting with a letter or digit)")
    path = lab_path(name)
    if path.exists():
        lab = read_lab(path)
        if lab.alive():
            raise LabError(f"a lab named {name!r} is already running (run {lab.run_id}); "
                           f"`kemu down {name}` first, or `kemu up --name OTHER`")
        raise LabError(f"lab {name!r} is left from an owner that died; `kemu down {name}` "
                       f"removes it")


# -- up: the foreground half -----------------------------------------------------------------

def up(scenario_file: Path, name: str, log: Log) -> LabView:
    """Start the owner and follow its build; return once the lab is up. When the build
    fails the owner tears down what it built before this raises; if the owner itself dies,
    its run's records are left for `kemu clean`."""
    check_name(name)
    read_end, write_end = os.pipe()
    try:
        proc = subprocess.Popen(
            [sys.executable, "-m", "kemu.lab", str(scenario_file.resolve()), name,
             str(write_end)],
            stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
            start_new_session=True, pass_fds=(write_end,))
    finally:
        os.close(write_end)
    error = ""
    with os.fdopen(read_end) as reports:
        try:
            for line in reports:
                try:
                    message = json.loads(line)
                except ValueError:
                    continue
                if "log" in message:
                    log(message["log"])
                elif "error" in message:
                    error = message["error"]
                elif "ready" in message:
                    return read_lab(Path(message["ready"]))
        except KeyboardInterrupt:  # Ctrl-C on `kemu up`: the owner tears down what it built
            proc.terminate()
            proc.wait()
            raise
    code = proc.wait()
    raise LabError(error or f"the lab's owner exited (code {code}) before the cluster was up; "
                   f"`kemu clean` removes whatever it left")


# -- up: the owner ---------------------------------------------------------------------------

class _Stop(BaseException):
    """SIGTERM (or SIGINT) reached the owner: tear down."""


def _stop(signum: int, frame: Any) -> None:
    raise _Stop


def serve(scenario_file: str, name: str, report_fd: int) -> int:
    """The owner: build, publish the lab file, wait for SIGTERM, tear down. Progress and the
    outcome go to `report_fd` (read by `kemu up`) until the lab is up, and to the log."""
    from kemu.cluster import Cluster
    from kemu.experiment import tear_down
    from kemu.scenario import load_runs, read_document

    reports: Any = os.fdopen(report_fd, "w", buffering=1)

    def tell(**message: Any) -> None:
        if reports is not None:
            try:
                reports.write(json.dumps(message) + "\n")
            except OSError:
                pass  # `kemu up` was interrupted: the log still has it

    def log(message: str) -> None:
        print(f"{time.strftime('%H:%M:%S')} {message}", flush=True)
        tell(log=message)

    signal.signal(signal.SIGTERM, _stop)
    signal.signal(signal.SIGINT, _stop)
    signal.signal(signal.SIGHUP, signal.SIG_IGN)
    # Taken only by sigtimedwait below (threads started later inherit the mask): a request
    # for a fresh lab file never kills an owner that is still building.
    signal.pthread_sigmask(signal.SIG_BLOCK, {REFRESH})
    try:
        runs = load_runs(scenario_file)
        # As read now, manifests inlined: the lab's events are checked against it later,
        # when these files may be gone.
        doc = inline_files(read_document(Path(scenario_file)),
                           Path(scenario_file).resolve().parent)
    except (KemuError, OSError) as e:
        tell(error=str(e))
        return 2
    scenario = runs[0].scenario
    state = RunState.create(scenario.name)
    log_fd = os.open(state.dir / "owner.log", os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o644)
    os.dup2(log_fd, 1)
    os.dup2(log_fd, 2)
    os.close(log_fd)
    cluster: Cluster | None = None
    code = 0
    try:
        log(f"run {state.run_id}: building {scenario.name} as lab {name}")
        cluster = Cluster(scenario, state, log)
        cluster.start()
        check_name(name)  # a lab of that name may have come up meanwhile
        path = lab_path(name)
        state.record_path(str(path.parent))  # removed once no lab is left in it
        state.record_path(str(path))
        write_atomic(path, json.dumps(lab_record(cluster, name, scenario_file), indent=1))
        log(f"lab {name} is up (owner pid {os.getpid()}, log {state.dir / 'owner.log'})")
        tell(ready=str(path))
        reports.close()
        reports = None
        events = LabEvents(cluster, doc, scenario_file)
        with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as control:
            control.bind(str(state.dir / SOCKET))  # goes with the run's directory
            control.listen()
            while True:  # until SIGTERM: refresh requests, and events from the shell
                refresh = signal.sigtimedwait({REFRESH}, 0.2) is not None
                if select.select([control], [], [], 0)[0]:
                    serve_one(control, events)
                    refresh = True
                if refresh:
                    write_atomic(path, json.dumps(lab_record(cluster, name, scenario_file),
                                                  indent=1))
    except _Stop:
        log("stopping")
    except Exception as e:  # noqa: BLE001 — reported to `kemu up`, then torn down
        message = str(e) if isinstance(e, KemuError) else f"unexpected {type(e).__name__}: {e}"
        log(f"error: {message}")
        tell(error=message)
        code = 1
    finally:
        tear_down(cluster, state, log)  # the lab file too: it was recorded
    return code


# -- down ------------------------------------------------------------------------------------

def down(lab: LabView, log: Log = lambda message: None) -> list[str]:
    """Stop the lab's owner and wait for its teardown; if it is dead (or will not stop),
    remove what its run recorded. Needs nothing but the lab file and the run's records."""
    pid, start = lab.record.get("owner_pid"), lab.record.get("owner_start")
    if lab.alive() and isinstance(pid, int):
        log(f"stopping lab {lab.name} (owner pid {pid})")
        os.kill(pid, signal.SIGTERM)
        deadline = time.monotonic() + patience(DOWN_TIMEOUT_S)
        while process_running(pid, start) and time.monotonic() < deadline:
            time.sleep(0.05)
        if process_running(pid, start):
            log(f"the owner did not finish its teardown in {DOWN_TIMEOUT_S:.0f} s: killing it")
            kill_recorded(pid, start)
    removed = []
    run_dir = run_state.RUN_ROOT / lab.run_id
    if run_dir.is_dir():  # the owner died, or left something: its records take the rest
        try:
            removed = RunState.load(run_dir).remove()
        except (OSError, ValueError, KeyError) as e:
            raise LabError(f"cannot read the records of run {lab.run_id}: {e}") from None
    path = lab_path(lab.name)
    if path.exists() and read_lab(path).run_id == lab.run_id:
        path.unlink()  # a run directory lost some other way
        removed.append(f"path {path}")
    return removed


if __name__ == "__main__":  # the owner, started by up()
    from kemu.lab import serve as _serve

    sys.exit(_serve(sys.argv[1], sys.argv[2], int(sys.argv[3])))
