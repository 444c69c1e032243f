"""The report's sections as HTML: the model card, metrics, the search, what the model learnt
and the example rows; every value from the card is escaped here."""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from functools import partial
from typing import TYPE_CHECKING, Any

from reasoning.report.charts import (
    best_index,
    importance_chart,
    pair_chart,
    shape_chart,
    trial_score,
    trials_chart,
    waterfall_chart,
)
from reasoning.report.drawing import draw_svg
from reasoning.report.words import (
    FAMILY_NAMES,
    KIND_NAMES,
    LOWER_IS_BETTER,
    METRIC_NAMES,
    ReportTask,
    clip_text,
    created_text,
    esc,
    filter_text,
    fmt_number,
    fmt_param,
    fmt_params,
    level_text,
    safe_url,
)
from reasoning.schemas import ModelCard, PredictResponse

if TYPE_CHECKING:
    from matplotlib.figure import Figure


def _chart(svg: str, caption: str, kind: str, **data: str) -> str:
    attrs = "".join(f' data-{k}="{esc(v)}"' for k, v in data.items())
    return (f'<figure class="chart {kind}"{attrs}>\n{svg}\n'
            f"<figcaption>{caption}</figcaption>\n</figure>")


def _table(head: Sequence[str], rows: Iterable[Sequence[str]], numeric: Iterable[int] = (),
           row_class: Callable[[int], str] | None = None, css: str = "") -> str:
    """An HTML table from cells that are already HTML (the callers escape)."""
    numeric = set(numeric)
    ths = "".join(f'<th{" class=num" if i in numeric else ""}>{h}</th>'
                  for i, h in enumerate(head))
    body = []
    for r, cells in enumerate(rows):
        tds = "".join(f'<td{" class=num" if i in numeric else ""}>{c}</td>'
                      for i, c in enumerate(cells))
        cls = row_class(r) if row_class else ""
        body.append(f'<tr{f" class={cls}" if cls else ""}>{tds}</tr>')
    klass = f' class="{css}"' if css else ""
    return f"<table{klass}><thead><tr>{ths}</tr></thead><tbody>{''.join(body)}</tbody></table>"


def _facts(pairs: Iterable[tuple[str, str]]) -> str:
    items = "".join(f"<dt>{k}</dt><dd>{v}</dd>" for k, v in pairs)
    return f'<dl class="facts">{items}</dl>'


def _teacher_facts(teacher: dict[str, Any]) -> str:
    """The teacher's kind and what the card keeps of it; header values never."""
    kind = teacher.get("kind")
    described = {
        "model": "a model of this server, labelling MUNGE synthetic rows and the real rows",
        "url": "an external teacher over HTTP, labelling MUNGE synthetic rows and the real rows",
        "diffmodel": "a DiffModel over HTTP: values and Jacobians, Sobolev fit (no search)",
    }.get(str(kind), "a teacher")
    pairs = [("kind", f"<code>{esc(kind)}</code> — {esc(described)}")]
    for key, value in teacher.items():
        if key == "kind":
            continue
        if key.lower() == "headers" or "header" in key.lower():
            names = sorted(value) if isinstance(value, dict) else []
            shown = ", ".join(esc(n) for n in names) if names else "present"
            pairs.append((esc(key), f"{shown} (values not shown)"))
        elif "url" in key.lower() and isinstance(value, str):
            pairs.append((esc(key), f"<code>{esc(safe_url(value))}</code>"))
        elif key == "model_id":
            pairs.append(("teacher model id", f"<code>{esc(value)}</code>"))
        elif isinstance(value, list):
            pairs.append((esc(key), esc(", ".join(str(v) for v in value)) or "—"))
        else:
            pairs.append((esc(key), f"<code>{esc(fmt_param(value))}</code>"))
    return _facts(pairs)


