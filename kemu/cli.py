"""The `kemu` command. Thin: parses flags, calls the library, turns errors into exit codes
(0 ok, 1 failed, 2 invalid input, 130 interrupted)."""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path
from typing import Any

import click
from rich.console import Console

from kemu import __version__, registry
from kemu.errors import KemuError, ScenarioError
from kemu.kernel import doctor
from kemu.report import (
    benchmark_table,
    compare_table,
    doctor_table,
    endpointslices_table,
    nodes_table,
    plugins_table,
    pods_table,
    results_table,
    services_table,
)
from kemu.scenario import Run, load_runs

EXIT_FAILED, EXIT_INVALID, EXIT_INTERRUPTED = 1, 2, 130

# soft_wrap: messages stay one line each (greppable), whatever the terminal width.
console = Console(stderr=True, highlight=False, soft_wrap=True)
# Piped output (scripts, CI logs) gets room for a whole table row per line.
out = Console(highlight=False, width=None if sys.stdout.isatty() else 200)


def _load(path: str) -> list[Run]:
    try:
        runs = load_runs(path)
    except ScenarioError as e:
        console.print(f"[red]invalid scenario[/red] ({len(e.problems)} problem"
                      f"{'s' if len(e.problems) > 1 else ''}):")
        for problem in e.problems:
            console.print(f"  {problem}", markup=False)
        sys.exit(EXIT_INVALID)
    except KemuError as e:
        console.print(str(e), markup=False)
        sys.exit(EXIT_INVALID)
    for warning in dict.fromkeys(w for run in runs for w in run.scenario.warnings):
        console.print(f"[yellow]warning:[/yellow] {warning}", markup=True)
    return runs


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, prog_name="kemu")
def main() -> None:
    """kemu: a Kubernetes network emulator on Mininet."""


@main.command()
@click.argument("scenario", type=click.Path(dir_okay=False))
@click.option("--out", "out_dir", type=click.Path(file_okay=False), default=None,
              help="Results directory [default: results/<scenario name>].")
@click.option("--quiet", is_flag=True, help="No progress or log lines: only the results.")
@click.option("--json", "as_json", is_flag=True,
              help="Print the results as JSON (each run's parameters, status, events and "
                   "measurement summaries) instead of a table.")
@click.option("--cli", "shell", is_flag=True,
              help="After measuring, open a shell on the live cluster (kemu shell's).")
def run(scenario: str, out_dir: str | None, quiet: bool, as_json: bool, shell: bool) -> None:
    """Build the cluster of SCENARIO, run its measurements, tear it all down."""
    from kemu.experiment.progress import Progress, TerminalProgress
    from kemu.experiment.run import Interrupted, RunsFailed, run_experiment

    runs = _load(scenario)
    spec = runs[0].scenario
    target = Path(out_dir or f"results/{spec.name}")

    def log(message: str) -> None:
        if not quiet:
            console.print(f"[dim]kemu:[/dim] {message}", markup=True, highlight=False)

    # A progress bar only for a person at a terminal (and never around an interactive shell).
    live = console.is_terminal and not quiet and not shell and not os.environ.get("CI")
    progress = TerminalProgress(console) if live else Progress()
    failed = ""
    try:
        data = run_experiment(runs, target, log, _open_shell if shell else None,
                              progress).data
    except Interrupted as e:
        console.print(f"[yellow]{e}[/yellow]")
        sys.exit(EXIT_INTERRUPTED)
    except RunsFailed as e:
        failed = str(e)
        data = json.loads((target / "results.json").read_text())
    except KemuError as e:
        console.print(f"[red]error:[/red] {e}", markup=True)
        if (target / "results.json").exists():
            console.print(f"partial results: {target / 'results.json'}")
        sys.exit(EXIT_FAILED)
    if as_json:
        click.echo(json.dumps(results_summary(data, target), indent=1))
        _plot(data, target, console)
    else:
        out.print(results_table(data))
        out.print(f"results: {target / 'results.json'}")
        _plot(data, target, out)
    if failed:
        console.print(f"[red]failed:[/red] {failed}", markup=True)
        sys.exit(EXIT_FAILED)


def results_summary(data: dict[str, Any], directory: Path) -> dict[str, Any]:
    """What a script wants of a run: status, where the files are, per run its parameters,
    status, events and each measurement's summary (samples stay in results.json)."""
    return {
        "scenario": data["scenario"], "status": data["status"],
        "results": str(directory / "results.json"), "csv": str(directory / "results.csv"),
        "runs": [{"params": run["params"], "status": run["status"],
                  **({"error": run["error"]} if run.get("error") else {}),
                  "events": [{k: e[k] for k in ("at", "event", "status")}
                             for e in run.get("events", [])],
                  "measurements": [{k: m[k] for k in ("name", "type", "from", "to", "summary")}
                                   for m in run["measurements"]]}
                 for run in data["runs"]],
    }


