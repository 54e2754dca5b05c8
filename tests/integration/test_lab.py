"""Labs through the real CLI: `kemu up` leaves a cluster running that `exec`, `status` and
`shell` use without the scenario file; `kemu down` removes all of it — also after the owner
was SIGKILLed. And `kemu run --cli` opens the same shell before its teardown."""

import json
import os
import re
import signal
import subprocess

import pytest
import yaml

from kemu.lab.view import lab_path

from .helpers import KEMU, pod, root_links, scenario_doc
from .test_lifecycle import assert_nothing_left

pytestmark = pytest.mark.integration

NAME = "itest-lab"


def kemu(*args, input=None, timeout=120):
    return subprocess.run([KEMU, *map(str, args)], capture_output=True, text=True,
                          input=input, timeout=timeout)


def write_scenario(tmp_path, *workloads):
    doc = scenario_doc(list(workloads) or [pod("a", node="node1"), pod("b", node="node2")])
    path = tmp_path / "lab.yaml"
    path.write_text(yaml.safe_dump(doc))
    return path


@pytest.fixture
def lab(tmp_path):
    """A lab up from a scenario file that is deleted at once; downed again whatever happens."""
    before = root_links()
    path = write_scenario(tmp_path)
    up = kemu("up", path, "--name", NAME)
    assert up.returncode == 0, up.stderr
    run_id = re.search(r"run ([0-9a-f]{6})", up.stderr)[1]
    assert f"lab {NAME} is up" in up.stdout
    path.unlink()
    try:
        yield run_id, before
    finally:
        if lab_path(NAME).exists():
            kemu("down", NAME)


def pods_of(status):
    (lab,) = [entry for entry in status if entry["name"] == NAME]
    return {p["name"]: p for p in lab["cluster"]["pods"]}


def test_up_exec_status_shell_down(lab):
    run_id, before = lab
    status = kemu("status", "--json")
    assert status.returncode == 0, status.stderr
    entries = json.loads(status.stdout)
    pods = pods_of(entries)
    assert pods["a"]["node"] == "node1" and pods["b"]["node"] == "node2"
    b_ip = pods["b"]["ip"]
    assert b_ip.startswith("10.244.1.")
    assert [e["alive"] for e in entries if e["name"] == NAME] == [True]
    assert "node1" in kemu("status").stdout

    ping = kemu("exec", "a", "--", "ping", "-c", "1", "-W", "2", b_ip)  # across nodes
    assert ping.returncode == 0, ping.stderr
    assert "1 received" in ping.stdout
    assert kemu("exec", "--lab", NAME, "b", "--", "sh", "-c", "echo oops >&2; exit 7")\
        .returncode == 7
    unreachable = kemu("exec", "a", "--", "ping", "-c", "1", "-W", "1", "10.244.9.9")
    assert unreachable.returncode == 1
    node = kemu("exec", "node1", "--", "ip", "-br", "addr")
    assert node.returncode == 0 and "172.18.0.2" in node.stdout
    unknown = kemu("exec", "nope", "--", "true")
    assert unknown.returncode == 2 and "pods: a, b" in unknown.stderr

    shell = kemu("shell", NAME, input="pods\nservices\na ping -c1 -W2 b\nroutes node1\n")
    assert shell.returncode == 0, shell.stdout + shell.stderr
    assert b_ip in shell.stdout and "1 received" in shell.stdout
    assert "kube-dns" in shell.stdout and "10.244.1.0/24 via 10.244.1.0" in shell.stdout

    again = kemu("up", "/nonexistent.yaml", "--name", NAME)
    assert again.returncode == 2  # (the file is checked first)

    down = kemu("down", NAME)
    assert down.returncode == 0, down.stderr
    assert f"lab {NAME} is down" in down.stdout
    assert not lab_path(NAME).exists()
    assert_nothing_left(before, run_id)
    assert "no lab is running" in kemu("status").stdout


def test_down_after_the_owner_was_sigkilled(lab):
    run_id, before = lab
    (entry,) = [e for e in json.loads(kemu("status", "--json").stdout) if e["name"] == NAME]
    os.kill(entry["owner_pid"], signal.SIGKILL)
    assert "owner dead" in kemu("status").stdout
    taken = kemu("up", "/dev/null", "--name", NAME)
    assert taken.returncode == 2
    down = kemu("down")  # the only lab
    assert down.returncode == 0, down.stderr
    assert f"removed netns kemu-{run_id}-default-a" in down.stdout
    assert_nothing_left(before, run_id)
    assert not lab_path(NAME).exists()


