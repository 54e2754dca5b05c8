"""One run of a scenario: check the machine, build the cluster, measure, always tear down.

Ctrl-C (SIGINT) and SIGTERM stop the run between or during measurements; what was measured is
already on disk (results.json is rewritten after every sample) and the teardown still runs, with
further signals held off until it is done.
"""

from __future__ import annotations

import contextlib
import signal
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

from kemu import doctor
from kemu.cluster import Cluster
from kemu.errors import CapabilityError, KemuError
from kemu.measurements import run_measurement
from kemu.results import Results
from kemu.scenario import Scenario
from kemu.state import RunState


def preflight(scenario: Scenario, caps: list[doctor.Capability]) -> None:
    """Refuse, before anything is created, what this machine cannot do."""
    have = {c.name: c for c in caps}
    problems = [f"{c.name}: {c.detail} — {c.if_missing}" for c in caps if c.required and not c.ok]
    if scenario.topology.link.delay_ms and not have["sch_netem"].ok:
        problems.append("topology.link.delay: this kernel has no sch_netem, which link delay "
                        "needs (kemu doctor); remove the delay or run on a kernel with netem")
    needs = {"ping": "ping", "iperf3": "iperf3"}
    for m in scenario.measurements:
        if not have[needs[m.type]].ok:
            problems.append(f"measurement {m.name}: {needs[m.type]} is not installed")
    if scenario.cluster.cni_plugin == "flannel-vxlan" and not have["vxlan"].ok:
        problems.append("cluster.cni.plugin: flannel-vxlan needs kernel VXLAN support")
    if problems:
        raise CapabilityError("this machine cannot run the scenario:\n  " + "\n  ".join(problems))


class Interrupted(KemuError):
    pass


@contextlib.contextmanager
def _signals_interrupt() -> Iterator[None]:
    """SIGTERM behaves like Ctrl-C for the duration."""
    def handler(signum: int, frame: Any) -> None:
        raise KeyboardInterrupt
    previous = signal.signal(signal.SIGTERM, handler)
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, previous)


@contextlib.contextmanager
def _signals_held() -> Iterator[None]:
    """No signal may cut a teardown short."""
    previous = {s: signal.signal(s, signal.SIG_IGN) for s in (signal.SIGINT, signal.SIGTERM)}
    try:
        yield
    finally:
        for s, h in previous.items():
            signal.signal(s, h)


def run_scenario(scenario: Scenario, out_dir: Path,
                 log: Callable[[str], None] = lambda message: None) -> Results:
    """Run `scenario`, writing out_dir/results.json. Raises Interrupted on Ctrl-C/SIGTERM and
    KemuError on failure — in both cases after tearing down and saving the results."""
    caps = doctor.check()
    preflight(scenario, caps)
    results = Results(out_dir, scenario, doctor.as_dict(caps))
    state = RunState.create(scenario.name)
    cluster: Cluster | None = None
    try:
        with _signals_interrupt():
            log(f"run {state.run_id}: building {scenario.name}")
            cluster = Cluster(scenario, state, log)
            cluster.start()
            results.set_cluster(cluster.describe())
            for spec in scenario.measurements:
                log(f"measuring {spec.name} ({spec.type}, {spec.source} → {spec.target})")
                entry = results.begin(spec)
                run_measurement(cluster, spec, lambda s, e=entry: results.add_sample(e, s))
        results.finish("completed")
        return results
    except KeyboardInterrupt:
        results.finish("interrupted")
        raise Interrupted("interrupted; results so far are in " + str(results.path)) from None
    except Exception as e:
        results.finish("failed", str(e))
        raise
    finally:
        with _signals_held():
            log("tearing down")
            errors = cluster.stop() if cluster else []
            state.remove()
            for error in errors:
                log(f"teardown: {error}")
