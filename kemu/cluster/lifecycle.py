"""The one lifecycle of a cluster: `running(scenario)` builds it, yields it, and always tears it
down — after an error, on Ctrl-C — with signals held off during the teardown. `kemu run`, a
lab's owner, the benchmark and the integration tests all go through it."""

from __future__ import annotations

import signal
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager

from kemu.cluster.cluster import Cluster
from kemu.errors import KemuError
from kemu.kernel.records import RunState
from kemu.scenario.model import Scenario

Log = Callable[[str], None]


class TeardownError(KemuError):
    """Teardown went on past these failures; the run's records removed the rest."""


@contextmanager
def running(scenario: Scenario, log: Log = lambda message: None,
            state: RunState | None = None) -> Iterator[Cluster]:
    """Build the scenario's cluster, yield it, and always tear it down. Teardown errors are
    logged; when nothing else failed they raise TeardownError. `state`: the run's records, if
    the caller made them already (a lab's owner logs into the run directory)."""
    state = state or RunState.create(scenario.name)
    cluster: Cluster | None = None
    failed = False
    try:
        log(f"run {state.run_id}: building {scenario.name}")
        cluster = Cluster(scenario, state, log)
        cluster.start()
        yield cluster
    except BaseException:
        failed = True
        raise
    finally:
        errors = tear_down(cluster, state, log)
        if errors and not failed:
            raise TeardownError("teardown: " + "; ".join(errors))


def tear_down(cluster: Cluster | None, state: RunState, log: Log) -> list[str]:
    """Whatever was built goes, with signals held off; the run's records take the rest.
    Returns the errors met on the way (each also logged)."""
    with signals_held():
        log("tearing down")
        errors: list[str] = []
        try:
            errors = cluster.stop() if cluster else []
            for error in errors:
                log(f"teardown: {error}")
        finally:
            state.remove()  # whatever stop() managed (the records list what it created)
        return errors


@contextmanager
def signals_held() -> Iterator[None]:
    """No SIGINT or SIGTERM may cut a teardown short (only the main thread has handlers)."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    previous = {s: signal.signal(s, signal.SIG_IGN) for s in (signal.SIGINT, signal.SIGTERM)}
    try:
        yield
    finally:
        for s, h in previous.items():
            signal.signal(s, h)
