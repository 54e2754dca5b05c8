"""Whole runs through the CLI: results on disk, and nothing of kemu's left behind after a
normal run, after Ctrl-C, and (with `kemu clean`) after SIGKILL."""

import json
import re
import shutil
import signal
import subprocess
import time
from pathlib import Path

import pytest
import yaml

from .helpers import (
    KEMU,
    kemu_netns,
    mininet_shells,
    pod,
    root_links,
    run_dirs,
    scenario_doc,
    shortened_scenario,
)

pytestmark = pytest.mark.integration


def write_scenario(tmp_path, measurements):
    doc = scenario_doc([pod("a", node="node1"), pod("b", node="node2")],
                       measurements=measurements)
    path = tmp_path / "s.yaml"
    path.write_text(yaml.safe_dump(doc))
    return path


QUICK = {"name": "quick", "type": "ping", "from": {"pod": "a"}, "to": {"pod": "b"}, "count": 3,
         "interval": 0.1}
SLOW = {"name": "slow", "type": "ping", "from": {"pod": "a"}, "to": {"pod": "b"}, "count": 600,
        "interval": 0.1}
TPUT = {"name": "tput", "type": "iperf3", "from": {"pod": "a"}, "to": {"pod": "b"},
        "duration": 1}


def assert_nothing_left(before_links, run_id):
    assert not {ns for ns in kemu_netns() if run_id in ns}
    assert run_id not in run_dirs()
    assert mininet_shells() == []
    assert root_links() == before_links
    netns_etc = Path("/etc/netns")
    assert not (netns_etc.exists() and [p for p in netns_etc.iterdir() if run_id in p.name])
    bridges = subprocess.run(["ovs-vsctl", "--timeout=5", "list-br"], capture_output=True,
                             text=True).stdout.split() if shutil.which("ovs-vsctl") else []
    assert f"e{run_id}" not in bridges


def start(path, out):
    return subprocess.Popen([KEMU, "run", str(path), "--out", str(out)], stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True)


def wait_for(proc, text, timeout=30):
    """Read the run's log until `text` appears; return the run id."""
    run_id, deadline = "", time.monotonic() + timeout
    while time.monotonic() < deadline:
        line = proc.stderr.readline()
        run_id = run_id or (re.search(r"run ([0-9a-f]{6})", line) or [None, ""])[1]
        if text in line:
            return run_id
        assert line, "kemu exited early"
    raise AssertionError(f"never saw {text!r}")


