"""Open a page in a real headless Chromium and say what happened: errors, requests, charts.

Playwright drives Debian's `chromium` (tests/install_chromium.sh installs it); Playwright's
own browser download is never used. Every request that leaves the page's own origin is
recorded and aborted, so a check never reaches the network, and a page that tries to is
caught. A chart is a `figure.chart` holding an `<svg>`; it drew when that svg has a
non-empty box on the page and something to show (a path, line, rect or text).
"""

from __future__ import annotations

import shutil
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

INSTALL_HINT = "run tests/install_chromium.sh (and pip install playwright into .venv)"
CHROMIUM_ARGS = [
    "--no-sandbox",  # the tests run as root in a container: no user namespaces
    "--disable-dev-shm-usage",  # a container's /dev/shm is often 64 MB
    "--disable-gpu",
    "--no-first-run",
    "--disable-background-networking",  # no update, safe-browsing or metrics calls
    "--disable-component-update",
    "--disable-sync",
    "--metrics-recording-only",
    "--no-default-browser-check",
]
CHART_STATE = """
() => Array.from(document.querySelectorAll('figure.chart')).map((fig) => {
  const svg = fig.querySelector('svg');
  if (!svg) return {drew: false, why: 'no svg'};
  const box = svg.getBoundingClientRect();
  const marks = svg.querySelectorAll('path, line, rect, text, polyline, polygon, use').length;
  return {drew: box.width > 0 && box.height > 0 && marks > 0,
          width: box.width, height: box.height, marks: marks};
})
"""


class BrowserMissing(RuntimeError):
    """Chromium or Playwright is not installed; the message says how to install them."""


@dataclass
class PageCheck:
    """What opening one page did."""

    url: str
    title: str = ""
    console_errors: list[str] = field(default_factory=list)
    page_errors: list[str] = field(default_factory=list)
    requests: list[str] = field(default_factory=list)
    """Every request the page made, its own URL included."""
    off_page_requests: list[str] = field(default_factory=list)
    """Requests to anything but the page itself (and data: URIs); all were aborted."""
    charts: int = 0
    charts_drawn: int = 0
    chart_boxes: list[dict[str, Any]] = field(default_factory=list)

    @property
    def clean(self) -> bool:
        """No errors, nothing fetched from elsewhere, every chart drawn."""
        return (not self.console_errors and not self.page_errors
                and not self.off_page_requests and self.charts == self.charts_drawn)


def chromium_path() -> str:
    """The `chromium` on PATH, or BrowserMissing saying how to get it."""
    path = shutil.which("chromium")
    if path is None:
        raise BrowserMissing(f"no `chromium` on PATH: {INSTALL_HINT}")
    return path


def _origin(url: str) -> tuple[str, str]:
    parts = urlsplit(url)
    return parts.scheme, parts.netloc


def _same_page(url: str, page_url: str) -> bool:
    """The page itself (any fragment), or an inline data: URI."""
    if url.startswith("data:"):
        return True
    return url.split("#", 1)[0] == page_url.split("#", 1)[0]


class Chromium:
    """One headless Chromium for many pages: starting it takes seconds, a page a moment.
    Each page gets a context of its own (no cache, cookies or storage shared)."""

    def __init__(self, timeout_ms: int = 30_000) -> None:
        try:
            from playwright.sync_api import sync_playwright
        except ImportError:
            raise BrowserMissing(f"the playwright package is missing: {INSTALL_HINT}") from None
        self.timeout_ms = timeout_ms
        self._playwright = sync_playwright().start()
        try:
            self._browser = self._playwright.chromium.launch(
                executable_path=chromium_path(), headless=True, args=CHROMIUM_ARGS,
                timeout=timeout_ms)
        except BaseException:
            self._playwright.stop()
            raise

    def close(self) -> None:
        try:
            self._browser.close()
        finally:
            self._playwright.stop()

    def __enter__(self) -> Chromium:
        return self

    def __exit__(self, *_: object) -> None:
        self.close()

    def check(
        self,
        url: str,
        screenshot: Path | None = None,
        *,
        width: int = 1200,
        height: int = 900,
        headers: dict[str, str] | None = None,
    ) -> PageCheck:
        """Load `url`, wait until the network is idle, and report; save a full-page PNG to
        `screenshot` when given. `headers` go with every request the page is allowed to
        make (e.g. a bearer token for the service's own report route).

        Requests to another origin are aborted (and recorded); requests within the page's
        origin are allowed (a page served over HTTP may fetch its own resources) but still
        listed in `off_page_requests` unless they are the page itself.
        """
        from playwright.sync_api import TimeoutError as PlaywrightTimeout

        result = PageCheck(url=url)
        origin = _origin(url)

        def route(route: Any) -> None:
            target = route.request.url
            if target.startswith("data:") or (
                _origin(target) == origin and origin[0] != "file"
            ) or _same_page(target, url):
                route.continue_()
            else:
                route.abort("blockedbyclient")

        context = self._browser.new_context(viewport={"width": width, "height": height},
                                            service_workers="block",
                                            extra_http_headers=headers or {})
        try:
            page = context.new_page()
            page.on("request", lambda r: result.requests.append(r.url))
            page.on("console", lambda m: result.console_errors.append(m.text)
                    if m.type == "error" else None)
            page.on("pageerror", lambda e: result.page_errors.append(str(e)))
            page.route("**/*", route)
            page.goto(url, wait_until="load", timeout=self.timeout_ms)
            try:
                page.wait_for_load_state("networkidle", timeout=5_000)
            except PlaywrightTimeout:
                pass  # a page still fetching after 5 s: its requests are reported below
            result.title = page.title()
            boxes = page.evaluate(CHART_STATE)
            result.chart_boxes = boxes
            result.charts = len(boxes)
            result.charts_drawn = sum(1 for b in boxes if b.get("drew"))
            if screenshot is not None:
                screenshot.parent.mkdir(parents=True, exist_ok=True)
                page.screenshot(path=str(screenshot), full_page=True)
        finally:
            context.close()
        result.off_page_requests = [r for r in result.requests if not _same_page(r, url)]
        return result


def check_page(url: str, screenshot: Path | None = None, **options: Any) -> PageCheck:
    """One page in a Chromium of its own (see `Chromium.check`)."""
    with Chromium() as chromium:
        return chromium.check(url, screenshot, **options)
