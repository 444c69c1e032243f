"""Markers by folder: everything under tests/integration/ runs against a real service on
Ray, so `pytest -m "not integration"` runs the library's tests alone, without Ray.

The unit tests run first: they fail fastest, and the session's service (launched when
collection ends, see tests/integration/conftest.py) starts up while they run."""

from __future__ import annotations

from pathlib import Path

import pytest

INTEGRATION = Path(__file__).parent / "integration"


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    for item in items:
        if INTEGRATION in item.path.parents:
            item.add_marker(pytest.mark.integration)
    items.sort(key=lambda item: INTEGRATION in item.path.parents)  # stable: order kept
