"""A lab's owner and its life: `kemu up` starts the owner, detached (a session of its own,
stdio to <run dir>/owner.log); it builds the cluster (cluster.running), writes the lab file,
answers refresh requests and events (control.py) until SIGTERM, then tears down. The lab file
is recorded in the run's state like anything else the run creates: `kemu down` or
`kemu clean` remove it with the rest, even after the owner was SIGKILLed.
"""

from __future__ import annotations

import json
import os
import select
import signal
import socket
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from kemu.clock import patience
from kemu.errors import KemuError
from kemu.files import write_atomic
from kemu.kernel import records as run_state
from kemu.kernel.processes import spawn
from kemu.kernel.records import RunState, kill_recorded, process_running
from kemu.lab.control import SOCKET, LabEvents, inline_files, serve_one
from kemu.lab.view import (
    REFRESH,
    LabError,
    LabView,
    check_name,
    lab_path,
    lab_record,
    read_lab,
)

DOWN_TIMEOUT_S = 60.0  # how long `kemu down` waits for the owner's teardown before SIGKILL

Log = Callable[[str], None]


# -- up: the foreground half -----------------------------------------------------------------

def up(scenario_file: Path, name: str, log: Log) -> LabView:
    """Start the owner and follow its build; return once the lab is up. When the build
    fails the owner tears down what it built before this raises; if the owner itself dies,
    its run's records are left for `kemu clean`."""
    check_name(name)
    read_end, write_end = os.pipe()
    try:
        owner = spawn([sys.executable, "-m", "kemu.lab.owner", str(scenario_file.resolve()),
                       name, str(write_end)], f"the owner of lab {name}", pass_fds=(write_end,))
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
            os.kill(owner.pid, signal.SIGTERM)
            owner.wait()
            raise
    code = owner.wait()
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
    from kemu.cluster.lifecycle import running
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
    code = 0
    try:
        with running(scenario, log, state) as cluster:  # always torn down, lab file too
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
                        write_atomic(path, json.dumps(lab_record(cluster, name,
                                                                 scenario_file), indent=1))
    except _Stop:
        log("stopping")
    except Exception as e:  # noqa: BLE001 — reported to `kemu up`; torn down already
        message = str(e) if isinstance(e, KemuError) else f"unexpected {type(e).__name__}: {e}"
        log(f"error: {message}")
        tell(error=message)
        code = 1
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
    from kemu.lab.owner import serve as _serve

    sys.exit(_serve(sys.argv[1], sys.argv[2], int(sys.argv[3])))
