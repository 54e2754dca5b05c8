"""Lab files: reading them, finding a lab, resolving pod and node names — no cluster."""

import json
import os

import pytest

from kemu.kernel import records as run_state
from kemu.kernel.records import process_running, process_start_time
from kemu.lab.owner import down
from kemu.lab.view import LabError, LabView, UnknownTarget, check_name, find_lab, labs


def record(name="lab1", owner_pid=None, owner_start=None, pods=None):
    pods = pods if pods is not None else [("default", "web-0", "node1", "10.244.0.2"),
                                          ("default", "web-1", "node2", "10.244.1.2"),
                                          ("kube-system", "coredns", "node1", "10.244.0.3")]
    return {
        "name": name, "run_id": "abc123", "scenario": "itest", "created": 1.0,
        "owner_pid": owner_pid, "owner_start": owner_start,
        "cluster": {
            "nodes": [{"name": f"node{i}", "underlay_ip": f"172.18.0.{i + 1}",
                       "pod_subnet": f"10.244.{i - 1}.0/24"} for i in (1, 2)],
            "pods": [{"namespace": ns, "name": n, "node": node, "ip": ip, "ready": True}
                     for ns, n, node, ip in pods],
            "services": [{"name": "web", "namespace": "default", "type": "NodePort",
                          "clusterIP": "10.96.0.20",
                          "ports": [{"name": "http", "port": 80, "protocol": "TCP",
                                     "nodePort": 30080, "endpoints": ["10.244.0.2:8080"]}]}],
        },
        "targets": {
            "pods": {f"{ns}/{n}": {"netns": f"kemu-abc123-{ns}-{n}",
                                   "prefix": ["ip", "netns", "exec", f"kemu-abc123-{ns}-{n}"]}
                     for ns, n, _, _ in pods},
            "nodes": {n: {"pid": os.getpid(), "start": process_start_time(os.getpid()),
                          "prefix": ["nsenter", f"--net=/proc/{os.getpid()}/ns/net", "--"]}
                      for n in ("node1", "node2")},
        },
    }


@pytest.fixture
def run_root(tmp_path, monkeypatch):
    monkeypatch.setattr(run_state, "RUN_ROOT", tmp_path)
    return tmp_path


def write_lab(root, rec):
    (root / "labs").mkdir(exist_ok=True)
    (root / "labs" / f"{rec['name']}.json").write_text(json.dumps(rec))


def test_resolve_pods_by_short_or_full_name_and_nodes():
    view = LabView(record())
    assert view.resolve("web-0").argv(["true"]) == \
        ["ip", "netns", "exec", "kemu-abc123-default-web-0", "true"]
    assert view.resolve("kube-system/coredns").ip == "10.244.0.3"
    assert view.resolve("coredns").name == "kube-system/coredns"  # unique in any namespace
    node = view.resolve("node2")
    assert node.kind == "node" and node.ip == "172.18.0.3"
    assert node.argv(["ip", "route"])[-2:] == ["ip", "route"]


def test_a_bare_name_prefers_the_default_namespace_else_is_ambiguous():
    pods = [("default", "web", "node1", "10.244.0.2"), ("shop", "web", "node2", "10.244.1.2"),
            ("a", "db", "node1", "10.244.0.3"), ("b", "db", "node2", "10.244.1.3")]
    view = LabView(record(pods=pods))
    assert view.resolve("web").name == "default/web"
    with pytest.raises(UnknownTarget, match="ambiguous: a/db, b/db"):
        view.resolve("db")


def test_unknown_target_lists_the_pods_and_nodes():
    with pytest.raises(UnknownTarget) as e:
        LabView(record()).resolve("web-9")
    assert "no pod or node named 'web-9' in lab lab1" in str(e.value)
    assert "pods: web-0, web-1, kube-system/coredns; nodes: node1, node2" in str(e.value)


def test_a_node_whose_namespace_holder_is_gone_is_refused():
    rec = record()
    rec["targets"]["nodes"]["node1"]["start"] = -1  # another process got the pid
    with pytest.raises(LabError, match="node node1 is gone"):
        LabView(rec).resolve("node1").argv(["true"])


def test_running_tells_the_recorded_process_from_a_reused_pid():
    assert process_running(os.getpid(), process_start_time(os.getpid()))
    assert not process_running(os.getpid(), None)
    assert not process_running(os.getpid(), -5)


