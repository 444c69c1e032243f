"""A model's report: its card, metrics, search, explanation and a few explained rows, as one
self-contained HTML page.

The page is opened from wherever it was saved or served, so it asks no other host for
anything: no scripts, fonts or images from elsewhere (a Content-Security-Policy says so to
the browser as well), and every chart is inline SVG drawn with matplotlib's object API.
Text in the SVG stays text (`svg.fonttype: none`), which keeps the page small and its
labels searchable. Everything the card holds is user data (column names, category levels,
error texts) and is escaped; matplotlib escapes its SVG text, and math parsing is off so
a `$` in a label is shown as it is.

The package by noun: `words` (numbers, values and filters as text, escaping), `drawing` (a
figure to inline SVG), `charts` (each chart), `sections` (the page's parts as HTML) and `page`
(the style sheet, the CSP and `render_report`).
"""

from reasoning.report.page import CSP, render_report
from reasoning.report.words import filter_text, fmt_number, safe_url

__all__ = ["CSP", "filter_text", "fmt_number", "render_report", "safe_url"]
