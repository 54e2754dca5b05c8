"""The shell's reading of a line, and its loop over stdin — no cluster."""

import io

import pytest

from kemu import registry
from kemu.lab.shell import LabShell, interpret, run_shell, substitute_ips
from kemu.lab.view import LabView
from kemu.report import text as render
from tests.unit.lab.test_view import record


def view():
    return LabView(record())


POD0 = ("ip", "netns", "exec", "kemu-abc123-default-web-0")


def test_a_pod_command_runs_through_sh_in_the_pod():
    action = interpret(view(), "web-0 curl -s 10.96.0.10 | head -1")
    assert action.argv == (*POD0, "sh", "-c", "curl -s 10.96.0.10 | head -1")


def test_pod_and_node_names_in_arguments_become_ips():
    v = view()
    assert substitute_ips(v, "ping -c1 web-1") == "ping -c1 10.244.1.2"
    assert substitute_ips(v, "ping  -c1\tnode2") == "ping  -c1\t172.18.0.3"
    assert substitute_ips(v, "web-1 web-1") == "web-1 10.244.1.2"  # not the program
    assert substitute_ips(v, "curl -s web-1:8080") == "curl -s 10.244.1.2:8080"
    assert substitute_ips(v, "curl http://web-1/") == "curl http://web-1/"
    assert substitute_ips(v, "nc web-1:x") == "nc web-1:x"


def test_listing_commands_give_tables():
    v = view()
    assert "10.244.1.2" in render(interpret(v, "pods").table)
    assert "kube-system/coredns" in render(interpret(v, "pods").table)
    assert "10.244.0.0/24" in render(interpret(v, "nodes").table)
    services = render(interpret(v, "services").table)
    assert "10.96.0.20" in services and "80/TCP → :30080" in services
    assert "10.244.0.2:8080" in services


def test_routes_and_rules():
    v = view()
    assert interpret(v, "routes web-0").argv == (*POD0, "ip", "route")
    assert interpret(v, "rules node1").argv[-1] == "iptables-save"
    assert "its node node1 holds the rules" in interpret(v, "rules web-0").error
    assert interpret(v, "routes").error == "usage: routes NODE_OR_POD"
    assert "no pod or node named 'x'" in interpret(v, "routes x").error


def test_errors_and_the_rest():
    v = view()
    error = interpret(v, "bogus 1").error
    assert "unknown command or target 'bogus'" in error and "pods: web-0" in error
    assert "commands: pods, nodes" in error
    assert interpret(v, "web-0").error.startswith("usage: web-0 COMMAND")
    assert interpret(v, "").argv == () and not interpret(v, "").error
    assert interpret(v, "# a comment") == interpret(v, "")
    assert all(interpret(v, w).exit for w in ("exit", "quit", "EOF"))
    assert "routes NODE_OR_POD" in interpret(v, "help").text


def test_the_loop_reads_stdin_runs_commands_and_keeps_the_last_exit_code(capfd):
    rec = record()
    rec["targets"]["pods"]["default/web-0"]["prefix"] = []  # run on the host, for the test
    out = io.StringIO()
    code = run_shell(LabView(rec), io.StringIO("pods\nweb-0 echo hello web-1\n\n"
                                                "web-0 exit 3\n"), out)
    assert code == 3
    assert "10.244.0.2" in out.getvalue()
    assert capfd.readouterr().out == "hello 10.244.1.2\n"
    out = io.StringIO()
    assert run_shell(LabView(rec), io.StringIO("nope\nexit\npods\n"), out) == 2
    assert "unknown command" in out.getvalue() and "10.244.0.2" not in out.getvalue()


def test_completion_offers_commands_and_targets():
    shell = LabShell(view(), io.StringIO(), io.StringIO(), False)
    assert shell.completenames("no") == ["nodes", "node-down", "node-up", "node1", "node2"]
    assert shell.completenames("web") == ["web-0", "web-1"]


def test_event_lines_become_scenario_events(tmp_path):
    def event_docs(word, args):
        return registry.events()[word].from_words(args)

    assert event_docs("node-down", ["node2"]) == [{"action": "node-down", "node": "node2"}]
    assert event_docs("link-up", ["wan"]) == [{"action": "link-up", "link": "wan"}]
    assert event_docs("link-set", ["node1", "delay=20ms", "bw=10mbit"]) == [
        {"action": "link-set", "link": "node1", "delay": "20ms", "bw": "10mbit"}]
    assert event_docs("delete-pod", ["shop/web-0"]) == [
        {"action": "delete-pod", "pod": "web-0", "namespace": "shop"}]
    assert event_docs("scale", ["web", "3"]) == [
        {"action": "scale", "deployment": "web", "replicas": 3}]
    assert event_docs("delete", ["svc", "web"]) == [
        {"action": "delete", "kind": "Service", "name": "web"}]
    manifests = tmp_path / "m.yaml"
    manifests.write_text("kind: Service\n---\nkind: NetworkPolicy\n")
    assert [e["manifest"]["kind"] for e in event_docs("apply", [str(manifests)])] == [
        "Service", "NetworkPolicy"]
    assert event_docs("delete", ["deploy", "shop/web"]) == [
        {"action": "delete", "kind": "Deployment", "name": "web", "namespace": "shop"}]
    for word, args in (("scale", ["web"]), ("link-set", ["node1"]), ("delete", ["cm", "a"]),
                       ("node-up", [])):
        with pytest.raises(ValueError, match=f"usage: {word} "):
            event_docs(word, args)


def test_an_event_outside_a_lab_is_refused_not_run():
    out = io.StringIO()
    shell = LabShell(view(), io.StringIO(), out, False)
    shell.onecmd("node-down node1")
    assert shell.status == 1 and "kemu up" in out.getvalue()
