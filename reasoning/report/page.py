"""The page: its style sheet, its Content-Security-Policy and `render_report`, which puts the
sections together."""

from __future__ import annotations

from reasoning.report.sections import (
    card_section,
    examples_section,
    explanation_section,
    metrics_section,
    trials_section,
)
from reasoning.report.words import KIND_NAMES, ReportTask, created_text, esc
from reasoning.schemas import ModelCard, PredictResponse

_CSS = """
:root { color-scheme: light; }
body { font: 15px/1.45 system-ui, -apple-system, "Segoe UI", "DejaVu Sans", sans-serif;
  color: #1b1b1b; background: #fff; max-width: 1100px; margin: 0 auto; padding: 1.5rem; }
h1 { font-size: 1.6rem; margin: 0 0 .3rem; }
h2 { font-size: 1.25rem; border-bottom: 2px solid #e3e3e3; padding-bottom: .2rem;
  margin-top: 2.2rem; }
h3 { font-size: 1.05rem; margin: 1.4rem 0 .4rem; }
.subtitle { color: #555; margin: 0 0 1rem; }
code { font-family: ui-monospace, "DejaVu Sans Mono", Menlo, Consolas, monospace;
  font-size: .9em; overflow-wrap: anywhere; }
dl.facts { display: grid; grid-template-columns: max-content 1fr; gap: .25rem 1rem;
  margin: .5rem 0; }
dl.facts dt { color: #555; }
dl.facts dd { margin: 0; overflow-wrap: anywhere; }
table { border-collapse: collapse; margin: .5rem 0 1rem; font-size: .92rem; }
th, td { border-bottom: 1px solid #e3e3e3; padding: .3rem .7rem; text-align: left;
  vertical-align: top; }
th { background: #f5f5f5; }
td.num, th.num { text-align: right; font-variant-numeric: tabular-nums; }
.error { color: #a4262c; overflow-wrap: anywhere; }
tr.best td { background: #fff6e0; font-weight: 600; }
.note { color: #555; font-size: .92rem; }
.grid { display: grid; grid-template-columns: repeat(auto-fill, minmax(440px, 1fr));
  gap: 1rem; }
figure.chart { margin: .8rem 0; break-inside: avoid; page-break-inside: avoid; }
figure.chart svg { display: block; width: 100%; max-width: 760px; height: auto; }
figure.chart svg * { stroke-linejoin: round; stroke-linecap: butt; }
figcaption { color: #444; font-size: .9rem; margin-top: .3rem; }
.example { display: flex; flex-wrap: wrap; gap: 1rem 2rem; align-items: flex-start;
  border-top: 1px solid #eee; padding-top: .5rem; }
.example figure.chart { flex: 1 1 560px; }
.prediction { flex: 0 1 260px; }
.prediction .value { font-size: 1.3rem; font-weight: 700; }
.bar { display: inline-block; height: .7em; background: #1f6fb4; vertical-align: middle; }
@media print {
  body { max-width: none; padding: 0; font-size: 11pt; print-color-adjust: exact;
    -webkit-print-color-adjust: exact; }
  h2 { break-after: avoid; page-break-after: avoid; }
  .grid { grid-template-columns: 1fr 1fr; }
}
@page { margin: 14mm; }
"""

CSP = (
    "default-src 'none'; style-src 'unsafe-inline'; img-src data:; "
    "base-uri 'none'; form-action 'none'"
)
"""The page's Content-Security-Policy (in a meta tag; a server may send it as a header too):
nothing loads from anywhere, inline styles only."""


def render_report(card: ModelCard, examples: PredictResponse | None) -> str:
    """The whole report as one HTML document (UTF-8), asking no other host for anything.

    `examples` is the card's example rows scored with every reason (`top_k=None`); None,
    or no explanations, for a card without examples.
    """
    task = ReportTask(card)
    title = f"Model report — {task.title(card)}"
    body = "".join([
        f"<header><h1>{esc(task.title(card))}</h1>"
        f'<p class="subtitle">{esc(KIND_NAMES.get(card.kind, card.kind))} · model '
        f"<code>{esc(card.model_id)}</code> · {esc(created_text(card.created_at))}</p></header>",
        card_section(card, task),
        metrics_section(card),
        trials_section(card),
        explanation_section(card, task),
        examples_section(card, task, examples),
    ])
    return (
        "<!DOCTYPE html>\n<html lang=\"en\">\n<head>\n<meta charset=\"utf-8\">\n"
        f'<meta http-equiv="Content-Security-Policy" content="{CSP}">\n'
        '<meta name="viewport" content="width=device-width, initial-scale=1">\n'
        f"<title>{esc(title)}</title>\n<style>{_CSS}</style>\n</head>\n"
        f"<body>\n{body}\n</body>\n</html>\n"
    )