def card_section(card: ModelCard, task: ReportTask) -> str:
    rows = card.rows
    filt = filter_text(card.filter)
    pairs = [
        ("model id", f"<code>{esc(card.model_id)}</code>"),
        ("kind", esc(KIND_NAMES.get(card.kind, card.kind))),
        ("family", f"{esc(FAMILY_NAMES.get(card.family, card.family))} "
                   f"(<code>{esc(card.family)}</code>)"),
        ("task", esc("classification" if task.classification else "regression")
         + (f" into {esc(', '.join(level_text(c) for c in task.classes))}"
            if task.classes else "")),
        ("label column", f"<code>{esc(task.label)}</code>" if task.label
         else "none (the teacher gives the target)"),
        ("created", esc(created_text(card.created_at))),
        ("job id", f"<code>{esc(card.job_id)}</code>"),
        ("tenant", esc(card.tenant)),
        ("random state", esc(card.random_state)),
    ]
    lineage = [
        ("dataset id", f"<code>{esc(card.dataset_id)}</code>"),
        ("filter", f"<code>{esc(filt)}</code>" if filt else "none (every row)"),
        ("rows", f"{rows.total:,} in the dataset, {rows.after_filter:,} after the filter"),
        ("split", f"{rows.train:,} train / {rows.validation:,} validation / "
                  f"{rows.test:,} test"),
        ("how", esc(card.summary)),
    ]
    features = _table(
        ["column", "dtype", "importance"],
        [[f"<code>{esc(f.name)}</code>", esc(f.dtype),
          fmt_number(card.explanation.importance.get(f.name))] for f in card.features],
        numeric=[2],
    )
    params = (
        _table(["hyperparameter", "value"],
               [[f"<code>{esc(k)}</code>", f"<code>{esc(fmt_param(v))}</code>"]
                for k, v in card.hyperparameters.items()], css="hyperparameters")
        if card.hyperparameters else '<p class="note">The family\'s defaults (none chosen).</p>'
    )
    teacher = (
        f"<h3>Teacher</h3>{_teacher_facts(card.teacher)}" if card.teacher is not None
        else ""
    )
    return (
        '<section id="card"><h2>Model card</h2>'
        f"{_facts(pairs)}<h3>Data lineage</h3>{_facts(lineage)}"
        f"<h3>Hyperparameters</h3>{params}{teacher}"
        f"<h3>Input columns ({len(card.features)})</h3>{features}</section>"
    )


def _metric_name(key: str) -> str:
    return esc(METRIC_NAMES.get(key, key))


def _direction(key: str) -> str:
    return "lower is better" if key in LOWER_IS_BETTER else "higher is better"


def metrics_section(card: ModelCard) -> str:
    m = card.metrics
    parts = ['<section id="metrics"><h2>Metrics</h2>']
    n_test = f"{card.rows.test:,} test rows"
    if card.teacher is None:
        if m.test:
            parts.append(f'<p class="note">On the {n_test}, never seen by the search.</p>')
            parts.append(_table(
                ["metric", "test", ""],
                [[_metric_name(k), fmt_number(v), _direction(k)] for k, v in m.test.items()],
                numeric=[1], css="metrics-test"))
        else:
            parts.append('<p class="note">No test metrics on this card.</p>')
        parts.append("</section>")
        return "".join(parts)
    value_fidelity = {k: v for k, v in m.fidelity.items() if k != "gradient_cosine"}
    parts.append(f"<h3>Fidelity to the teacher</h3><p class=note>How closely the student "
                 f"reproduces the teacher on the {n_test}.</p>")
    if value_fidelity:
        parts.append(_table(
            ["metric", "student vs teacher", ""],
            [[_metric_name(k), fmt_number(v), _direction(k)] for k, v in value_fidelity.items()],
            numeric=[1], css="metrics-fidelity"))
    else:
        parts.append('<p class="note">No fidelity metrics on this card.</p>')
    parts.append("<h3>Against the labels</h3>")
    if m.test:
        parts.append(
            "<p class=note>The distilled student beside the same family and configuration "
            "fitted on the labels alone (label-only), both on the test rows; the better "
            "value is in bold.</p>")
        names = list(dict.fromkeys([*m.test, *m.label_only]))
        rows = []
        for k in names:
            student, base = m.test.get(k), m.label_only.get(k)
            better = _better(k, student, base)
            cells = [fmt_number(student), fmt_number(base)]
            if better is not None:
                cells[better] = f"<strong>{cells[better]}</strong>"
            rows.append([_metric_name(k), *cells, _direction(k)])
        parts.append(_table(["metric", "distilled student", "label-only", ""], rows,
                            numeric=[1, 2], css="metrics-compare"))
        if not m.label_only:
            parts.append('<p class="note">No label-only baseline (too few labelled rows or '
                         "one class).</p>")
    else:
        parts.append('<p class="note">No labels to compare against (a teacher-only fit, or '
                     "labels the student's outputs cannot be compared with).</p>")
    if card.teacher.get("kind") == "diffmodel":
        cosine = m.fidelity.get("gradient_cosine")
        parts.append('<section id="gradients"><h3>Gradient agreement</h3>')
        if cosine is None:
            parts.append('<p class="note">Not measured: no test row had a usable gradient '
                         "pair.</p>")
        else:
            parts.append(
                f'<p>Mean cosine between the student\'s and the teacher\'s gradients over the '
                f'{n_test}: <strong class="gradient-cosine">{fmt_number(cosine)}</strong> '
                "(1: the same direction everywhere, 0: unrelated, −1: opposite). Non-numeric "
                "columns have no gradient and are left out.</p>")
        parts.append("</section>")
    parts.append("</section>")
    return "".join(parts)


