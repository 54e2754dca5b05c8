"""Parsers of ping, iperf3, sockperf and wrk output, on output captured from the real tools;
the summaries (warm-up left out, CI over repeats); the tcp-connect probe over loopback."""

import math
import socket
import subprocess
from pathlib import Path

import pytest

from kemu.errors import KemuError
from kemu.measure.base import summarize
from kemu.measure.failover import Failover
from kemu.measure.http import Http
from kemu.measure.http_load import HttpLoad, parse_wrk, wrk_command
from kemu.measure.iperf3 import Iperf3, parse_iperf3
from kemu.measure.iperf3 import client_command as iperf3_client_command
from kemu.measure.ping import Ping, parse_ping, ping_command
from kemu.measure.requests import parse_probe, probe_command
from kemu.measure.tcp_connect import TCPConnect
from kemu.measure.tcp_rr import TCPRR, parse_sockperf
from kemu.measure.tcp_rr import client_command as sockperf_client_command
from kemu.measure.tcp_rr import server_command as sockperf_server_command

summarize_ping, summarize_iperf3, summarize_http = Ping.summarize, Iperf3.summarize, Http.summarize
summarize_failover, summarize_tcp_rr = Failover.summarize, TCPRR.summarize
summarize_http_load, summarize_tcp_connect = HttpLoad.summarize, TCPConnect.summarize

DATA = Path(__file__).parent / "data"


def test_ping_parse_and_summary():
    sample = parse_ping((DATA / "ping_ok.txt").read_text())
    assert sample == {"sent": 3, "received": 3, "rtts_ms": [0.344, 0.042, 0.052]}
    summary = summarize_ping([sample, {"sent": 2, "received": 0, "rtts_ms": []}])
    assert summary["loss_pct"] == 40.0
    assert summary["rtt_min_ms"] == 0.042 and summary["rtt_max_ms"] == 0.344
    assert summary["rtt_p50_ms"] == 0.052


def test_ping_that_cannot_send_keeps_the_error():
    sample = parse_ping((DATA / "ping_unreachable.txt").read_text())
    assert sample["sent"] == 0 and "Network is unreachable" in sample["error"]
    assert summarize_ping([sample])["loss_pct"] is None


def test_ping_command():
    params = {"count": 5, "interval": 0.2, "size": 1422}
    assert ping_command("10.0.0.1", params) == [
        "ping", "-n", "-c", "5", "-i", "0.2", "-s", "1422", "-W", "2", "10.0.0.1"]


def test_iperf3_tcp():
    sample = parse_iperf3((DATA / "iperf3_tcp.json").read_text())
    assert sample["throughput_mbps"] > 1000
    assert sample["retransmits"] == 8
    assert len(sample["intervals_mbps"]) == 1


def test_iperf3_udp_reports_jitter_and_loss():
    sample = parse_iperf3((DATA / "iperf3_udp.json").read_text())
    assert sample["throughput_mbps"] == pytest.approx(10.04, abs=0.01)
    assert sample["lost_pct"] == 0 and sample["jitter_ms"] > 0
    assert "retransmits" not in sample


def test_iperf3_errors():
    with pytest.raises(KemuError, match="unable to connect"):
        parse_iperf3('{"start": {}, "end": {}, "error": "unable to connect to server"}')
    with pytest.raises(KemuError, match="cannot read"):
        parse_iperf3("iperf3: error")


def test_iperf3_summary_is_median_over_repeats():
    samples = [{"throughput_mbps": r, "retransmits": 1} for r in (100.0, 900.0, 200.0)]
    summary = summarize_iperf3(samples)
    assert summary["throughput_mbps"] == 200.0 and summary["retransmits"] == 3


def test_iperf3_client_command():
    params = {"duration": 3, "parallel": 4, "reverse": True, "protocol": "udp",
              "bitrate": "100M"}
    cmd = iperf3_client_command("10.244.1.2", params)
    assert cmd[:3] == ["iperf3", "--client", "10.244.1.2"]
    assert "--reverse" in cmd and cmd[-3:] == ["--udp", "--bitrate", "100M"]


# -- tcp-rr (sockperf), http-load (wrk), tcp-connect, warm-up, CI ----------------------------

def test_sockperf_full_rtt():
    sample = parse_sockperf((DATA / "sockperf_rtt.txt").read_text())
    assert sample["rtt_avg_ms"] == pytest.approx(0.0673, abs=1e-4)
    assert sample["rtt_stdev_ms"] == pytest.approx(0.0168, abs=1e-4)
    assert sample["rtt_p50_ms"] == pytest.approx(0.0652, abs=1e-4)
    assert sample["rtt_p99_ms"] == pytest.approx(0.1103, abs=1e-4)
    assert sample["rtt_p999_ms"] == pytest.approx(0.1668, abs=1e-4)
    assert sample["rtt_min_ms"] == pytest.approx(0.0188, abs=1e-4)
    assert sample["rtt_max_ms"] == pytest.approx(1.0316, abs=1e-4)
    assert sample["observations"] == 8175 and sample["duration_s"] == 0.55
    assert sample["transactions_per_s"] == pytest.approx(8175 / 0.55, abs=0.1)
    assert sample["dropped"] == 0 and "error" not in sample


