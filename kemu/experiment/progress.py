"""Where a long run is, for whoever watches it: which combination, which measurement, and
how much of the expected work is done (so a display can say how long is left).

run_experiment reports to a `Progress`; the base class ignores everything. `kemu run` draws a
rich progress bar on a terminal; in a log or a pipe it prints plain lines instead.
"""

from __future__ import annotations

from typing import Any

from kemu.measure.base import expected_seconds
from kemu.scenario.model import MeasurementSpec, Run

BUILD_S = 3.0  # a cluster's build and teardown, roughly, for the estimate


def expected_run_seconds(run: Run) -> float:
    """A run: its build, its measurements one after another (background ones overlap the
    next), and at least until its last event."""
    measuring = sum(expected_seconds(m) for m in run.scenario.measurements if not m.background)
    last_event = max((e.at for e in run.scenario.events), default=0.0)
    return BUILD_S + max(measuring, last_event)


class Progress:
    def start(self, runs: list[Run]) -> None:
        """The whole experiment, before the first run."""

    def run(self, number: int, run: Run) -> None:
        """Run `number` (1-based) starts building."""

    def measuring(self, spec: MeasurementSpec) -> None:
        """A measurement starts."""

    def measured(self, spec: MeasurementSpec) -> None:
        """A measurement is done."""

    def run_done(self, number: int, run: Run) -> None:
        """Run `number` is measured and torn down (or failed)."""

    def stop(self) -> None:
        """The experiment is over."""


class TerminalProgress(Progress):
    """A rich progress bar (on kemu run's terminal): which run and measurement, and the time
    left, which rich derives from the expected seconds done so far and how long they took."""

    def __init__(self, console: Any):
        from rich.progress import (
            BarColumn,
            SpinnerColumn,
            TextColumn,
            TimeElapsedColumn,
            TimeRemainingColumn,
        )
        from rich.progress import Progress as Bar

        self.bar = Bar(SpinnerColumn(), TextColumn("{task.description}"), BarColumn(),
                       TimeElapsedColumn(), TextColumn("left"), TimeRemainingColumn(),
                       console=console, transient=True)
        self.task: Any = None
        self.runs = 0
        self.prefix = ""
        self.budget = self.done = 0.0  # the current run's expected seconds, and those done

    def start(self, runs: list[Run]) -> None:
        self.runs = len(runs)
        self.task = self.bar.add_task("starting", total=sum(expected_run_seconds(r)
                                                            for r in runs))
        self.bar.start()

    def run(self, number: int, run: Run) -> None:
        self.prefix = f"run {number}/{self.runs}" + (f" [{run.label}]" if run.params else "")
        self.budget, self.done = expected_run_seconds(run), 0.0
        self.bar.update(self.task, description=f"{self.prefix} building")

    def measuring(self, spec: MeasurementSpec) -> None:
        if not spec.background:
            self.bar.update(self.task, description=f"{self.prefix} {spec.name}")

    def measured(self, spec: MeasurementSpec) -> None:
        if not spec.background:  # background ones overlap the others' time
            self._advance(expected_seconds(spec))

    def run_done(self, number: int, run: Run) -> None:
        self._advance(self.budget - self.done)

    def _advance(self, seconds: float) -> None:
        seconds = max(0.0, min(seconds, self.budget - self.done))
        self.done += seconds
        self.bar.advance(self.task, seconds)

    def stop(self) -> None:
        self.bar.stop()
