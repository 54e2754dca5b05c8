import os

import pytest


def pytest_collection_modifyitems(config, items):
    """Integration tests build real namespaces: they need root, and say so when skipped."""
    if os.geteuid() == 0:
        return
    skip = pytest.mark.skip(reason="integration test: builds network namespaces, needs root")
    for item in items:
        if "integration" in item.keywords:
            item.add_marker(skip)