def test_sockperf_half_rtt_latency_is_doubled():
    sample = parse_sockperf((DATA / "sockperf_latency.txt").read_text())
    assert sample["rtt_p50_ms"] == pytest.approx(2 * 0.036654, abs=1e-4)
    assert sample["observations"] == 19029


def test_sockperf_refused_keeps_the_error():
    sample = parse_sockperf((DATA / "sockperf_refused.txt").read_text())
    assert sample["observations"] == 0 and "Connection refused" in sample["error"]
    summary = summarize_tcp_rr([sample])
    assert summary["errors"] == 1 and "Connection refused" in summary["error"]
    assert "rtt_p50_ms" not in summary


def test_sockperf_commands():
    assert sockperf_server_command(5398) == ["sockperf", "server", "--tcp", "-p", "5398"]
    cmd = sockperf_client_command("10.244.1.2", {"duration": 3, "size": 100}, 5398)
    assert cmd == ["sockperf", "ping-pong", "--tcp", "-i", "10.244.1.2", "-p", "5398", "-t",
                   "3", "--msg-size", "100", "--full-rtt"]


def test_tcp_rr_summary_over_repeats_has_a_ci():
    one = parse_sockperf((DATA / "sockperf_rtt.txt").read_text())
    two = {**one, "rtt_p50_ms": 0.0752, "rtt_avg_ms": 0.0773}
    summary = summarize_tcp_rr([one, two])
    assert summary["observations"] == 2 * 8175 and summary["errors"] == 0
    assert summary["rtt_p50_ms"] == pytest.approx((0.0652 + 0.0752) / 2, abs=1e-4)
    assert summary["rtt_avg_ms"] == pytest.approx((0.0673 + 0.0773) / 2, abs=1e-4)
    assert summary["rtt_p50_ms_ci95"] == pytest.approx(12.706 * 0.01 / 2, abs=1e-4)
    assert summary["rtt_stdev_ms"] > one["rtt_stdev_ms"]  # pooled: includes the shift


def test_wrk_parse():
    sample = parse_wrk((DATA / "wrk_ok.txt").read_text())
    assert sample["requests"] == 1509 and sample["duration_s"] == 2.0
    assert sample["requests_per_s"] == 754.08
    assert sample["transfer_mbps"] == pytest.approx(0.95 * 2**20 * 8 / 1e6, abs=1e-3)
    assert sample["read_bytes"] == int(1.89 * 2**20)
    assert (sample["latency_avg_ms"], sample["latency_stdev_ms"],
            sample["latency_max_ms"]) == (5.21, 1.55, 11.36)
    assert (sample["latency_p50_ms"], sample["latency_p75_ms"], sample["latency_p90_ms"],
            sample["latency_p99_ms"]) == (5.22, 6.16, 7.15, 8.92)
    assert sample["errors_total"] == 0


def test_wrk_errors_and_units():
    sample = parse_wrk((DATA / "wrk_socket_errors.txt").read_text())
    assert sample["errors"] == {"connect": 0, "read": 4, "write": 3159, "timeout": 0,
                                "status": 0}
    assert sample["errors_total"] == 3163
    assert sample["transfer_mbps"] == pytest.approx(483.34 * 1024 * 8 / 1e6, abs=1e-3)
    non2xx = parse_wrk((DATA / "wrk_non2xx.txt").read_text())
    assert non2xx["errors"]["status"] == 1823 and non2xx["latency_stdev_ms"] == 0.5691
    refused = parse_wrk((DATA / "wrk_refused.txt").read_text())
    assert refused["requests"] == 0 and "Connection refused" in refused["error"]
    summary = summarize_http_load([refused])
    assert summary["failed_repeats"] == 1 and "requests_per_s" not in summary


def test_wrk_command():
    params = {"threads": 2, "connections": 8, "duration": 3, "timeout": 2, "host": "a.b"}
    assert wrk_command("http://10.96.0.5:80/x", params) == [
        "wrk", "--latency", "--threads", "2", "--connections", "8", "--duration", "3s",
        "--timeout", "2s", "--header", "Host: a.b", "http://10.96.0.5:80/x"]


def test_http_load_summary():
    a = parse_wrk((DATA / "wrk_ok.txt").read_text())
    b = parse_wrk((DATA / "wrk_socket_errors.txt").read_text())
    summary = summarize_http_load([a, b])
    assert summary["requests"] == 1509 + 755 and summary["errors"] == 3163
    assert summary["requests_per_s"] == pytest.approx((754.08 + 376.10) / 2, abs=0.1)
    assert summary["requests_per_s_ci95"] > 0
    assert summary["error_kinds"] == {"read": 4, "write": 3159}
    assert summary["latency_max_ms"] == 11.36


