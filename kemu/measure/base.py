"""What a measurement kind is. One class per kind, in one module of kemu/measure/, registered
by its `type` (kemu/registry.py): adding a kind is adding a module. Each kind says

- what it takes: its parameters with their defaults, what it can run from (`sources`) and be
  aimed at (`targets`), what it needs installed (`requires`), and checks of its own (pure);
- how to run one repeat, from resolved places in a live cluster (`run_once`), through the
  processes of the run (so Ctrl-C stops them);
- how to read the results: its summary of all repeats, the headline figure and its unit,
  one line describing the summary, its CSV rows, its values' spread and time series for the
  plots, and how long a repeat should take (for the progress display).

Samples reach the `record` callback as soon as they exist, so an interrupted run keeps
everything measured so far.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, ClassVar

from kemu import registry
from kemu.cluster.cluster import Place
from kemu.kernel.exec import Netns
from kemu.kernel.processes import PIPE, STDOUT, Process, ProcessGroup
from kemu.scenario.model import MeasurementSpec

if TYPE_CHECKING:
    from kemu.cluster.cluster import Cluster
    from kemu.scenario.check_measurements import Scope
    from kemu.scenario.problems import Checks

Sample = dict[str, Any]
Row = tuple[int, Any, str, Any, str]  # index, time, metric, value, label


@dataclass
class Context:
    """What one repeat runs with."""

    cluster: Cluster
    spec: MeasurementSpec
    source: Place | None
    target: Place | None
    procs: ProcessGroup

    @property
    def params(self) -> dict[str, Any]:
        return self.spec.params

    @property
    def origin(self) -> Netns:
        assert self.source and self.source.where, f"{self.spec.name} runs from no place"
        return self.source.where


@dataclass
class Series:
    """One line or cloud of points of a time-series plot."""

    label: str
    xs: list[float]
    ys: list[float]
    style: str = "line"  # line | points | failures


@dataclass
class TimeSeries:
    xlabel: str
    ylabel: str
    origin: float | None  # the wall-clock time at x = 0 (None: the run's events not marked)
    series: list[Series] = field(default_factory=list)
    marks: list[tuple[float, str]] = field(default_factory=list)  # (x, text): e.g. the fault


class Measurement:
    type: ClassVar[str]  # as scenarios name it
    params: ClassVar[dict[str, Any]] = {}  # its own parameters, with defaults
    sources: ClassVar[tuple[str, ...]] = ("pod", "node", "external")  # () runs from none
    targets: ClassVar[tuple[str, ...]] = ()  # () takes no `to`
    to_refused: ClassVar[str] = ""  # why it takes no `to`, if it takes none
    requires: ClassVar[tuple[str, ...]] = ()  # programs it runs (kemu doctor's names)
    server: ClassVar[bool] = False  # starts a server in its target: one at a time there
    headline: ClassVar[str]  # the figure of its summary that sums it up
    unit: ClassVar[str]  # that figure, as a plot's axis says it

    @classmethod
    def defaults(cls) -> dict[str, Any]:
        """Every parameter it takes, with its default."""
        return {"repeat": 1, "warmup": 0, **cls.params}

    @classmethod
    def check(cls, doc: dict[str, Any], where: str, checks: Checks, scope: Scope) -> None:
        """Its own checks of a measurement document (pure); problems go to `checks`."""

    @classmethod
    def ends(cls, spec: MeasurementSpec) -> tuple[str, str]:
        """`from` and `to` as results show them."""
        return str(spec.source or ""), str(spec.target or "")

    @classmethod
    def expected_seconds(cls, params: dict[str, Any]) -> float:
        """How long one repeat should take: an estimate for the time left, never a deadline
        (by default its `duration`, and half a second to start and stop its tools)."""
        return float(params.get("duration", 1)) + 0.5

    @classmethod
    def run_once(cls, ctx: Context) -> Sample:
        raise NotImplementedError

    @classmethod
    def summarize(cls, samples: list[Sample]) -> dict[str, Any]:
        """The summary of the measured (not warm-up) samples of every repeat."""
        raise NotImplementedError

    @classmethod
    def describe(cls, summary: dict[str, Any]) -> str:
        """The summary in one line, for the results table."""
        raise NotImplementedError

    @classmethod
    def describe_empty(cls, summary: dict[str, Any]) -> str:
        return "no samples"

    @classmethod
    def csv_rows(cls, sample: Sample) -> list[Row]:
        """One row per observation of a sample (results.csv)."""
        raise NotImplementedError

    @classmethod
    def spread(cls, samples: list[Sample]) -> list[float]:
        """The values whose spread is the headline's error bar when there is no CI."""
        return [r["latency_ms"] for s in samples for r in s.get("requests", [])
                if "error" not in r]

    @classmethod
    def timeline(cls, run: dict[str, Any], m: dict[str, Any],
                 label: str) -> TimeSeries | None:
        """Its results over time, if it has such a plot; time 0 is the start of the run's
        measurements."""
        return None


