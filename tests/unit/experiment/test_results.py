"""results.csv rows and the report/compare commands, on a results.json made here."""

import json

import pytest
from click.testing import CliRunner

from kemu.cli import main
from kemu.experiment.results import csv_rows
from kemu.measure.base import headline
from kemu.report import describe as _describe

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


def test_csv_rows_of_the_new_types_and_warm_up():
    rr = {"name": "rr", "type": "tcp-rr", "from": "a", "to": "b"}
    rows = csv_rows(1, {}, rr, {"repeat": -1, "warmup": True, "started_at": 3,
                                "rtt_avg_ms": 0.07, "rtt_p50_ms": 0.06, "observations": 10})
    assert [r[6] for r in rows] == [-1, -1, -1]
    assert [r[-3:] for r in rows] == [("rtt_avg_ms", 0.07, ""), ("rtt_p50_ms", 0.06, ""),
                                      ("observations", 10, "")]
    failed = csv_rows(1, {}, rr, {"repeat": 0, "observations": 0, "error": "refused"})
    assert failed[-1][-3:] == ("error", 1, "refused")
    load = {"name": "load", "type": "http-load", "from": "a", "to": "svc/web:80"}
    rows = csv_rows(1, {}, load, {"repeat": 0, "requests": 100, "requests_per_s": 50.0,
                                  "latency_p99_ms": 9.0, "errors": {"read": 2, "write": 0}})
    assert [r[-3:] for r in rows] == [("requests_per_s", 50.0, ""), ("requests", 100, ""),
                                      ("latency_p99_ms", 9.0, ""), ("errors", 2, "read")]
    connect = {"name": "c", "type": "tcp-connect", "from": "a", "to": "b"}
    rows = csv_rows(1, {}, connect, {"repeat": 0, "requests": [
        {"t": 1.0, "latency_ms": 0.1}, {"t": 1.1, "latency_ms": 0.2, "error": "refused"}]})
    assert [r[-3:] for r in rows] == [("connect_ms", 0.1, ""), ("connect_ms", 0.2, "refused")]


def test_headline_and_description_of_the_new_types():
    rr = {"type": "tcp-rr", "summary": {
        "repeats": 3, "warmup_repeats": 1, "rtt_p50_ms": 0.065, "rtt_p90_ms": 0.08,
        "rtt_p99_ms": 0.11, "rtt_avg_ms": 0.067, "transactions_per_s": 14000.0,
        "rtt_p50_ms_ci95": 0.004}}
    assert headline(rr) == ("rtt_p50_ms", 0.065)
    text = _describe(rr)
    assert "0.0650/0.0800/0.1100 ms ±0.004 ms (95 % CI, 3 repeats)" in text
    assert "1 warm-up" in text
    load = {"type": "http-load", "summary": {
        "repeats": 1, "requests": 10, "errors": 2, "requests_per_s": 754.1,
        "transfer_mbps": 7.9, "latency_p50_ms": 5.2, "latency_p90_ms": 7.1,
        "latency_p99_ms": 8.9, "error_kinds": {"read": 2}}}
    assert headline(load) == ("requests_per_s", 754.1)
    assert _describe(load).startswith("754.1 req/s, 7.9 Mbit/s") and "(read:2)" in \
        _describe(load)
    failed = {"type": "http-load", "summary": {"repeats": 1, "requests": 0, "errors": 0,
                                               "error": "unable to connect"}}
    assert _describe(failed) == "failed: unable to connect"
    connect = {"type": "tcp-connect", "summary": {
        "repeats": 1, "requests": 3, "errors": 3, "error_kinds": {"Connection refused": 3}}}
    assert headline(connect) == ("connect_p50_ms", None)
    assert _describe(connect) == "3/3 failed: Connection refused"
    assert _describe({"type": "ping", "summary": {"repeats": 0, "warmup_repeats": 1}}) == \
        "warm-up only so far"


def test_plot_error_bars_are_the_ci_when_there_is_one(tmp_path):
    from kemu.experiment.plots import _spread, render
    rr = {"name": "rr", "type": "tcp-rr", "from": "a", "to": "b", "samples": [
        {"repeat": -1, "warmup": True, "rtt_p50_ms": 9.0},
        {"repeat": 0, "rtt_p50_ms": 0.06}, {"repeat": 1, "rtt_p50_ms": 0.08}],
        "summary": {"repeats": 2, "rtt_p50_ms": 0.07, "rtt_p50_ms_ci95": 0.127}}
    assert _spread(rr) == 0.127
    no_ci = {**rr, "summary": {"repeats": 2, "rtt_p50_ms": 0.07}}
    assert _spread(no_ci) == pytest.approx(0.01)  # warm-up left out
    data = {"scenario": "s", "runs": [{"params": {}, "measurements": [rr]}]}
    assert [p.name for p in render(data, tmp_path)] == ["rr.png"]
