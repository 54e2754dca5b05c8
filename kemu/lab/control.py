"""Events in a running lab: `kemu shell`'s `node-down node2`, `scale web 3`, … reach the lab's
owner over its control socket (/run/kemu/<run>/control.sock) and change the live cluster, as
a scenario's `events:` change a run.

Each event is checked the way a scenario's are — appended to the events the lab has had so
far and the whole list parsed with the scenario (so `node-up node2` is refused unless node2
is down) — then applied, and the lab file rewritten. The owner keeps the scenario as it read it
at start, with its manifest files inlined, so events work after those files are gone.
"""

from __future__ import annotations

import json
import socket
from pathlib import Path
from typing import TYPE_CHECKING, Any

import yaml

from kemu.errors import KemuError, ScenarioError
from kemu.kernel.records import RUN_ROOT

if TYPE_CHECKING:
    from kemu.cluster.cluster import Cluster

SOCKET = "control.sock"


def control_path(run_id: str) -> Path:
    return RUN_ROOT / run_id / SOCKET


def inline_files(doc: dict[str, Any], base: Path) -> dict[str, Any]:
    """The scenario with each `{file: …}` workload replaced by the documents in that file."""
    workloads: list[Any] = []
    for entry in doc.get("workloads") or []:
        if isinstance(entry, dict) and set(entry) == {"file"}:
            text = (base / entry["file"]).read_text()
            workloads += [d for d in yaml.safe_load_all(text) if d is not None]
        else:
            workloads.append(entry)
    return {**doc, "workloads": workloads}


class LabEvents:
    """The owner's side: the events so far, and how to take one more."""

    def __init__(self, cluster: Cluster, doc: dict[str, Any], file: str):
        self.cluster, self.doc, self.file = cluster, doc, file
        self.history: list[dict[str, Any]] = []

    def take(self, event: Any) -> dict[str, Any]:
        """Check and apply one event; the reply: {"ok": what happened, …} or {"error": …}."""
        from kemu.experiment.timeline import apply_event
        from kemu.scenario import parse_scenario

        if not isinstance(event, dict) or "action" not in event:
            return {"error": "an event is a mapping with an `action`"}
        at = float(len(self.history))  # their order is all that matters here
        candidate = [*self.history, {**event, "at": at}]
        try:
            spec = parse_scenario({**self.doc, "measurements": [], "events": candidate},
                                  self.file)
        except ScenarioError as e:
            here = f"events[{len(self.history)}]"
            mine = [p for p in e.problems if p.where.startswith(here)]
            return {"error": "; ".join(
                f"{p.where.removeprefix(here).lstrip('.') or 'event'}: {p.what}" if mine
                else str(p) for p in mine or e.problems)}
        applied = next(e for e in spec.events if e.at == at)
        try:
            done = apply_event(self.cluster, applied)
        except Exception as e:  # noqa: BLE001 — told to the shell; the lab stays up
            detail = str(e) if isinstance(e, KemuError) else f"{type(e).__name__}: {e}"
            return {"error": f"{applied}: {detail}"}
        self.history.append(candidate[-1])
        return {"ok": str(applied), **done}


def serve_one(listener: socket.socket, events: LabEvents) -> None:
    """Answer one client: a JSON line in ({"event": {...}}), a JSON line out."""
    conn, _ = listener.accept()
    conn.settimeout(5)  # a client that says nothing does not hold the lab up
    try:
        with conn, conn.makefile("rw") as stream:
            try:
                request = json.loads(stream.readline() or "{}")
                reply = events.take(request.get("event") if isinstance(request, dict)
                                    else None)
            except ValueError as e:
                reply = {"error": f"bad request: {e}"}
            stream.write(json.dumps(reply) + "\n")
            stream.flush()
    except OSError:
        pass  # the client went away: nothing to tell it


def send_event(run_id: str, event: dict[str, Any], timeout: float = 120.0) -> dict[str, Any]:
    """The shell's side: hand one event to the lab's owner and return its reply."""
    path = control_path(run_id)
    try:
        with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as conn:
            conn.settimeout(timeout)
            conn.connect(str(path))
            with conn.makefile("rw") as stream:
                stream.write(json.dumps({"event": event}) + "\n")
                stream.flush()
                reply: dict[str, Any] = json.loads(stream.readline() or "{}")
    except (OSError, ValueError) as e:
        return {"error": f"the lab's owner did not answer ({path}): {e}"}
    return reply or {"error": "the lab's owner closed the connection"}
