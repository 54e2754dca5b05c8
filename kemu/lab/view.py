"""Labs: a scenario's cluster left running (as containerlab deploys a lab), used with
`kemu exec`, `shell` and `status`, removed with `kemu down` (owner.py).

A lab is seen from outside its owner through its lab file, /run/kemu/labs/<name>.json: run
id, owner, nodes, pods, services and how to enter each namespace — all that the other
commands need, so they work without the scenario file. `LabView` reads it (or takes the same
record from a live cluster, for `kemu run --cli`).
"""

from __future__ import annotations

import json
import os
import re
import signal
import time
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from kemu.clock import patience
from kemu.errors import KemuError
from kemu.kernel import records as run_state
from kemu.kernel.records import process_running, process_start_time

if TYPE_CHECKING:  # importing the cluster pulls in Mininet: only where it is needed
    from kemu.cluster.cluster import Cluster

NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,62}$")


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
        self.endpointslices: list[dict[str, Any]] = cluster.get("endpointslices", [])
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
        targets["pods"][key] = {"netns": pod.sandbox, "prefix": pod.netns.prefix()}
    for group, hosts in (("nodes", cluster.nodes), ("external", cluster.externals)):
        for host_name, host in hosts.items():
            targets[group][host_name] = {"pid": host.pid, "start": process_start_time(host.pid),
                                         "netns": host.netns.path,
                                         "prefix": host.netns.prefix()}
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