def test_run_writes_results_and_leaves_nothing(tmp_path):
    before = root_links()
    path = write_scenario(tmp_path, [QUICK, TPUT])
    proc = subprocess.run([KEMU, "run", str(path), "--out", str(tmp_path / "out")],
                          capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr
    run_id = re.search(r"run ([0-9a-f]{6})", proc.stderr)[1]
    results = json.loads((tmp_path / "out" / "results.json").read_text())
    assert results["status"] == "completed" and results["scenario"] == "itest"
    assert results["kemu_version"] and results["started_at"] and results["finished_at"]
    assert results["capabilities"]["vxlan"]["ok"] is True
    (run,) = results["runs"]
    assert run["params"] == {} and run["status"] == "completed"
    nodes = {n["name"]: n for n in run["cluster"]["nodes"]}
    assert nodes["node1"]["underlay_ip"] == "172.18.0.2"
    assert nodes["node2"]["pod_subnet"] == "10.244.1.0/24"
    assert nodes["node1"]["backend_data"]["VtepMAC"]
    assert "flannel.1" in nodes["node1"]["dataplane"]["device"]
    assert set(run["cluster"]["timings"]) == {"underlay_s", "network_s", "pods_s", "ready_s",
                                                "services_s"}
    pods = {p["name"]: p for p in run["cluster"]["pods"]}
    assert pods["b"]["node"] == "node2" and pods["b"]["ip"].startswith("10.244.1.")
    ping, tput = run["measurements"]
    assert ping["summary"]["loss_pct"] == 0 and ping["summary"]["rtt_avg_ms"] > 0
    assert len(ping["samples"][0]["rtts_ms"]) == 3
    assert tput["summary"]["throughput_mbps"] > 100 and "retransmits" in tput["summary"]
    assert "quick" in proc.stdout and "Mbit/s" in proc.stdout  # the summary table
    rows = (tmp_path / "out" / "results.csv").read_text().splitlines()
    assert rows[0].startswith("run,params,measurement")
    assert sum(",rtt_ms," in r for r in rows) == 3 and any(",throughput_mbps," in r for r in rows)
    assert_nothing_left(before, run_id)


def test_sigint_tears_down_and_keeps_what_was_measured(tmp_path):
    before = root_links()
    proc = start(write_scenario(tmp_path, [QUICK, SLOW]), tmp_path / "out")
    run_id = wait_for(proc, "measuring slow")
    time.sleep(1)
    proc.send_signal(signal.SIGINT)
    assert proc.wait(timeout=30) == 130
    results = json.loads((tmp_path / "out" / "results.json").read_text())
    assert results["status"] == "interrupted"
    assert results["runs"][0]["status"] == "interrupted"
    quick = results["runs"][0]["measurements"][0]
    assert quick["name"] == "quick" and quick["summary"]["received"] == 3
    assert_nothing_left(before, run_id)


def test_sigterm_behaves_like_ctrl_c(tmp_path):
    before = root_links()
    proc = start(write_scenario(tmp_path, [SLOW]), tmp_path / "out")
    run_id = wait_for(proc, "measuring slow")
    proc.terminate()
    assert proc.wait(timeout=30) == 130
    assert json.loads((tmp_path / "out" / "results.json").read_text())["status"] == "interrupted"
    assert_nothing_left(before, run_id)


def test_sigterm_stops_background_measurements_too(tmp_path):
    """A background iperf3 has a server in a pod and a client in another: SIGTERM (which
    only the main thread sees) must end both before the namespaces go."""
    before = root_links()
    load = {**TPUT, "name": "load", "duration": 60, "background": True}
    proc = start(write_scenario(tmp_path, [load, SLOW]), tmp_path / "out")
    run_id = wait_for(proc, "measuring slow")
    time.sleep(1)
    proc.terminate()
    assert proc.wait(timeout=30) == 130
    assert_nothing_left(before, run_id)
    leftovers = subprocess.run(["pgrep", "-f", "iperf3 --(server|client)"],
                               capture_output=True, text=True).stdout
    assert leftovers == ""


def test_kemu_clean_after_sigkill_removes_exactly_what_kemu_made(tmp_path):
    before = root_links()
    foreign = ["kemu-notmine", "itest-foreign"]  # look like kemu's or not: neither was recorded
    for name in foreign:
        subprocess.run(["ip", "netns", "add", name], check=True)
    try:
        proc = start(write_scenario(tmp_path, [SLOW]), tmp_path / "out")
        run_id = wait_for(proc, "measuring slow")
        proc.kill()
        proc.wait()
        assert {ns for ns in kemu_netns() if run_id in ns}, "SIGKILL should leave the pods"
        clean = subprocess.run([KEMU, "clean"], capture_output=True, text=True, timeout=60)
        assert clean.returncode == 0, clean.stderr
        assert f"kemu-{run_id}-default-a" in clean.stdout
        assert_nothing_left(before, run_id)
        listed = subprocess.run(["ip", "netns", "list"], capture_output=True, text=True).stdout
        assert all(name in listed for name in foreign)
        again = subprocess.run([KEMU, "clean"], capture_output=True, text=True, timeout=60)
        assert "nothing to clean" in again.stdout
    finally:
        for name in foreign:
            subprocess.run(["ip", "netns", "delete", name])


def test_failed_build_still_tears_down(tmp_path):
    """A container that cannot start fails the run with a clear error; nothing is left."""
    before = root_links()
    bad = pod("broken", node="node1", image="busybox", port=0)
    bad["spec"]["containers"][0]["command"] = ["/nonexistent/program"]
    doc = scenario_doc([pod("a", node="node1"), bad])
    path = tmp_path / "s.yaml"
    path.write_text(yaml.safe_dump(doc))
    proc = subprocess.run([KEMU, "run", str(path), "--out", str(tmp_path / "out")],
                          capture_output=True, text=True, timeout=60)
    assert proc.returncode == 1
    assert "broken" in proc.stderr
    run_id = re.search(r"run ([0-9a-f]{6})", proc.stderr)[1]
    results = json.loads((tmp_path / "out" / "results.json").read_text())
    assert results["status"] == "failed" and "broken" in results["error"]
    assert results["runs"][0]["status"] == "failed"
    assert_nothing_left(before, run_id)


def test_a_2x2_sweep_gives_4_result_groups_and_the_plots(tmp_path):
    """The shipped backends-compare scenario, shortened and narrowed to 2 backends × 2
    delays: one run per combination, each from a clean cluster, each measured, plotted."""
    before = root_links()
    path = shortened_scenario("backends-compare", tmp_path,
                              cluster__cni__plugin=["flannel-vxlan", "calico-bgp"])
    proc = subprocess.run([KEMU, "run", str(path), "--out", str(tmp_path / "out")],
                          capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr
    results = json.loads((tmp_path / "out" / "results.json").read_text())
    runs = results["runs"]
    assert [r["params"] for r in runs] == [
        {"cluster.cni.plugin": p, "topology.link.delay": d}
        for p in ("flannel-vxlan", "calico-bgp") for d in ("0ms", "10ms")]
    for run in runs:
        assert run["status"] == "completed" and run["cluster"]["cni"] == \
            run["params"]["cluster.cni.plugin"]
        rtt, one, four, http = run["measurements"]
        assert rtt["summary"]["loss_pct"] == 0
        slow = run["params"]["topology.link.delay"] == "10ms"
        assert (rtt["summary"]["rtt_min_ms"] > 18) == slow  # 10 ms each way, or none
        assert one["summary"]["throughput_mbps"] > 0 and four["summary"]["throughput_mbps"] > 0
        assert http["summary"]["errors"] == 0
    assert {run["cluster"]["mtu"] for run in runs} == {1450, 1500}
    assert "plugin=calico-bgp" in proc.stdout  # the table names each run
    plots = {p.name for p in (tmp_path / "out" / "plots").iterdir()}
    assert {"rtt.png", "tcp-1-stream.png", "tcp-4-streams.png", "http.png"} <= plots
    csv_runs = {line.split(",")[0] for line in
                (tmp_path / "out" / "results.csv").read_text().splitlines()[1:]}
    assert csv_runs == {"1", "2", "3", "4"}
    for run_id in re.findall(r"run ([0-9a-f]{6}): building", proc.stderr):
        assert_nothing_left(before, run_id)
