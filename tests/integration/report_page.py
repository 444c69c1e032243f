"""A model's report fetched from the service and opened in headless Chromium, as a person
saves it (`reasoning report`) and opens it; page and screenshot kept in test-artifacts/."""

from __future__ import annotations

from pathlib import Path

import httpx

from tests.browser import Chromium, PageCheck

ARTIFACTS = Path(__file__).resolve().parents[2] / "test-artifacts"


def report_in_browser(
    http: httpx.Client, chromium: Chromium, model_id: str, name: str
) -> tuple[str, PageCheck]:
    """The report's HTML and what opening it did."""
    response = http.get(f"/v1/models/{model_id}/report")
    assert response.status_code == 200, response.text
    ARTIFACTS.mkdir(exist_ok=True)
    saved = ARTIFACTS / f"{name}.html"
    saved.write_text(response.text, encoding="utf-8")
    return response.text, chromium.check(saved.as_uri(), ARTIFACTS / f"{name}.png")
