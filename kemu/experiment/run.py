"""Running a scenario: check the machine, then for each run (each combination of its matrix,
or just the one): build a clean cluster, measure, always tear down.

Ctrl-C (SIGINT) and SIGTERM stop everything between or during measurements; what was measured
is already on disk (results.json is rewritten after every sample) and the teardown still runs,
with further signals held off until it is done. A run that fails is recorded as failed and the
next one still runs.
"""

from __future__ import annotations

import contextlib
import shutil
import signal
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

from kemu import registry
from kemu.cluster.cluster import Cluster
from kemu.cluster.lifecycle import running
from kemu.errors import CapabilityError, KemuError
from kemu.experiment.progress import Progress
from kemu.experiment.results import Results
from kemu.experiment.timeline import Timeline
from kemu.kernel import doctor, links
from kemu.scenario.model import LinkParams, Run, Scenario

Log = Callable[[str], None]


def preflight(scenario: Scenario, caps: list[doctor.Capability]) -> None:
    """Refuse, before anything is created, what this machine cannot do: each kind says what
    it requires (backends, measurement kinds), the rest is the scenario's own."""
    have = {c.name: c for c in caps}
    problems = [f"{c.name}: {c.detail} — {c.if_missing}" for c in caps if c.required and not c.ok]
    netem = have["sch_netem"].ok
    impaired = {"topology.link": scenario.topology.link, "topology.wan": scenario.topology.wan}
    impaired.update({f"event at {e.at:g} s ({e})": LinkParams(**e.link)
                     for e in scenario.events if e.link})  # events that set link parameters
    for where, link in impaired.items():
        if link is None or links.method(link, netem) != "delay-line":
            continue
        if not have["nfqueue"].ok:
            problems.append(f"{where}: delay/jitter/loss need sch_netem or, as a fallback, "
                            f"kemu's delay line: {have['nfqueue'].detail}")
        if where == "topology.wan" and not have["br_netfilter"].ok:  # the switches' queue
            problems.append(f"{where}: the delay line between switches needs br_netfilter: "
                            f"{have['br_netfilter'].detail}")
    kinds = registry.measurements()
    for m in scenario.measurements:
        for tool in kinds[m.type].requires:
            if not have[tool].ok:
                problems.append(f"measurement {m.name}: {tool} is not installed")
    plugin = scenario.cluster.cni_plugin
    for feature in registry.backends()[plugin].requires:
        if not have[feature].ok:
            problems.append(f"cluster.cni.plugin: {plugin} needs {feature}: "
                            f"{have[feature].detail}")
    if scenario.external and not have["ovs"].ok:
        problems.append(f"external: the edge switch needs Open vSwitch: {have['ovs'].detail}")
    if scenario.external and scenario.external.load_balancer.mode == "bgp" and \
            not have["bird"].ok:
        problems.append(f"external.loadBalancer: metallb-bgp's speakers and router need BIRD: "
                        f"{have['bird'].detail}")
    if scenario.ingresses and not (shutil.which("nginx") and shutil.which("openssl")):
        problems.append("Ingress objects need nginx and openssl (Debian nginx-light, openssl)")
    if problems:
        raise CapabilityError("this machine cannot run the scenario:\n  " + "\n  ".join(problems))


class Interrupted(KemuError):
    pass


class RunsFailed(KemuError):
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


def run_experiment(runs: list[Run], out_dir: Path, log: Log = lambda message: None,
                   after: Callable[[Cluster], None] | None = None,
                   progress: Progress | None = None) -> Results:
    """Run every run, writing out_dir/results.json. Raises Interrupted on Ctrl-C/SIGTERM and
    RunsFailed if any run failed — in both cases after tearing down and saving the results."""
    caps = doctor.check()
    for run in runs:
        preflight(run.scenario, caps)
    progress = progress or Progress()
    results = Results(out_dir, runs[0].scenario, doctor.as_dict(caps))
    failures = []
    progress.start(runs)
    try:
        with _signals_interrupt():
            for number, run in enumerate(runs, 1):
                if run.params:
                    log(f"run {number}/{len(runs)}: {run.label}")
                progress.run(number, run)
                try:
                    _run_one(run, results, log, out_dir / "rules" / f"run-{number}", after,
                             progress)
                except KemuError as e:
                    failures.append(f"{run.label or run.scenario.name}: {e}")
                progress.run_done(number, run)
    except KeyboardInterrupt:
        results.finish("interrupted")
        raise Interrupted("interrupted; results so far are in " + str(results.path)) from None
    finally:
        progress.stop()
    if failures:
        results.finish("failed", "\n".join(failures))
        raise RunsFailed("\n".join(failures))
    results.finish("completed")
    return results


def _run_one(run: Run, results: Results, log: Log, rules_dir: Path,
             after: Callable[[Cluster], None] | None = None,
             progress: Progress | None = None) -> None:
    scenario = run.scenario
    entry = results.begin_run(run.params)
    try:
        with running(scenario, log) as cluster:
            results.set_cluster(entry, cluster.describe())
            rules_dir.mkdir(parents=True, exist_ok=True)
            for name in cluster.nodes:  # kube-proxy's and the policies' rules, as a node has them
                (rules_dir / f"{name}.iptables").write_text(cluster.node_rules(name))
            Timeline(cluster, results, entry, log, progress).run()
            if after:  # e.g. `kemu run --cli`: the live cluster, after measuring, before teardown
                after(cluster)
            results.finish_run(entry, "completed")
    except KeyboardInterrupt:
        results.finish_run(entry, "interrupted")
        raise
    except Exception as e:
        results.finish_run(entry, "failed", str(e))
        if isinstance(e, KemuError):
            raise
        raise KemuError(f"unexpected {type(e).__name__}: {e}") from e
