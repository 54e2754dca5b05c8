"""Parsers of ping and iperf3 output, on output captured from the real tools."""

from pathlib import Path

import pytest

from kemu.errors import KemuError
from kemu.measurements import (
    iperf3_client_command,
    parse_iperf3,
    parse_ping,
    ping_command,
    summarize_iperf3,
    summarize_ping,
)

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