def test_status_and_shell_show_readiness_as_it_is_now(tmp_path):
    """The owner rewrites the lab file when asked (SIGUSR1): a pod whose readiness probe
    starts to pass shows as ready, without restarting anything."""
    flag = tmp_path / "ready"
    gated = pod("gated", node="node1")
    gated["spec"]["containers"][0]["readinessProbe"] = {
        "exec": {"command": ["test", "-e", str(flag)]}, "periodSeconds": 1,
        "failureThreshold": 1}
    before = root_links()
    up = kemu("up", write_scenario(tmp_path, gated), "--name", NAME)
    assert up.returncode == 0, up.stderr
    run_id = re.search(r"run ([0-9a-f]{6})", up.stderr)[1]
    try:
        assert pods_of(json.loads(kemu("status", "--json").stdout))["gated"]["ready"] is False
        flag.touch()
        for _ in range(50):
            if pods_of(json.loads(kemu("status", "--json").stdout))["gated"]["ready"]:
                break
        else:
            raise AssertionError("status never showed the pod ready")
        shell = kemu("shell", NAME, input="pods\n")
        assert re.search(r"gated .* yes", shell.stdout), shell.stdout
    finally:
        assert kemu("down", NAME).returncode == 0
    assert_nothing_left(before, run_id)


def test_shell_events_change_the_lab(tmp_path):
    """Faults and changes typed into the shell reach the owner and the live cluster, each
    checked against what the lab has been through (node2 cannot come up twice)."""
    web = {"apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": "web"},
           "spec": {"replicas": 2, "selector": {"matchLabels": {"app": "web"}},
                    "template": {"metadata": {"labels": {"app": "web"}}, "spec": {
                        "containers": [{"name": "web", "image": "kemu/http-echo",
                                        "ports": [{"containerPort": 8080}]}]}}}}
    before = root_links()
    up = kemu("up", write_scenario(tmp_path, web, pod("client", node="node1", port=0,
                                                      image="kemu/sleep")), "--name", NAME)
    assert up.returncode == 0, up.stderr
    run_id = re.search(r"run ([0-9a-f]{6})", up.stderr)[1]
    try:
        shell = kemu("shell", NAME, input="\n".join([
            "scale web 3",
            "node-down node2",
            "client ping -c1 -W1 web-1",  # web-1 runs on node2
            "node-up node2",
            "node-up node2",
            "client ping -c1 -W2 web-1",
            "delete-pod web-0",
            "pods"]) + "\n")
        out = shell.stdout
        assert "scale web to 3 (created: ['default/web-2']" in out, out + shell.stderr
        assert "node-down node2" in out and "0 received" in out
        assert "node node2 is already up then" in out
        assert "1 received" in out
        assert "replacement: default/web-3" in out
        listed = out[out.rindex("pods"):]
        assert "web-3" in listed and "web-0 " not in listed
        pods = pods_of(json.loads(kemu("status", "--json").stdout))
        assert set(pods) == {"client", "coredns", "web-1", "web-2", "web-3"}
    finally:
        assert kemu("down", NAME).returncode == 0
    assert_nothing_left(before, run_id)


def test_a_failed_up_reports_the_error_and_leaves_nothing(tmp_path):
    before = root_links()
    bad = pod("broken", node="node1", image="busybox", port=0)
    bad["spec"]["containers"][0]["command"] = ["/nonexistent/program"]
    up = kemu("up", write_scenario(tmp_path, pod("a", node="node1"), bad), "--name", NAME)
    assert up.returncode == 1
    assert "broken" in up.stderr
    run_id = re.search(r"run ([0-9a-f]{6})", up.stderr)[1]
    assert_nothing_left(before, run_id)
    assert not lab_path(NAME).exists()


def test_run_cli_opens_the_shell_before_teardown(tmp_path):
    before = root_links()
    run = kemu("run", write_scenario(tmp_path), "--cli", "--out", tmp_path / "out",
               input="pods\na ping -c1 -W2 b\nexit\n")
    assert run.returncode == 0, run.stderr
    assert "1 received" in run.stdout and "node2" in run.stdout
    run_id = re.search(r"run ([0-9a-f]{6})", run.stderr)[1]
    assert run.stderr.index("3 pods ready") < run.stderr.index("tearing down")
    assert_nothing_left(before, run_id)
