"""Markers by folder: everything under tests/integration/ runs against a real service on
Ray, and everything under tests/cluster/ builds a multi-host Ray cluster of its own, so
`pytest -m "not integration and not cluster"` runs the library's tests alone.

The unit tests run first: they fail fastest, and the session's service (launched when
collection ends, see tests/integration/conftest.py) starts up while they run."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.browser import BrowserMissing, Chromium

TESTS = Path(__file__).parent
ORDER = {"integration": 1, "cluster": 2}


def _folder(item: pytest.Item) -> str:
    return item.path.relative_to(TESTS).parts[0]


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    for item in items:
        if _folder(item) in ORDER:
            item.add_marker(getattr(pytest.mark, _folder(item)))
    items.sort(key=lambda item: ORDER.get(_folder(item), 0))  # stable: order kept


@pytest.fixture(scope="module")
def chromium() -> Iterator[Chromium]:
    """One headless Chromium for the pages a test module opens. Missing, the tests that
    need it fail (never skip) saying how to install it: the report's promise of no request
    elsewhere is only checked in a real browser. Per module, not per session: Playwright's
    sync API keeps an event loop running in this thread while it is started, and other
    modules' tests call asyncio.run()."""
    try:
        browser = Chromium()
    except BrowserMissing as err:
        pytest.fail(f"headless Chromium check unavailable: {err}", pytrace=False)
    try:
        yield browser
    finally:
        browser.close()