def test_summarize_leaves_warm_up_out():
    warm = {"repeat": -1, "warmup": True, "sent": 5, "received": 5, "rtts_ms": [50.0] * 5}
    measured = [{"repeat": i, "sent": 5, "received": 5, "rtts_ms": [1.0 + i] * 5}
                for i in range(3)]
    summary = summarize("ping", [warm, *measured])
    assert summary["repeats"] == 3 and summary["warmup_repeats"] == 1
    assert summary["rtt_max_ms"] == 3.0 and summary["sent"] == 15
    assert summary["rtt_avg_ms"] == 2.0
    assert summary["rtt_avg_ms_ci95"] == pytest.approx(4.303 * 1.0 / math.sqrt(3), abs=1e-3)
    assert summarize("ping", [warm]) == {"repeats": 0, "warmup_repeats": 1}


def test_iperf3_and_http_summaries_have_a_ci_over_repeats():
    summary = summarize_iperf3([{"throughput_mbps": r, "retransmits": 0} for r in (90.0, 110.0)])
    assert summary["throughput_mbps_ci95"] == pytest.approx(12.706 * math.sqrt(200) / math.sqrt(2),
                                                            abs=0.01)
    one = summarize_iperf3([{"throughput_mbps": 90.0, "retransmits": 0}])
    assert "throughput_mbps_ci95" not in one
    reqs = [{"requests": [{"t": 1.0, "latency_ms": v}]} for v in (1.0, 3.0)]
    assert summarize_http(reqs)["latency_p50_ms_ci95"] == pytest.approx(12.706, abs=1e-3)


def test_tcp_connect_summary_and_probe_against_a_closed_port():
    with socket.socket() as listener:  # bound, not listening: connects are refused
        listener.bind(("127.0.0.1", 0))
        port = listener.getsockname()[1]
        out = subprocess.run(probe_command("tcp", f"127.0.0.1:{port}", 3, "--timeout", "1"),
                             capture_output=True, text=True, timeout=20)
    sample = parse_probe(out.stdout)
    assert len(sample["requests"]) == 3
    assert all(r["error"] == "Connection refused" for r in sample["requests"])
    summary = summarize_tcp_connect([sample])
    assert summary["errors"] == 3 and "connect_p50_ms" not in summary
    assert summary["error_kinds"] == {"Connection refused": 3}
    ok = {"requests": [{"t": 1, "latency_ms": v} for v in (0.1, 0.2, 0.3)]}
    summary = summarize_tcp_connect([ok])
    assert summary["connect_p50_ms"] == 0.2 and summary["connect_max_ms"] == 0.3


def test_tcp_connect_probe_to_a_listener():
    with socket.socket() as listener:
        listener.bind(("127.0.0.1", 0))
        listener.listen(16)
        port = listener.getsockname()[1]
        out = subprocess.run(probe_command("tcp", f"127.0.0.1:{port}", 5),
                             capture_output=True, text=True, timeout=20)
    requests = parse_probe(out.stdout)["requests"]
    assert len(requests) == 5 and all("error" not in r and r["latency_ms"] > 0
                                      for r in requests)


def test_failover_summary_over_repeats():
    def sample(failed_at, fail_until):
        requests = [{"t": failed_at - 1, "latency_ms": 1.0, "node": "n1"},
                    {"t": failed_at + 0.1, "latency_ms": 500.0, "error": "timed out"},
                    {"t": fail_until, "latency_ms": 100.0, "error": "timed out"},
                    {"t": fail_until + 1, "latency_ms": 1.0, "node": "n2"}]
        return {"failed_at": failed_at, "requests": requests, "detected_at": failed_at + 0.5}
    summary = summarize_failover([sample(100.0, 101.9), sample(200.0, 202.9)])
    assert summary["requests"] == 8 and summary["failed_requests"] == 4
    assert summary["failover_s"] == 2.5 and summary["detected_s"] == 0.5
    assert summary["failover_s_ci95"] == pytest.approx(12.706 * math.sqrt(0.5) / math.sqrt(2),
                                                       abs=1e-3)
    assert summary["served_after"] == {"n2": 2}


def test_failed_lookups_still_say_how_long_they_took():
    """A resolver that tries its whole search list before giving up: the time is the result."""
    from kemu.measure.dns import DNS
    from kemu.report import describe
    requests = [{"t": 1.0 + i, "error": "Temporary failure in name resolution",
                 "latency_ms": v} for i, v in enumerate([1.9, 2.1, 2.0])]
    summary = DNS.summarize([{"repeat": 0, "requests": requests}])
    assert summary["errors"] == 3 and summary["failed_latency_p50_ms"] == 2.0
    assert describe({"type": "dns", "summary": summary}) == (
        "3/3 failed (Temporary failure in name resolution), p50 2.000 ms to fail")
