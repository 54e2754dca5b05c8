"""The one lifecycle's teardown: errors met are logged and said, the run's records are removed
whatever happened, and no signal cuts it short."""

import signal

from kemu.cluster.lifecycle import signals_held, tear_down
from kemu.kernel.records import RunState


class Broken:
    def stop(self):
        signal.raise_signal(signal.SIGINT)  # Ctrl-C in the middle of a teardown: held off
        return ["node node2: command failed"]


def test_teardown_goes_on_past_errors_says_them_and_removes_the_records(tmp_path):
    run_dir = tmp_path / "run"
    run_dir.mkdir()
    state = RunState("t", run_dir, {"run_id": "t", **{k: [] for k in RunState.KINDS}})
    logged = []
    errors = tear_down(Broken(), state, logged.append)
    assert errors == ["node node2: command failed"]
    assert logged == ["tearing down", "teardown: node node2: command failed"]
    assert not run_dir.exists()


def test_signals_are_restored_after_a_teardown():
    before = signal.getsignal(signal.SIGINT)
    with signals_held():
        assert signal.getsignal(signal.SIGINT) == signal.SIG_IGN
    assert signal.getsignal(signal.SIGINT) == before
