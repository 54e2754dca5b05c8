"""A run's measurement phase as a timeline. Time 0 is the start of the first measurement.

- Measurements run one after another; one marked `background` starts and the next starts at
  once, so it runs alongside them (load during a latency probe). All must finish.
- The scenario's events happen at their times in a thread of their own (a node goes down, a
  Deployment scales, a NetworkPolicy is applied) while the measurements go on; the phase lasts
  until the last event too. Each event is recorded with the time it happened and what it did,
  so a time series can be read against it.

A failed event does not stop the measurements (the failure is what may be under study); it is
recorded, and the run fails at the end with it.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from functools import partial
from typing import TYPE_CHECKING, Any

from kemu import registry
from kemu.errors import KemuError
from kemu.experiment.progress import Progress
from kemu.kernel.processes import ProcessGroup
from kemu.measure.base import kind, run_measurement
from kemu.scenario.model import EventSpec, MeasurementSpec

if TYPE_CHECKING:
    from kemu.cluster.cluster import Cluster
    from kemu.experiment.results import Results

Log = Callable[[str], None]


def apply_event(cluster: Cluster, event: EventSpec) -> dict[str, Any]:
    """Make the change (its kind knows how); returns what it did, for the record."""
    result: dict[str, Any] = registry.events()[event.action].apply(cluster, event)
    return result


class Timeline:
    def __init__(self, cluster: Cluster, results: Results, entry: dict[str, Any], log: Log,
                 progress: Progress | None = None):
        self.cluster, self.results, self.entry, self.log = cluster, results, entry, log
        self.progress = progress or Progress()
        self.procs = ProcessGroup()  # every measurement's processes, to stop them early
        self.failures: list[str] = []
        self._stop = threading.Event()

    def run(self) -> None:
        scenario = self.cluster.scenario
        start = time.time()
        self.results.set_timeline(self.entry, start)
        events = threading.Thread(target=self._events, args=(time.monotonic(), start,
                                                             scenario.events),
                                  name="kemu-events", daemon=True)
        events.start()
        background: list[_Background] = []
        finished = False
        try:
            for spec in scenario.measurements:
                source, target = kind(spec.type).ends(spec)
                where = f"{spec.type}, {source} → {target}" if source else \
                    f"{spec.type}, {target}"
                record = self.results.begin(self.entry, spec)  # in the scenario's order
                if spec.background:
                    self.log(f"measuring {spec.name} in the background ({where})")
                    background.append(_Background(self._measure, spec, record))
                else:
                    self.log(f"measuring {spec.name} ({where})")
                    self._measure(spec, record)
            for job in background:
                job.join()
            if scenario.events and events.is_alive():
                self.log(f"waiting for the last event (at {scenario.events[-1].at:g} s)")
            events.join()
            self.cluster.check()  # what failed in the background after the last measurement
            finished = True
        finally:
            self._stop.set()
            if not finished:  # a failure or Ctrl-C: what still runs must end before teardown
                self.procs.stop()
            for job in background:
                job.thread.join(timeout=10)
            events.join(timeout=30)  # an event half done finishes before teardown begins
        if self.failures:
            raise KemuError("; ".join(self.failures))

    def _measure(self, spec: MeasurementSpec, record: dict[str, Any]) -> None:
        self.progress.measuring(spec)
        run_measurement(self.cluster, spec, partial(self.results.add_sample, record),
                        self.procs)
        self.progress.measured(spec)
        self.cluster.check()  # what failed in the background (a reconcile, a pod's deletion)

    def _events(self, zero: float, start: float, events: tuple[EventSpec, ...]) -> None:
        """`zero`: time 0 on the monotonic clock (waits); `start`: the same as wall-clock
        time (records, which are compared with the samples' times)."""
        for event in events:
            if self._stop.wait(max(0.0, zero + event.at - time.monotonic())):
                return  # the run ended (interrupted, or a measurement failed)
            began = time.monotonic()
            happened = start + began - zero
            record: dict[str, Any] = {"at": event.at, "action": event.action,
                                      "target": event.target, "event": str(event),
                                      "time": happened}
            try:
                record.update(apply_event(self.cluster, event))
                record["status"] = "ok"
            except Exception as e:  # noqa: BLE001 — recorded; the measurements go on
                record.update(status="failed", error=str(e))
                self.failures.append(f"event at {event.at:g} s ({event}): {e}")
            record["took_s"] = round(time.monotonic() - began, 3)
            self.log(f"t={happened - start:.1f} s: {event}"
                     + ("" if record["status"] == "ok" else f" FAILED: {record['error']}"))
            self.results.add_event(self.entry, record)


class _Background:
    """A measurement in a thread; its error comes out at join()."""

    def __init__(self, measure: Callable[[MeasurementSpec, dict[str, Any]], None],
                 spec: MeasurementSpec, record: dict[str, Any]):
        self.error: BaseException | None = None
        self.thread = threading.Thread(target=self._run, args=(measure, spec, record),
                                       name=f"kemu-{spec.name}", daemon=True)
        self.thread.start()

    def _run(self, measure: Callable[[MeasurementSpec, dict[str, Any]], None],
             spec: MeasurementSpec, record: dict[str, Any]) -> None:
        try:
            measure(spec, record)
        except BaseException as e:  # noqa: BLE001 — handed to the main thread
            self.error = e

    def join(self) -> None:
        self.thread.join()
        if self.error:
            raise self.error
