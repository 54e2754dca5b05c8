"""The CLI's contract for bad input: a clear message and exit code 2, nothing created."""

import yaml
from click.testing import CliRunner

from kemu.cli import main
from tests.unit.scenario.test_scenario import scenario


def test_validate_ok(tmp_path):
    path = tmp_path / "s.yaml"
    path.write_text(yaml.safe_dump(scenario()))
    result = CliRunner().invoke(main, ["validate", str(path)])
    assert result.exit_code == 0, result.output
    assert "valid" in result.output


def test_validate_invalid_exits_2_naming_file_and_field(tmp_path):
    doc = scenario()
    doc["measurements"][0]["to"] = {"pod": "web-7"}
    path = tmp_path / "s.yaml"
    path.write_text(yaml.safe_dump(doc))
    result = CliRunner().invoke(main, ["validate", str(path)])
    assert result.exit_code == 2
    assert f"{path}: measurements[0].to.pod: no pod named 'web-7'" in result.output


def test_run_with_invalid_scenario_exits_2_before_building(tmp_path):
    path = tmp_path / "s.yaml"
    path.write_text(yaml.safe_dump(scenario(cluster__cni={"plugin": "nope"})))
    result = CliRunner().invoke(main, ["run", str(path), "--out", str(tmp_path / "out")])
    assert result.exit_code == 2
    assert "unknown CNI backend 'nope'" in result.output
    assert not (tmp_path / "out").exists()


def test_missing_file_exits_2(tmp_path):
    result = CliRunner().invoke(main, ["validate", str(tmp_path / "none.yaml")])
    assert result.exit_code == 2 and "cannot read scenario" in result.output


def test_plugins_lists_shipped_backends():
    result = CliRunner().invoke(main, ["plugins"])
    assert result.exit_code == 0 and "flannel-vxlan" in result.output
