"""The estimate behind the progress bar's time left, and kemu run --json's summary."""

from pathlib import Path

from kemu.cli import results_summary
from kemu.experiment.progress import BUILD_S, expected_run_seconds
from kemu.measure.base import expected_seconds
from kemu.scenario import parse_runs
from tests.unit.scenario.test_scenario import scenario


def test_expected_seconds_per_measurement_type():
    doc = scenario()
    doc["measurements"] = [
        {"name": "p", "type": "ping", "from": {"pod": "web-0"}, "to": {"pod": "web-1"},
         "count": 50, "interval": 0.1, "repeat": 2, "warmup": 1},
        {"name": "t", "type": "iperf3", "from": {"pod": "web-0"}, "to": {"pod": "web-1"},
         "duration": 4, "background": True},
        {"name": "h", "type": "http", "from": {"pod": "web-0"}, "to": {"pod": "web-1"},
         "count": 100, "interval": 0.05}]
    doc["events"] = [{"at": 60, "action": "node-down", "node": "node2"}]
    run = parse_runs(doc)[0]
    ping, iperf, http = run.scenario.measurements
    assert expected_seconds(ping) == 3 * 50 * 0.1  # warm-up repeats take time too
    assert expected_seconds(iperf) == 4.5
    assert expected_seconds(http) == 100 * 0.05
    # The background iperf3 overlaps; the run lasts until its last event.
    assert expected_run_seconds(run) == BUILD_S + 60
    doc.pop("events")
    assert expected_run_seconds(parse_runs(doc)[0]) == BUILD_S + 15 + 5


def test_json_summary_keeps_summaries_and_events_not_samples():
    data = {"scenario": "s", "status": "completed", "runs": [{
        "params": {"topology.link.delay": "10ms"}, "status": "completed",
        "events": [{"at": 2.0, "event": "link-down node2", "status": "ok", "time": 1.0}],
        "measurements": [{"name": "rtt", "type": "ping", "from": "a", "to": "b",
                          "params": {}, "samples": [{"rtts_ms": [1.0]}],
                          "summary": {"rtt_avg_ms": 1.0}}]}]}
    summary = results_summary(data, Path("out"))
    assert summary["results"] == "out/results.json"
    run = summary["runs"][0]
    assert run["events"] == [{"at": 2.0, "event": "link-down node2", "status": "ok"}]
    assert run["measurements"] == [{"name": "rtt", "type": "ping", "from": "a", "to": "b",
                                    "summary": {"rtt_avg_ms": 1.0}}]