def test_labs_and_find_lab(run_root):
    assert labs() == []
    with pytest.raises(LabError, match="no lab is running"):
        find_lab(None)
    write_lab(run_root, record("one"))
    assert find_lab(None).name == "one"
    (run_root / "labs" / "torn.json").write_text("{")
    write_lab(run_root, record("two"))
    assert [lab.name for lab in labs()] == ["one", "two"]  # the torn file is skipped
    with pytest.raises(LabError, match="2 labs are running: name one \\(one, two\\)"):
        find_lab(None)
    assert find_lab("two").name == "two"
    with pytest.raises(LabError, match="no lab named 'three' \\(labs: one, two\\)"):
        find_lab("three")


def test_check_name(run_root):
    check_name("quickstart")
    with pytest.raises(LabError, match="lab name '../x'"):
        check_name("../x")
    write_lab(run_root, record("live", os.getpid(), process_start_time(os.getpid())))
    with pytest.raises(LabError, match="already running"):
        check_name("live")
    write_lab(run_root, record("dead", os.getpid(), -1))
    with pytest.raises(LabError, match="kemu down dead"):
        check_name("dead")


def test_down_of_a_dead_lab_without_records_removes_its_file(run_root):
    write_lab(run_root, record("gone", 2 ** 22 + 1, 5))
    lab = find_lab("gone")
    assert not lab.alive()
    removed = down(lab)
    assert removed == [f"path {run_root / 'labs' / 'gone.json'}"]
    assert labs() == []


def test_down_of_a_dead_lab_removes_what_its_run_recorded(run_root):
    rec = record("dead", 2 ** 22 + 1, 5)
    run_dir = run_root / rec["run_id"]
    run_dir.mkdir()
    (run_dir / "state.json").write_text(json.dumps({"run_id": rec["run_id"], "owner_pid": 0}))
    lab_file = run_root / "labs" / "dead.json"
    write_lab(run_root, rec)
    (run_dir / "journal.jsonl").write_text(
        json.dumps({"op": "add", "kind": "paths", "value": str(lab_file.parent)}) + "\n" +
        json.dumps({"op": "add", "kind": "paths", "value": str(lab_file)}) + "\n")
    removed = down(find_lab("dead"))
    assert f"path {lab_file}" in removed and f"run directory {run_dir}" in removed
    assert not run_dir.exists() and not lab_file.parent.exists()


# -- the CLI's contract, without building anything ------------------------------------------

def cli(*args):
    from click.testing import CliRunner

    from kemu.cli import main

    return CliRunner().invoke(main, list(args))


def test_up_refuses_a_matrix(tmp_path, run_root):
    import yaml

    from tests.unit.scenario.test_scenario import scenario

    doc = scenario()
    doc["matrix"] = {"cluster.cni.plugin": ["flannel-vxlan", "host-gw"]}
    path = tmp_path / "m.yaml"
    path.write_text(yaml.safe_dump(doc))
    result = cli("up", str(path))
    assert result.exit_code == 2
    assert "has a matrix of 2 runs" in result.output
    assert not (run_root / "labs").exists()


def test_status_exec_shell_down_without_or_with_a_lab(run_root):
    result = cli("status")
    assert result.exit_code == 0 and "no lab is running" in result.output
    assert cli("status", "--json").output.strip() == "[]"
    assert cli("down").exit_code == 0
    result = cli("exec", "web-0", "--", "true")
    assert result.exit_code == 2 and "no lab is running" in result.output
    write_lab(run_root, record("one"))
    result = cli("exec", "web-9", "--", "true")
    assert result.exit_code == 2 and "pods: web-0, web-1" in result.output
    result = cli("status", "--json")
    assert [p["name"] for p in json.loads(result.output)[0]["cluster"]["pods"]][:2] == \
        ["web-0", "web-1"]
    assert "owner dead" in cli("status").output
    result = cli("down", "two")
    assert result.exit_code == 2 and "no lab named 'two' (labs: one)" in result.output


def test_a_zombie_is_not_running():
    """A killed process nobody has reaped yet holds nothing: neither a lab's owner nor a
    run's (kemu clean may remove what it recorded)."""
    import signal
    import subprocess

    proc = subprocess.Popen(["sleep", "60"])
    start = process_start_time(proc.pid)
    assert process_running(proc.pid, start)
    proc.send_signal(signal.SIGKILL)
    for _ in range(100):  # not reaped (no wait yet): a zombie
        if not process_running(proc.pid, start):
            break
        __import__("time").sleep(0.01)
    assert process_start_time(proc.pid) == start  # still there, as a zombie
    assert not process_running(proc.pid, start)
    proc.wait()
    assert not process_running(proc.pid, start)
