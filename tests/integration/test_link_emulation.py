"""Link emulation measured, not assumed: configured delay, loss, jitter and bandwidth against
what ping and iperf3 see between pods on two nodes. Without sch_netem (this machine, CI) the
delay line is what is tested; with netem, netem is."""

import json
import re
import statistics

import pytest

from kemu.kernel import doctor

from .helpers import in_pod, pod, running_cluster, scenario_doc

pytestmark = pytest.mark.integration
METHOD = "netem" if doctor.netem_available() else "delay-line"


def two_pods(**link):
    doc = scenario_doc([pod("a", node="node1", image="kemu/iperf3", port=5201),
                        pod("b", node="node2", image="kemu/iperf3", port=5201)])
    doc["topology"] = {"link": link}
    return doc


def rtts(cluster, count, interval="0.02"):
    out = in_pod(cluster, "a", "ping", "-n", "-c", str(count), "-i", interval, "-W", "2",
                 cluster.pods["default/b"].ip, timeout=120).stdout
    sent, received = map(int, re.search(r"(\d+) packets transmitted, (\d+) received", out)
                         .groups())
    return [float(v) for v in re.findall(r"time=([\d.]+) ms", out)], sent, received


@pytest.fixture(scope="module")
def baseline():
    """RTT p50 and spread with no impairment: the path's own share (0.1 ms natively, ~2 ms
    in the software-emulated VM), which the emulated delay comes on top of."""
    with running_cluster(two_pods()) as cluster:
        samples, _, _ = rtts(cluster, 50)
    return statistics.median(samples), statistics.pstdev(samples)


def test_one_way_delay_doubles_into_the_round_trip(baseline):
    base, spread = baseline
    with running_cluster(two_pods(delay="20ms")) as cluster:
        assert cluster.describe()["link_emulation"]["delay_jitter_loss"] == METHOD
        samples, sent, received = rtts(cluster, 50)
        assert received == sent
        added = statistics.median(samples) - base
        assert 36.0 <= added <= 44.0, (added, base)  # 2 × 20 ms ± 10 %
        assert statistics.pstdev(samples) < 2.0 + spread


def test_loss_and_jitter(baseline):
    base, spread = baseline
    with running_cluster(two_pods(delay="5ms", jitter="2ms", loss="10%")) as cluster:
        samples, sent, received = rtts(cluster, 400, interval="0.01")
        lost = 1 - received / sent  # each way loses 10 %: about 19 % of round trips
        assert 0.10 <= lost <= 0.30, lost
        assert statistics.pstdev(samples) > 0.5 + spread  # the jitter shows
        assert 6.0 <= statistics.median(samples) - base <= 14.0


def test_100_mbit_yields_90_to_100():
    with running_cluster(two_pods(bw="100mbit")) as cluster:
        out = in_pod(cluster, "a", "iperf3", "-c", cluster.pods["default/b"].ip, "-J", "-t",
                     "3", timeout=60).stdout
        mbps = json.loads(out)["end"]["sum_received"]["bits_per_second"] / 1e6
        assert 90 <= mbps <= 100, mbps


def test_the_delay_line_goes_with_the_cluster():
    with running_cluster(two_pods(delay="1ms")) as cluster:
        pids = [line.daemon.proc.pid for link in cluster.links.values()
                for line in link.delay_lines]
        assert len(pids) == (2 if METHOD == "delay-line" else 0)
    import os
    assert not [p for p in pids if os.path.exists(f"/proc/{p}")]
