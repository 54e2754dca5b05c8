"""results.csv rows and the report/compare commands, on a results.json made here."""

import json

from click.testing import CliRunner

from kemu.cli import main
from kemu.results import csv_rows, headline

PING = {"name": "rtt", "type": "ping", "from": "a", "to": "b", "samples": [],
        "summary": {"rtt_avg_ms": 0.2, "rtt_min_ms": 0.1, "rtt_max_ms": 0.3, "loss_pct": 0}}
HTTP = {"name": "web", "type": "http", "from": "c", "to": "svc/web:80", "samples": [],
        "summary": {"requests": 2, "errors": 1, "latency_p50_ms": 1.0, "latency_p90_ms": 1.0,
                    "latency_p99_ms": 1.0, "backends": {"web-0": 1}}}


def results(rtt, p50):
    ping = {**PING, "summary": {**PING["summary"], "rtt_avg_ms": rtt}}
    http = {**HTTP, "summary": {**HTTP["summary"], "latency_p50_ms": p50}}
    return {"scenario": "s", "description": "", "status": "completed", "started_at": "t0",
            "finished_at": "t1",
            "runs": [{"params": {"cluster.cni.plugin": "x"}, "status": "completed",
                      "measurements": [ping, http]}]}


def test_csv_rows_one_observation_each():
    ping_rows = csv_rows(1, {}, PING, {"repeat": 0, "started_at": 5, "sent": 3, "received": 2,
                                       "rtts_ms": [0.1, 0.2]})
    assert [r[-3:] for r in ping_rows] == [("rtt_ms", 0.1, ""), ("rtt_ms", 0.2, ""),
                                           ("lost", 1, "")]
    http_rows = csv_rows(2, {"k": 1}, HTTP, {"requests": [
        {"t": 9.5, "latency_ms": 1.5, "pod": "web-0"}, {"t": 9.6, "latency_ms": 2, "error": "x"}]})
    assert http_rows[0][:2] == (2, '{"k": 1}')
    assert [r[-4:] for r in http_rows] == [(9.5, "latency_ms", 1.5, "web-0"),
                                           (9.6, "latency_ms", 2, "x")]


def test_headline():
    assert headline(PING) == ("rtt_avg_ms", 0.2)
    assert headline(HTTP) == ("latency_p50_ms", 1.0)


def test_report_and_compare(tmp_path):
    for name, rtt, p50 in (("a", 0.2, 1.0), ("b", 0.3, 0.5)):
        (tmp_path / name).mkdir()
        (tmp_path / name / "results.json").write_text(json.dumps(results(rtt, p50)))
    report = CliRunner().invoke(main, ["report", str(tmp_path / "a")])
    assert report.exit_code == 0 and "rtt min/avg/max" in report.output
    assert "plugin=x" in report.output
    compare = CliRunner().invoke(main, ["compare", str(tmp_path / "a"), str(tmp_path / "b")])
    assert compare.exit_code == 0
    assert "+50.0 %" in compare.output and "-50.0 %" in compare.output


def test_report_of_a_directory_without_results(tmp_path):
    result = CliRunner().invoke(main, ["report", str(tmp_path)])
    assert result.exit_code == 2 and "cannot read results" in result.output
