"""Plots come out of a results.json as PNG files (the rendering itself is matplotlib's)."""

from kemu.experiment.plots import render


def results():
    ping = {"name": "rtt", "type": "ping", "samples": [
        {"repeat": 0, "sent": 3, "received": 3, "rtts_ms": [0.1, 0.2, 0.3]}],
        "summary": {"rtt_avg_ms": 0.2}}
    tput = {"name": "tcp", "type": "iperf3", "samples": [
        {"repeat": 0, "throughput_mbps": 900.0, "intervals_mbps": [880.0, 920.0]}],
        "summary": {"throughput_mbps": 900.0}}
    failover = {"name": "fo", "type": "failover", "samples": [
        {"failed_at": 100.0, "failed_node": "node3", "requests": [
            {"t": 99.0, "latency_ms": 1.0, "pod": "a"}, {"t": 100.5, "latency_ms": 300,
                                                       "error": "timed out"},
            {"t": 102.0, "latency_ms": 1.2, "pod": "b"}]}],
        "summary": {"failover_s": 0.8}}
    return {"scenario": "s", "runs": [
        {"params": {"cluster.cni.plugin": p}, "measurements": [ping, tput, failover]}
        for p in ("a", "b")]}


def test_bars_and_timelines_are_written(tmp_path):
    written = render(results(), tmp_path / "plots")
    names = sorted(p.name for p in written)
    assert names == ["fo-timeline.png", "fo.png", "rtt.png", "tcp-timeline.png", "tcp.png"]
    for path in written:
        assert path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" and path.stat().st_size > 5000