def _plot(data: dict[str, Any], directory: Path, where: Console = out) -> None:
    """Draw the plots; a failure here costs the plots, never the results already on disk."""
    try:
        from kemu.experiment import plots

        written = plots.render(data, directory / "plots")
    except Exception as e:  # noqa: BLE001 — matplotlib's failures are many and not ours
        console.print(f"[yellow]warning:[/yellow] no plots ({type(e).__name__}: {e})",
                      markup=True)
        return
    if written:
        where.print(f"plots: {directory / 'plots'} ({len(written)})")


def _read_results(directory: str) -> dict[str, Any]:
    path = Path(directory) / "results.json"
    try:
        data: dict[str, Any] = json.loads(path.read_text())
    except (OSError, ValueError) as e:
        console.print(f"{path}: cannot read results: {e}")
        sys.exit(EXIT_INVALID)
    return data


@main.command()
@click.argument("results_dir", type=click.Path(file_okay=False, exists=True))
def report(results_dir: str) -> None:
    """Print the results table of a finished (or interrupted) run again, and redraw its
    plots."""
    data = _read_results(results_dir)
    out.print(results_table(data))
    out.print(f"status: {data['status']}, {data['started_at']} → {data.get('finished_at')}")
    _plot(data, Path(results_dir))


@main.command()
@click.argument("before", type=click.Path(file_okay=False, exists=True))
@click.argument("after", type=click.Path(file_okay=False, exists=True))
def compare(before: str, after: str) -> None:
    """Compare two results directories, measurement by measurement (AFTER relative to
    BEFORE)."""
    out.print(compare_table(_read_results(before), _read_results(after),
                            f"{before} → {after}"))


@main.command()
@click.argument("scenario", type=click.Path(dir_okay=False))
def validate(scenario: str) -> None:
    """Check SCENARIO (schema and meaning) without creating anything."""
    runs = _load(scenario)
    for run in runs:
        spec = run.scenario
        out.print(f"{scenario}: valid{' [' + run.label + ']' if run.params else ''} — "
                  f"{len(spec.cluster.nodes)} nodes, {len(spec.pods)} pods, "
                  f"{len(spec.measurements)} measurements, cni {spec.cluster.cni_plugin}",
                  soft_wrap=True, markup=False)


@main.command(name="doctor")
@click.option("--json", "as_json", is_flag=True, help="Machine-readable output.")
def doctor_command(as_json: bool) -> None:
    """What this machine can do, and what kemu does about what it cannot."""
    caps = doctor.check()
    if as_json:
        out.print_json(json.dumps(doctor.as_dict(caps)))
        return
    out.print(doctor_table(caps))
    if any(c.required and not c.ok for c in caps):
        sys.exit(EXIT_FAILED)


@main.command()
@click.option("--all", "include_live", is_flag=True,
              help="Also remove runs whose kemu process is still alive.")
def clean(include_live: bool) -> None:
    """Remove what kemu runs left behind (namespaces, processes, OVS bridges, files) — exactly
    what they recorded, nothing else."""
    from kemu.kernel.records import clean as clean_runs

    removed = clean_runs(include_live=include_live)
    for item in removed:
        out.print(f"removed {item}")
    if not removed:
        out.print("nothing to clean")


@main.command()
def plugins() -> None:
    """The installed CNI backends."""
    out.print(plugins_table(registry.backends()))


@main.command()
@click.option("--out", "out_dir", type=click.Path(file_okay=False), default="bench",
              show_default=True, help="Where results.json goes.")
@click.option("--quick", is_flag=True, help="Fewer repeats and a shorter ladder (a smoke run).")
@click.option("--full", is_flag=True, help="Add the 100 nodes × 1000 pods rung.")
def bench(out_dir: str, quick: bool, full: bool) -> None:
    """Measure kemu against the machine's limit and raw Mininet (see kemu/experiment/bench.py)."""
    from kemu.experiment import bench as benchmark

    results = benchmark.run_bench(Path(out_dir), lambda m: console.print(f"[dim]bench:[/dim] {m}",
                                                                   markup=True), quick, full)
    out.print(benchmark_table(results))
    out.print(f"results: {Path(out_dir) / 'results.json'}")


# -- labs: a cluster left running (kemu/lab/), used with exec, shell, status ----------------

def _open_shell(cluster: Any) -> None:
    """`kemu run --cli`: the shell on the live cluster, between measurements and teardown."""
    from kemu.lab.shell import run_shell
    from kemu.lab.view import LabView

    run_shell(LabView.from_cluster(cluster), refresh=lambda: LabView.from_cluster(cluster))


def _find_lab(name: str | None) -> Any:
    from kemu.lab.view import LabError, find_lab

    try:
        return find_lab(name)
    except LabError as e:
        console.print(str(e), markup=False)
        sys.exit(EXIT_INVALID)


