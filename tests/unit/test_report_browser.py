"""The report in a real headless Chromium (tests/browser.py): it loads without errors, asks no
other host for anything, and every chart draws. A page that does reach out is caught.

Chromium and Playwright are requirements of the suite, not options: when either is missing
the tests fail and say how to install them (tests/install_chromium.sh).
"""

from __future__ import annotations

from pathlib import Path

from reasoning.report import render_report
from tests.browser import Chromium
from tests.unit import report_cards

ARTIFACTS = Path(__file__).resolve().parents[2] / "test-artifacts"
"""Screenshots, for a person to look at after a run (not checked in)."""


def test_report_loads_cleanly_and_every_chart_draws(tmp_path: Path, chromium: Chromium) -> None:
    built = report_cards.regression()
    card = built.card
    path = tmp_path / "report.html"
    path.write_text(render_report(card, built.examples), encoding="utf-8")
    screenshot = ARTIFACTS / "report-regression.png"
    screenshot.unlink(missing_ok=True)

    check = chromium.check(path.as_uri(), screenshot)

    assert check.off_page_requests == [], "the page asked another place for something"
    assert check.console_errors == []  # a Content-Security-Policy refusal shows up here
    assert check.page_errors == []
    assert check.requests == [path.as_uri()]
    expected = (1 + 1 + len(card.features) + len(card.explanation.pairs)  # trials, importance, ...
                + len(card.examples))
    assert check.charts == expected > 0
    assert check.charts_drawn == check.charts, check.chart_boxes
    assert check.title.startswith("Model report") and "price" in check.title
    assert screenshot.stat().st_size > 10_000


def test_a_page_that_reaches_out_or_breaks_is_caught(tmp_path: Path, chromium: Chromium) -> None:
    """The checker itself: an off-page image (aborted, recorded), a console error, a thrown
    error, and a chart with nothing in it."""
    path = tmp_path / "bad.html"
    path.write_text(
        "<!DOCTYPE html><html><head><title>bad</title></head><body>"
        '<img src="http://example.invalid/x.png" alt="">'
        "<script>console.error('boom'); throw new Error('thrown');</script>"
        '<figure class="chart"><svg width="100" height="50"><rect width="10" height="10"/>'
        "</svg></figure>"
        '<figure class="chart"><svg width="0" height="0"></svg></figure>'
        "</body></html>",
        encoding="utf-8",
    )
    check = chromium.check(path.as_uri())
    assert check.off_page_requests == ["http://example.invalid/x.png"]
    assert "boom" in check.console_errors
    assert any("thrown" in e for e in check.page_errors)
    assert (check.charts, check.charts_drawn) == (2, 1)
    assert not check.clean