def _better(key: str, a: float | None, b: float | None) -> int | None:
    if a is None or b is None or a == b:
        return None
    lower = key in LOWER_IS_BETTER
    return 0 if (a < b) == lower else 1


def trials_section(card: ModelCard) -> str:
    trials = card.trials
    parts = ['<section id="trials"><h2>Hyperparameter search</h2>']
    if not trials:
        why = (" A DiffModel teacher's student is fitted in closed form (Sobolev), without a "
               "search." if card.teacher and card.teacher.get("kind") == "diffmodel" else "")
        parts.append(f'<p class="note">No trials on this card.{esc(why)}</p></section>')
        return "".join(parts)
    best = best_index(trials)
    parts.append(
        f'<p class="note">{len(trials)} trials scored by <code>{esc(card.score_name)}</code> on '
        "the validation rows (lower is better); the best was refitted on train + validation."
        "</p>")
    if best is None:
        parts.append('<p class="note">No trial has a score: every one failed.</p>')
    else:
        parts.append(_chart(
            draw_svg(lambda: trials_chart(trials, card.score_name), "trials"),
            f"{esc(card.score_name)} per trial; the star marks the chosen one, the dashed line "
            "the best score so far.", "trials-chart"))
    rows = []
    for i, t in enumerate(trials):
        if (score := trial_score(t)) is not None:
            outcome = fmt_number(score) + (" ★ best" if i == best else "")
        elif t.error:
            outcome = f'<span class="error">{esc(clip_text(t.error, 300))}</span>'
        else:
            outcome = "no score"
        rows.append([str(i + 1), esc(t.family or card.family),
                     f"<code>{esc(fmt_params(t.params))}</code>", outcome, esc(t.node or "—")])
    parts.append(_table(["#", "family", "params", f"{esc(card.score_name)} or error", "node"],
                        rows, numeric=[0], css="trials",
                        row_class=lambda r: "best" if r == best else ""))
    parts.append("</section>")
    return "".join(parts)


def explanation_section(card: ModelCard, task: ReportTask) -> str:
    importance = card.explanation.importance
    parts = ['<section id="explanation"><h2>What the model learnt</h2>']
    if importance:
        parts.append(_chart(
            draw_svg(lambda: importance_chart(importance, task.importance_unit), "importance"),
            "Global importance: the mean absolute contribution of each column over the test "
            f"rows ({esc(task.importance_unit)}).", "importance-chart"))
    else:
        parts.append('<p class="note">No importance on this card.</p>')
    parts.append("<h3>Shape of each column</h3>")
    multi_note = (
        " One series per class: its score before the softmax." if task.multiclass
        else "")
    parts.append(
        '<p class="note">How each column moves the output: the mean contribution of the '
        "column among the test rows at each value (numbers in up to 20 bins, at the bin's "
        f"mean; categories per level).{esc(multi_note)}</p>")
    parts.append('<div class="grid">')
    for n, feature in enumerate(card.features):
        shape = card.explanation.shapes.get(feature.name) or {}
        values = shape.get("contribution", shape.get("y"))
        if not shape.get("x") or not isinstance(values, list) or len(values) != len(shape["x"]):
            parts.append(f'<p class="note">No shape for <code>{esc(feature.name)}</code>.</p>')
            continue
        note_holder: list[str] = []

        def make(feature: Any = feature, shape: dict[str, Any] = shape,
                 holder: list[str] = note_holder) -> Figure:
            fig, note = shape_chart(feature.name, feature.dtype, shape, task.shape_unit,
                                    task.classes if task.multiclass else None)
            holder.append(note)
            return fig

        svg = draw_svg(make, f"shape{n}")
        by_class = task.multiclass and bool(shape.get("by_class"))
        target = "each class's score" if by_class else (
            "the predicted class's score" if task.multiclass else esc(task.shape_unit))
        parts.append(_chart(
            svg,
            f"<code>{esc(feature.name)}</code> ({esc(feature.dtype)}): its contribution to "
            f"{target} at each value.{esc(''.join(note_holder))}",
            "shape-chart", column=feature.name))
    parts.append("</div>")
    parts.append(_pairs_part(card, task))
    parts.append("</section>")
    return "".join(parts)