@main.command()
@click.argument("scenario", type=click.Path(dir_okay=False))
@click.option("--name", default=None, help="The lab's name [default: the scenario's name].")
def up(scenario: str, name: str | None) -> None:
    """Build the cluster of SCENARIO and leave it running as a lab (kemu exec, shell, status;
    kemu down removes it)."""
    from kemu.experiment.run import preflight
    from kemu.lab.owner import up as lab_up
    from kemu.lab.view import LabError, check_name

    runs = _load(scenario)
    if len(runs) > 1 or runs[0].params:
        console.print(f"{scenario}: has a matrix of {len(runs)} runs; a lab is one cluster "
                      f"(remove `matrix:` or use kemu run)", markup=False)
        sys.exit(EXIT_INVALID)
    spec = runs[0].scenario
    if spec.events or spec.measurements:
        console.print("[yellow]note:[/yellow] a lab runs no measurements and schedules no "
                      "events; `kemu run` does, and the lab's shell takes events one at a "
                      "time", markup=True)
    try:
        check_name(name or spec.name)
    except LabError as e:
        console.print(str(e), markup=False)
        sys.exit(EXIT_INVALID)
    try:
        preflight(spec, doctor.check())
        lab = lab_up(Path(scenario), name or spec.name,
                     lambda m: console.print(f"[dim]kemu:[/dim] {m}", markup=True))
    except KemuError as e:
        console.print(f"[red]error:[/red] {e}", markup=True)
        sys.exit(EXIT_FAILED)
    except KeyboardInterrupt:
        console.print("[yellow]interrupted; the lab's owner tore down what it built[/yellow]")
        sys.exit(EXIT_INTERRUPTED)
    out.print(f"lab {lab.name} is up (run {lab.run_id}): {len(lab.nodes)} nodes, "
              f"{len(lab.pods)} pods. kemu exec / shell / status; kemu down {lab.name}")


@main.command()
@click.argument("name", required=False)
def down(name: str | None) -> None:
    """Stop the lab NAME (or the only one) and remove everything it created."""
    from kemu.lab.owner import down as lab_down
    from kemu.lab.view import LabError, find_lab, labs

    if not name and not labs():
        out.print("no lab is running")
        return
    try:
        lab = find_lab(name)
        removed = lab_down(lab, lambda m: console.print(f"[dim]kemu:[/dim] {m}", markup=True))
    except LabError as e:
        console.print(str(e), markup=False)
        sys.exit(EXIT_INVALID)
    for item in removed:
        out.print(f"removed {item}")
    out.print(f"lab {lab.name} is down")


@main.command(name="exec", context_settings={"ignore_unknown_options": True})
@click.option("--lab", "lab_name", default=None, help="The lab [default: the only one].")
@click.argument("target")
@click.argument("command", nargs=-1, required=True, type=click.UNPROCESSED)
def exec_command(lab_name: str | None, target: str, command: tuple[str, ...]) -> None:
    """Run COMMAND in the network namespace of TARGET, a pod (web-0, ns/web-0) or a node of
    a running lab: `kemu exec web-0 -- curl -s web`. Its output and exit code pass through."""
    import os

    lab = _find_lab(lab_name)
    try:
        argv = lab.resolve(target).argv(list(command))
    except KemuError as e:
        console.print(str(e), markup=False)
        sys.exit(EXIT_INVALID)
    sys.stdout.flush()
    try:
        os.execvp(argv[0], argv)
    except OSError as e:
        console.print(f"cannot run {argv[0]}: {e.strerror}", markup=False)
        sys.exit(EXIT_FAILED)


@main.command()
@click.option("--json", "as_json", is_flag=True, help="Machine-readable output.")
def status(as_json: bool) -> None:
    """The running labs: nodes, pods and services with their IPs."""
    import time

    from kemu.lab.view import labs, refreshed

    found = [refreshed(lab) for lab in labs()]
    if as_json:
        out.print_json(json.dumps([{**lab.record, "alive": lab.alive()} for lab in found]))
        return
    if not found:
        out.print("no lab is running")
        return
    for lab in found:
        age = time.time() - lab.created
        state = "up" if lab.alive() else \
            f"[red]owner dead[/red] (kemu down {lab.name} removes it)"
        out.print(f"[bold]lab {lab.name}[/bold] — scenario {lab.scenario}, run {lab.run_id}, "
                  f"{_age(age)}, {state}", markup=True)
        out.print(nodes_table(lab.nodes, f"{lab.name}: nodes"))
        out.print(pods_table(lab.pods, f"{lab.name}: pods"))
        if lab.services:
            out.print(services_table(lab.services, f"{lab.name}: services"))
        if lab.endpointslices:
            out.print(endpointslices_table(lab.endpointslices, f"{lab.name}: endpointslices"))


def _age(seconds: float) -> str:
    minutes, secs = divmod(int(seconds), 60)
    hours, minutes = divmod(minutes, 60)
    return f"up {hours}h{minutes:02d}m" if hours else f"up {minutes}m{secs:02d}s"


@main.command()
@click.argument("name", required=False)
def shell(name: str | None) -> None:
    """A prompt on the lab NAME (or the only one): `web-0 curl -s web`, pods, nodes,
    services, routes X, rules NODE, help. Commands may come on stdin."""
    from kemu.lab.control import send_event
    from kemu.lab.shell import run_shell
    from kemu.lab.view import refreshed

    lab = refreshed(_find_lab(name))
    try:
        code = run_shell(lab, refresh=lambda: refreshed(lab),
                         send=lambda event: send_event(lab.run_id, event))
    except KeyboardInterrupt:
        sys.exit(EXIT_INTERRUPTED)
    sys.exit(code)