@contextmanager
def server(ctx: Context, argv: list[str], what: str,
           listening: Callable[[str], bool]) -> Iterator[Process]:
    """A server in the target's namespace for one repeat: started, waited for until its
    output says it listens, drained (a full pipe would stall it), always ended."""
    assert ctx.target and ctx.target.where
    proc = ctx.procs.start(ctx.target.where, argv, what, stdout=PIPE, stderr=STDOUT)
    try:
        proc.read_until(listening, f"{what} did not start")
        proc.drain()
        yield proc
    finally:
        ctx.procs.end(proc)


def whole_seconds(doc: dict[str, Any], key: str, default: float, where: str, checks: Checks,
                  what: str) -> None:
    """A parameter a tool takes in whole seconds (≥ 1) only."""
    value = doc.get(key, default)
    if value < 1 or value != int(value):
        checks.error(f"{where}.{key}", f"{what} whole seconds (≥ 1); got {value}")


def kind(name: str) -> type[Measurement]:
    kinds: dict[str, type[Measurement]] = registry.measurements()
    return kinds[name]


def summarize(kind_name: str, samples: list[Sample]) -> dict[str, Any]:
    """The summary of a measurement's samples: warm-up repeats (`"warmup": true`) are left
    out; `repeats` and `warmup_repeats` say how many of each there were."""
    measured = [s for s in samples if not s.get("warmup")]
    summary = kind(kind_name).summarize(measured) if measured else {}
    summary["repeats"] = len(measured)
    if len(measured) < len(samples):
        summary["warmup_repeats"] = len(samples) - len(measured)
    return summary


def headline(m: dict[str, Any]) -> tuple[str, float | None]:
    """The one figure that sums a recorded measurement up, for comparisons; its 95 % CI over
    repeats, when there were several, is `<figure>_ci95` in the summary."""
    key = kind(m["type"]).headline
    return key, m["summary"].get(key)


def expected_seconds(spec: MeasurementSpec) -> float:
    """All its repeats, warm-up included."""
    repeats = spec.params["repeat"] + spec.params.get("warmup", 0)
    return repeats * kind(spec.type).expected_seconds(spec.params)


def run_measurement(cluster: Cluster, spec: MeasurementSpec, record: Callable[[Sample], None],
                    procs: ProcessGroup | None = None) -> None:
    """Run every repeat of `spec`, handing each sample to `record` as it completes. The
    `warmup` repeats come first, the same as the others; their samples are numbered -N…-1 and
    marked `"warmup": true`, and summaries leave them out."""
    measurement = kind(spec.type)
    ctx = Context(cluster, spec, cluster.resolve(spec.source) if spec.source else None,
                  cluster.resolve(spec.target) if spec.target else None,
                  procs or ProcessGroup())
    warmup = spec.params.get("warmup", 0)
    for repeat in range(-warmup, spec.params["repeat"]):
        started = time.time()
        sample = measurement.run_once(ctx)
        record({"repeat": repeat, "started_at": started, **sample,
                **({"warmup": True} if repeat < 0 else {})})
