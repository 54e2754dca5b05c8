"""The code paths of a stock kernel: netem for link delay, the Open vSwitch kernel datapath
for the edge switch (kube-proxy's ipvs request is answered in test_services.py, on any kernel).
Each test skips where its feature is missing (this project's own machines); `make vm-test`
runs them in a Debian VM with a stock kernel, where they exist."""

import os
import subprocess

import pytest

from kemu.kernel import doctor

from .helpers import KEMU, in_node, pod, running_cluster, scenario_doc, shortened_scenario

pytestmark = pytest.mark.integration
IN_VM = "only in the full-kernel VM lane (make vm-test)"
NO = "this kernel has no {} (make vm-test runs this in a VM with a stock kernel)"


@pytest.mark.skipif(not doctor.netem_available(), reason=NO.format("sch_netem"))
def test_netem_is_chosen_over_the_delay_line():
    doc = scenario_doc([pod("a", node="node1"), pod("b", node="node2")])
    doc["topology"] = {"link": {"delay": "10ms"}}
    with running_cluster(doc) as cluster:
        assert cluster.describe()["link_emulation"]["delay_jitter_loss"] == "netem"
        assert not [line for link in cluster.links.values() for line in link.delay_lines]
        assert "netem" in in_node(cluster, "node1", "tc", "qdisc", "show", "dev", "eth0")
        # (What netem adds is measured against the bare path in test_link_emulation.py.)


@pytest.mark.skipif(not doctor.netem_available(), reason=NO.format("sch_netem"))
def test_netem_on_the_wan_and_changed_mid_run():
    """The zones' WAN link through netem at both ends, then new parameters in place (tc
    qdisc change) and a new rate (the tree rebuilt): each shows in the round trip."""
    import re
    import statistics

    from kemu.experiment.timeline import apply_event

    doc = scenario_doc([pod(f"p{i}", node=f"node{i}") for i in range(1, 5)], nodes=4)
    doc["topology"] = {"name": "zones", "wan": {"delay": "10ms"}}
    doc["events"] = [{"at": 1, "action": "link-set", "link": "wan", "delay": "30ms"},
                     {"at": 2, "action": "link-set", "link": "wan", "bw": "50mbit"}]
    with running_cluster(doc) as cluster:
        def rtt():
            out = cluster.pods["default/p1"].exec(
                "ping", "-n", "-c", "10", "-i", "0.2", cluster.pods["default/p3"].ip,
                timeout=60).stdout
            return statistics.median(float(v) for v in re.findall(r"time=([\d.]+)", out))

        wan = cluster.links["wan"]
        assert wan.method == "netem" and not wan.delay_lines
        base = rtt()
        assert base >= 20  # 10 ms each way
        apply_event(cluster, cluster.scenario.events[0])
        assert rtt() - base >= 36  # +20 ms each way
        apply_event(cluster, cluster.scenario.events[1])
        assert rtt() - base >= 36  # the rate came in, the delay stayed
        shown = subprocess.run(["nsenter", f"--net={wan.link.intf1.node.netns_path}", "tc",
                                "qdisc", "show", "dev", wan.link.intf1.name],
                               capture_output=True, text=True).stdout
        assert "tbf" in shown and "netem" in shown, shown


@pytest.mark.skipif(not doctor.module_available("openvswitch"),
                    reason=NO.format("openvswitch module"))
@pytest.mark.skipif(not doctor._ovs_running().ok, reason="Open vSwitch is not running")
def test_edge_switch_on_the_kernel_datapath():
    doc = scenario_doc([
        pod("web", node="node1"),
        {"apiVersion": "v1", "kind": "Service", "metadata": {"name": "web"},
         "spec": {"type": "LoadBalancer", "selector": {"app": "web"},
                  "ports": [{"port": 80, "targetPort": 8080}]}}])
    doc["external"] = {"hosts": [{"name": "client"}]}
    with running_cluster(doc) as cluster:
        edge = f"e{cluster.state.run_id}"
        kind = subprocess.run(["ovs-vsctl", "get", "bridge", edge, "datapath_type"],
                              capture_output=True, text=True).stdout.strip().strip('"')
        assert kind in ("", "system"), kind  # the kernel datapath, not "netdev"
        vip = next(s.load_balancer_ip for s in cluster.scenario.services if s.name == "web")
        out = subprocess.run([*cluster.exec_prefix(cluster.externals["client"]), "curl", "-sS",
                              "--max-time", "10", f"http://{vip}/"], capture_output=True,
                             text=True)
        assert '"pod": "web"' in out.stdout, out.stderr


@pytest.mark.skipif(os.environ.get("KEMU_VM") != "1", reason=IN_VM)
def test_quickstart_runs_in_the_vm(tmp_path):
    path = shortened_scenario("quickstart", tmp_path)
    proc = subprocess.run([KEMU, "run", str(path), "--out", str(tmp_path / "out")],
                          capture_output=True, text=True, timeout=900)
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert "tput-cross-node" in proc.stdout
