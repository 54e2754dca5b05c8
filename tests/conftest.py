import difflib
import os
from pathlib import Path

import pytest


def pytest_addoption(parser):
    parser.addoption("--update-golden", action="store_true",
                     help="rewrite the golden files under tests/golden/ from the code as it is")


def pytest_collection_modifyitems(config, items):
    """Integration tests build real namespaces: they need root, and say so when skipped."""
    if os.geteuid() == 0:
        return
    skip = pytest.mark.skip(reason="integration test: builds network namespaces, needs root")
    for item in items:
        if "integration" in item.keywords:
            item.add_marker(skip)


@pytest.fixture
def golden(request):
    """golden(path, text): `text` must equal the file at `path`; with --update-golden the
    file is (re)written instead. A difference shows as a unified diff: a reviewer reads a
    behaviour change there."""
    update = request.config.getoption("--update-golden")

    def check(path: Path, actual: str) -> None:
        if update:
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_text(actual)
            return
        assert path.exists(), f"{path} is missing: run pytest --update-golden to write it"
        expected = path.read_text()
        if actual != expected:
            diff = "".join(difflib.unified_diff(expected.splitlines(keepends=True),
                                                actual.splitlines(keepends=True),
                                                str(path), "now"))
            pytest.fail(f"{path} differs (pytest --update-golden rewrites it):\n{diff}",
                        pytrace=False)

    return check
