"""The checked runner and the process helper, on real processes in kemu's own namespace."""

import signal
import time

import pytest

from kemu.errors import CommandError, KemuError, TimedOut
from kemu.kernel.exec import HOST, Netns, call_in, run
from kemu.kernel.processes import PIPE, Process, ProcessGroup, stop_all
from kemu.kernel.records import RunState


def test_a_failed_command_says_what_ran_where_and_why():
    with pytest.raises(CommandError) as err:
        run(Netns("node node9"), ["sh", "-c", "echo nope >&2; exit 3"])
    assert (err.value.returncode, err.value.stderr, err.value.where) == (3, "nope", "node node9")
    assert "command failed in node node9 (exit 3): sh -c" in str(err.value)


def test_unchecked_commands_return_their_result():
    result = run(HOST, ["sh", "-c", "echo out; echo err >&2; exit 1"], check=False)
    assert (result.ok, result.stdout, result.stderr) == (False, "out\n", "err\n")
    assert run(HOST, ["cat"], input="in").stdout == "in"


def test_a_command_past_its_timeout_is_killed_and_raises():
    started = time.monotonic()
    with pytest.raises(TimedOut):
        run(HOST, ["sleep", "5"], check=False, timeout=0.2)
    assert time.monotonic() - started < 2


def test_a_missing_program_is_a_command_error():
    with pytest.raises(CommandError) as err:
        run(HOST, ["no-such-program-kemu"])
    assert err.value.returncode == 127


def test_namespaces_are_entered_by_name_or_by_path():
    assert Netns.named("kemu-x", "pod a").prefix() == ["ip", "netns", "exec", "kemu-x"]
    assert Netns.of_process(42, "node n").prefix() == ["nsenter", "--net=/proc/42/ns/net", "--"]
    assert HOST.prefix() == [] and call_in(HOST, lambda: 7) == 7


def state(tmp_path):
    return RunState("t", tmp_path, {"run_id": "t", **{k: [] for k in RunState.KINDS}})


def test_a_process_is_recorded_while_it_lives_and_stopped_by_pid(tmp_path):
    records = state(tmp_path)
    proc = Process(HOST, ["sleep", "30"], "sleeper", records, tmp_path / "s.log").start()
    assert proc.running()
    assert [p["pid"] for p in records.data["processes"]] == [proc.pid]
    proc.stop(grace=0.5)
    assert not proc.running() and proc.returncode == -signal.SIGTERM
    assert records.data["processes"] == []


def test_a_process_that_ignores_sigterm_is_killed_after_its_grace(tmp_path):
    proc = Process(HOST, ["sh", "-c", "trap '' TERM; sleep 30"], "stubborn").start()
    time.sleep(0.2)  # the trap is set
    started = time.monotonic()
    stop_all([proc], grace=0.3)
    assert proc.returncode == -signal.SIGKILL and time.monotonic() - started < 2


def test_a_daemon_that_exits_says_why_from_its_log(tmp_path):
    proc = Process(HOST, ["sh", "-c", "echo broken config; exit 1"], "bird on node1",
                   log=tmp_path / "bird.log").start()
    proc.wait()
    assert proc.failure() == "bird on node1 exited: broken config"


def test_read_until_a_banner_or_fail_with_the_output():
    proc = Process(HOST, ["sh", "-c", "echo starting; echo listening on 5201; sleep 5"],
                   "server").start(stdout=PIPE, text=True)
    assert "listening" in proc.read_until(lambda text: "listening" in text, "no banner")
    proc.stop(grace=0)
    dead = Process(HOST, ["sh", "-c", "echo cannot bind"], "server").start(stdout=PIPE)
    with pytest.raises(KemuError, match="did not start: cannot bind"):
        dead.read_until(lambda text: "listening" in text, "server did not start")


def test_a_stopped_group_kills_what_is_in_flight_and_refuses_more():
    group = ProcessGroup()
    proc = group.start(HOST, ["sleep", "30"], "client")
    group.stop()
    assert proc.proc is not None and proc.proc.wait(timeout=5) == -signal.SIGKILL
    with pytest.raises(KemuError, match="stopping"):
        group.start(HOST, ["true"], "client")
