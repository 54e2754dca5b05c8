"""What `kemu validate` says about each kind of mistake a user makes: the exact output and exit
code, for a corpus of bad scenarios (errors/*.yaml, each saying its mistake on its first line).
Nothing is built: validation is pure."""

from pathlib import Path

import pytest
from click.testing import CliRunner

from kemu.cli import main

HERE = Path(__file__).parent / "errors"
CASES = sorted(HERE.glob("*.yaml"))


@pytest.mark.parametrize("path", CASES, ids=lambda p: p.stem)
def test_validate_output(path, golden, monkeypatch):
    monkeypatch.chdir(HERE)  # messages name the file as the user gave it
    result = CliRunner().invoke(main, ["validate", path.name])
    assert result.exception is None or isinstance(result.exception, SystemExit), \
        result.exception
    golden(path.with_suffix(".out"), f"exit {result.exit_code}\n{result.output}")


def test_the_corpus_covers_every_kind_of_mistake():
    assert len(CASES) >= 30
