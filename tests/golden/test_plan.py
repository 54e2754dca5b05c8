"""The checked plan of every shipped scenario: what `kemu run` would build and measure, per
run of its matrix (placement, allocated addresses, resolved measurement ends, events). Pure."""

from pathlib import Path

import pytest

from kemu.scenario import load_runs

from .plain import dumps

HERE = Path(__file__).parent / "plan"
ROOT = Path(__file__).resolve().parents[2]
SCENARIOS = sorted((ROOT / "scenarios").glob("*.yaml"))


@pytest.mark.parametrize("path", SCENARIOS, ids=lambda p: p.stem)
def test_plan(path, golden, monkeypatch):
    monkeypatch.chdir(ROOT)
    runs = load_runs(path.relative_to(ROOT))
    golden(HERE / f"{path.stem}.json",
           dumps([{"params": run.params, "scenario": run.scenario} for run in runs]))
