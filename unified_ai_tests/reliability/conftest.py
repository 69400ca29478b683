"""Every test here proves a guarantee under faults, load or generated input (`-m reliability`)."""

import pytest


def pytest_collection_modifyitems(config, items):
    for item in items:
        if "/reliability/" in str(item.fspath):
            item.add_marker(pytest.mark.reliability)