def _pairs_part(card: ModelCard, task: ReportTask) -> str:
    """The pair terms of a GA²M: their importance, and a heat map of each one's surface."""
    pairs = card.explanation.pairs
    if not pairs:
        return ""
    target = esc(task.shape_unit) if not task.multiclass else "the score of the class named"
    parts = [
        "<h3>Pairs of columns that act together</h3>",
        '<p class="note">Interaction terms: what two columns add together beyond what each '
        "adds alone. Each column's reason (and its shape above) holds half of each pair it "
        "is in; predict with <code>pairs: true</code> to see the pairs as reasons of their "
        "own.</p>",
        _table(["columns", "importance"],
               [[esc(" & ".join(t.columns)), fmt_number(t.importance)] for t in pairs],
               numeric=[1], css="pairs"),
        '<div class="grid">',
    ]
    for n, term in enumerate(pairs):
        shown = term.surface.get("class")
        scope = f" ({esc(level_text(shown))})" if shown is not None else ""
        parts.append(_chart(
            draw_svg(partial(pair_chart, term, task.shape_unit), f"pair{n}"),
            f"<code>{esc(term.columns[0])}</code> and <code>{esc(term.columns[1])}</code>: "
            f"their joint contribution to {target}{scope} at each pair of values.",
            "pair-chart", columns=" & ".join(term.columns)))
    parts.append("</div>")
    return "".join(parts)


def _probabilities(response: PredictResponse, i: int, predicted: Any) -> str:
    if not response.probabilities or not response.classes:
        return ""
    rows = []
    for c, p in zip(response.classes, response.probabilities[i], strict=False):
        bar = f'<span class="bar" style="width:{max(p, 0.0) * 6:.2f}em"></span>'
        rows.append([esc(level_text(c)) + ("&nbsp;◀" if c == predicted else ""),
                     f"{p:.3f}", bar])
    return _table(["class", "probability", ""], rows, numeric=[1], css="probabilities")


def examples_section(card: ModelCard, task: ReportTask, examples: PredictResponse | None) -> str:
    parts = ['<section id="examples"><h2>Why: example rows</h2>']
    if examples is None or not examples.explanations:
        parts.append('<p class="note no-examples">This card keeps no example rows (it was '
                     "made before reports explained examples), so there is nothing to explain "
                     "row by row.</p></section>")
        return "".join(parts)
    parts.append(
        '<p class="note">Rows of the test split. Each chart starts at the base value (the '
        "average output), adds each column's contribution for this row (orange raises, blue "
        "lowers; largest first), and ends at the model's output.</p>")
    for i, row in enumerate(examples.explanations):
        predicted = examples.predictions[i] if i < len(examples.predictions) else None
        if task.classification:
            unit = f"{task.unit} of class {level_text(predicted)}"
            if task.multiclass:
                unit += " (before softmax)"
            side = (f"<p>predicted class</p><p class=value>{esc(level_text(predicted))}</p>"
                    f"{_probabilities(examples, i, predicted)}")
        else:
            unit = task.unit
            of = f" of <code>{esc(task.label)}</code>" if task.label else ""
            side = f"<p>prediction{of}</p><p class=value>{esc(fmt_number(predicted))}</p>"
        if row.rule:
            side += f"<p>rule: <code>{esc(row.rule)}</code></p>"
        svg = draw_svg(partial(waterfall_chart, row, unit), f"why{i}")
        caption = (
            f"Example {i + 1}: from the base value {esc(fmt_number(row.base_value))} to the "
            f"output {esc(fmt_number(row.output))} ({esc(unit)}).")
        parts.append(f'<div class="example">{_chart(svg, caption, "waterfall-chart")}'
                     f'<aside class="prediction">{side}</aside></div>')
    parts.append("</section>")
    return "".join(parts)
