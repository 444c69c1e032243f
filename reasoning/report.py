"""A model's report: its card, metrics, search, explanation and a few explained rows, as one
self-contained HTML page.

The page is opened from wherever it was saved or served, so it asks no other host for
anything: no scripts, fonts or images from elsewhere (a Content-Security-Policy says so to
the browser as well), and every chart is inline SVG drawn with matplotlib's object API.
Text in the SVG stays text (`svg.fonttype: none`), which keeps the page small and its
labels searchable. Everything the card holds is user data (column names, category levels,
error texts) and is escaped; matplotlib escapes its SVG text, and math parsing is off so
a `$` in a label is shown as it is.
"""

from __future__ import annotations

import html
import io
import json
import math
import re
import threading
from collections.abc import Callable, Iterable, Sequence
from datetime import UTC, datetime, timedelta
from functools import partial
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit, urlunsplit

from reasoning.schemas import (
    And,
    Comparison,
    Filter,
    ModelCard,
    Not,
    Or,
    PairTerm,
    PredictResponse,
    RowExplanation,
    Trial,
)

if TYPE_CHECKING:
    from matplotlib.axes import Axes
    from matplotlib.figure import Figure
    from matplotlib.typing import RcKeyType

POSITIVE = "#d9541e"
"""Contributions that raise the output (a colour-blind safe orange/blue pair)."""
NEGATIVE = "#1f6fb4"
NEUTRAL = "#7f7f7f"
SERIES = ["#1f6fb4", "#d9541e", "#2a9d5c", "#8e5bb5", "#b8860b", "#d04f8c", "#4d4d4d"]
MAX_LEVELS = 25
"""Levels drawn per categorical shape: the most frequent ones (wide tables stay legible)."""
MAX_REASONS = 12
"""Reasons drawn per waterfall; the rest are summed into one step."""
MAX_LABEL = 42

LOWER_IS_BETTER = frozenset({"rmse", "mae", "log_loss", "mean_kl"})
METRIC_NAMES = {
    "rmse": "RMSE",
    "mae": "MAE",
    "r2": "R²",
    "accuracy": "accuracy",
    "log_loss": "log loss",
    "roc_auc": "ROC AUC",
    "f1_macro": "F1 (macro)",
    "agreement": "agreement (same class as the teacher)",
    "mean_kl": "mean KL(teacher ‖ student)",
    "gradient_cosine": "gradient cosine",
}
FAMILY_NAMES = {
    "linear": "linear model",
    "gam": "GAM (generalized additive model)",
    "decision_tree": "decision tree",
    "xgboost": "XGBoost",
    "random_forest": "random forest",
    "mlp": "MLP (neural network)",
}
KIND_NAMES = {"reasoning_fit": "reasoning fit", "model_fit": "model fit"}
OPS = {"in": "in", "not_in": "not in", "is_null": "is null", "is_not_null": "is not null"}

_RC: dict[RcKeyType, Any] = {
    "svg.fonttype": "none",
    "svg.hashsalt": "reasoning-report",
    "text.parse_math": False,
    "font.family": "sans-serif",
    "font.sans-serif": ["DejaVu Sans", "Liberation Sans", "Arial", "Helvetica"],
    "font.size": 9,
    "axes.spines.top": False,
    "axes.spines.right": False,
    "axes.axisbelow": True,
    "axes.titlesize": 10,
    "legend.fontsize": 8,
    "legend.frameon": False,
}
_SVG_METADATA = {"Date": None, "Creator": None, "Format": None, "Type": None}
_DRAW_LOCK = threading.Lock()
"""matplotlib's rcParams are process-global and `rc_context` swaps them in and out, which is
not safe across threads: charts are drawn one at a time (the figures themselves are not
shared)."""

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


def esc(value: Any) -> str:
    """Any value as HTML text (quotes too, so it is safe in attributes)."""
    return html.escape(str(value), quote=True)


# ----------------------------------------------------------------------------- formatting


def fmt_number(value: Any) -> str:
    """A number shortly: four significant digits, integers whole, no exponent below 1e6."""
    if value is None:
        return "—"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int):
        return str(value)
    if not isinstance(value, float):
        return str(value)
    if not math.isfinite(value):
        return "∞" if value > 0 else ("−∞" if value < 0 else "NaN")
    if value == 0:
        return "0"
    size = abs(value)
    if size >= 1e6 or size < 1e-3:
        return f"{value:.4g}"
    digits = max(0, 3 - math.floor(math.log10(size)))
    text = f"{value:.{digits}f}"
    return text.rstrip("0").rstrip(".") if "." in text else text


def fmt_signed(value: float) -> str:
    """A contribution: signed (a true minus sign), zero bare."""
    if value == 0:
        return "0"
    return ("+" if value > 0 else "−") + fmt_number(abs(value))


def _sign_color(value: float) -> str:
    return POSITIVE if value > 0 else NEGATIVE if value < 0 else NEUTRAL


def fmt_value(value: Any) -> str:
    """A cell of an example row or a filter: timestamps at midnight shown as dates."""
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int | float):
        return fmt_number(value)
    if isinstance(value, str):
        return _short_timestamp(value)
    return json.dumps(value, default=str)


def _short_timestamp(text: str) -> str:
    match = re.fullmatch(r"(\d{4}-\d{2}-\d{2})T00:00:00(\.0+)?(Z|[+-]00:00)?", text)
    return match.group(1) if match else text


def _clip(text: str, limit: int = MAX_LABEL) -> str:
    return text if len(text) <= limit else text[: limit - 1] + "…"


def fmt_param(value: Any) -> str:
    """A hyperparameter value: numbers short, anything else as JSON."""
    if isinstance(value, bool | int | float) or value is None:
        return fmt_number(value)
    if isinstance(value, str):
        return value
    return json.dumps(value, default=str, sort_keys=True)


def fmt_params(params: dict[str, Any]) -> str:
    return ", ".join(f"{k}={fmt_param(v)}" for k, v in params.items()) or "(defaults)"


def _column_ref(name: str) -> str:
    return name if name.isidentifier() else f"`{name}`"


def _literal(value: Any) -> str:
    """A filter value: plain words bare (as in `listed_at >= 2020-01-01`), others quoted."""
    if isinstance(value, str):
        plain = value and re.fullmatch(r"[\w.:+-]+", value) and value.lower() not in (
            "true", "false", "null", "and", "or", "not", "in")
        return value if plain else json.dumps(value, ensure_ascii=False)
    return fmt_value(value)


def filter_text(flt: Filter | None) -> str:
    """A filter as one readable expression; compound parts in parentheses."""
    if flt is None:
        return ""
    if isinstance(flt, Comparison):
        col, op = _column_ref(flt.col), flt.op.value
        if op in ("is_null", "is_not_null"):
            return f"{col} {OPS[op]}"
        if op in ("in", "not_in"):
            values = flt.value if isinstance(flt.value, list) else [flt.value]
            return f"{col} {OPS[op]} ({', '.join(_literal(v) for v in values)})"
        return f"{col} {op} {_literal(flt.value)}"
    if isinstance(flt, Not):
        return f"not ({filter_text(flt.filter)})"
    if isinstance(flt, And | Or):
        joiner = " and " if isinstance(flt, And) else " or "
        parts = [filter_text(f) for f in flt.filters]
        if len(parts) == 1:
            return parts[0]
        return joiner.join(
            p if isinstance(f, Comparison | Not) else f"({p})"
            for p, f in zip(parts, flt.filters, strict=True)
        )
    return str(flt)


def safe_url(url: Any) -> str:
    """A URL without its user info or query values, either of which may be a credential (a
    token is often passed as the user name)."""
    text = str(url)
    try:
        parts = urlsplit(text)
    except ValueError:
        return "(unparseable URL)"
    netloc = parts.netloc
    if "@" in netloc:
        netloc = "***@" + netloc.rpartition("@")[2]
    query = "&".join(f"{p.split('=', 1)[0]}=…" for p in parts.query.split("&") if p)
    return urlunsplit((parts.scheme, netloc, parts.path, query, ""))


def _created(value: datetime) -> str:
    if value.tzinfo is not None:
        value = value.astimezone(UTC)
    return value.strftime("%Y-%m-%d %H:%M:%S UTC")


# ----------------------------------------------------------------------------- charts


_CHAR = 9 * 0.6 / 72
"""Inches per character of a 9 pt label: DejaVu Sans's mean advance, a bound for the
narrower fonts a browser may fall back to."""


def _plot(
    width: float,
    height: float,
    *,
    label_chars: int = 7,
    ylabel: bool = True,
    title: bool = False,
    bottom: float = 0.0,
    right: float = 0.25,
) -> tuple[Figure, Axes]:
    """A figure with one axes whose margins fit its tick labels (`label_chars` long).

    Margins are computed, not measured: constrained layout measures every text twice
    more and made a report a third slower.
    """
    from matplotlib.figure import Figure

    fig = Figure(figsize=(width, height))
    left = 0.22 + label_chars * _CHAR + (0.28 if ylabel else 0.0)
    low = 0.6 + bottom
    top = 0.36 if title else 0.15
    ax = fig.add_axes((left / width, low / height, 1 - (left + right) / width,
                       1 - (low + top) / height))
    return fig, ax


def _plain_log_ticks(ax: Axes) -> None:
    """Log-axis ticks as plain numbers: the default labels are mathtext, which is off."""
    from matplotlib.ticker import FuncFormatter, NullFormatter

    ax.yaxis.set_major_formatter(FuncFormatter(lambda v, _: fmt_number(float(v))))
    ax.yaxis.set_minor_formatter(NullFormatter())


def _draw(make: Callable[[], Figure], prefix: str) -> str:
    """Draw one chart to SVG text ready to inline in HTML.

    The XML prolog and doctype go (invalid inside HTML), as does matplotlib's global
    `<style>` (the page's CSS holds it, scoped to the charts). Ids get a per-chart prefix:
    matplotlib numbers them per figure, and a reference to a clip path or marker resolves
    to the first element with that id in the whole document.
    """
    import matplotlib

    with _DRAW_LOCK, matplotlib.rc_context(_RC):
        fig = make()
        buf = io.StringIO()
        fig.savefig(buf, format="svg", metadata=_SVG_METADATA)
    svg = buf.getvalue()
    svg = svg[svg.index("<svg"):]
    svg = re.sub(r"<style[^>]*>.*?</style>", "", svg, flags=re.S)
    svg = re.sub(r"<metadata>.*?</metadata>", "", svg, flags=re.S)
    svg = re.sub(r"<defs>\s*</defs>", "", svg)

    def tag(match: re.Match[str]) -> str:
        text = match.group(0)
        text = re.sub(r'(\s)id="([^"]+)"', rf'\1id="{prefix}-\2"', text)
        text = re.sub(r'href="#([^"]+)"', rf'href="#{prefix}-\1"', text)
        return re.sub(r"url\(#([^)]+)\)", rf"url(#{prefix}-\1)", text)

    # Text content cannot hold "<" or ">" (matplotlib escapes it), so this sees tags only.
    svg = re.sub(r"<[^<>]+>", tag, svg)
    return svg.replace("<svg ", '<svg role="img" ', 1).strip()


def _chart(svg: str, caption: str, kind: str, **data: str) -> str:
    attrs = "".join(f' data-{k}="{esc(v)}"' for k, v in data.items())
    return (f'<figure class="chart {kind}"{attrs}>\n{svg}\n'
            f"<figcaption>{caption}</figcaption>\n</figure>")


def _zero_line(ax: Axes, vertical: bool = False) -> None:
    if vertical:
        ax.axvline(0, color="#999", linewidth=0.8, zorder=0)
    else:
        ax.axhline(0, color="#999", linewidth=0.8, zorder=0)


def _score(trial: Trial) -> float | None:
    """A trial's score when it has a finite one (a failed trial has None or infinity)."""
    return trial.score if trial.score is not None and math.isfinite(trial.score) else None


def best_index(trials: Sequence[Trial]) -> int | None:
    """The winning trial as training.best_trial picks it: lowest score, earlier on ties."""
    scored = [(score, i) for i, t in enumerate(trials) if (score := _score(t)) is not None]
    return min(scored)[1] if scored else None


def trials_chart(trials: Sequence[Trial], score_name: str) -> Figure:
    """Score per trial (lower is better), the best marked, the running best as a step."""
    fig, ax = _plot(7.5, 3.2, label_chars=8)
    numbers = list(range(1, len(trials) + 1))
    scores = {i: score for i, t in enumerate(trials) if (score := _score(t)) is not None}
    ok = list(scores)
    families = sorted({t.family or "?" for t in trials})
    for k, family in enumerate(families):
        picked = [i for i in ok if (trials[i].family or "?") == family]
        ax.scatter([numbers[i] for i in picked], [scores[i] for i in picked],
                   s=28, color=SERIES[k % len(SERIES)], zorder=3,
                   label=family if len(families) > 1 else None)
    if ok:
        running, best_so_far = [], math.inf
        for i in ok:
            best_so_far = min(best_so_far, scores[i])
            running.append(best_so_far)
        ax.step([numbers[i] for i in ok], running, where="post", color="#999",
                linestyle="--", linewidth=1, label="best so far", zorder=2)
        low, high = min(scores.values()), max(scores.values())
        if low > 0 and high / low > 100:
            ax.set_yscale("log")
            _plain_log_ticks(ax)
    best = best_index(trials)
    if best is not None:
        ax.scatter([numbers[best]], [scores[best]], s=170, marker="*",
                   color="#f2b01e", edgecolor="#6b4d00", zorder=4, label="best")
        ax.annotate(f"best: {fmt_number(scores[best])}", (numbers[best], scores[best]),
                    textcoords="offset points", xytext=(8, 8), fontsize=8)
    failed = [i for i, t in enumerate(trials) if i not in ok]
    if failed:  # along the top edge: they have no score to place them by
        ax.scatter([numbers[i] for i in failed], [0.96] * len(failed), marker="x",
                   color="#a4262c", s=40, zorder=3, label="failed (no score)",
                   transform=ax.get_xaxis_transform(), clip_on=False)
    ax.set_xlabel("trial")
    ax.set_ylabel(f"{score_name} (lower is better)")
    if len(trials) <= 30:
        ax.set_xticks(numbers)
    ax.grid(axis="y", color="#eee")
    ax.legend(loc="best")
    return fig


def importance_chart(importance: dict[str, float], unit: str) -> Figure:
    """Horizontal bars, largest on top, every column listed."""
    items = sorted(importance.items(), key=lambda kv: -kv[1])
    labels = [_clip(k) for k, _ in items]
    fig, ax = _plot(7.5, 0.9 + 0.26 * max(len(items), 1), ylabel=False,
                    label_chars=max(map(len, labels), default=4), right=0.6)
    values = [v for _, v in items]
    positions = list(range(len(items)))
    ax.barh(positions, values, color=NEGATIVE, height=0.7)
    ax.set_yticks(positions, labels)
    ax.invert_yaxis()
    peak = max(values, default=0.0) or 1.0
    for y, v in zip(positions, values, strict=True):
        ax.text(v + peak * 0.01, y, fmt_number(v), va="center", fontsize=8)
    ax.set_xlim(0, peak * 1.15)
    ax.set_xlabel(f"mean |contribution| ({unit})")
    ax.grid(axis="x", color="#eee")
    return fig


def _timestamps(xs: Sequence[Any]) -> list[datetime] | None:
    """Shape x values of a timestamp column as datetimes: ISO strings, or numbers (days since
    the Unix epoch, as the encoding keeps them; seconds or milliseconds when too large for
    days). None when any value is neither."""
    epoch = datetime(1970, 1, 1)
    out: list[datetime] = []
    for x in xs:
        if isinstance(x, str):
            try:
                value = datetime.fromisoformat(x.replace("Z", "+00:00"))
            except ValueError:
                return None
            if value.tzinfo is not None:
                value = value.astimezone(UTC).replace(tzinfo=None)
            out.append(value)
        elif isinstance(x, int | float) and not isinstance(x, bool) and math.isfinite(x):
            size = abs(x)
            days = x if size < 1e6 else (x / 86_400 if size < 1e11 else x / 86_400_000)
            try:
                out.append(epoch + timedelta(days=days))
            except OverflowError:
                return None
        else:
            return None
    return out


def _is_number(value: Any) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool)


def _level(value: Any) -> str:
    if value is None:
        return "(missing)"
    if isinstance(value, bool):
        return "true" if value else "false"
    return _clip(str(value), 30)


def shape_chart(
    name: str, dtype: str, shape: dict[str, Any], unit: str, classes: list[Any] | None
) -> tuple[Figure, str]:
    """A column's shape function: a curve for numbers and times, bars for levels; one series
    per class when the card has per-class curves. Returns the figure and a caption note."""
    xs = list(shape.get("x", []))
    ys = list(shape.get("contribution", shape.get("y", [])))
    counts = list(shape.get("count", []))
    series: list[tuple[str | None, list[float]]] = [(None, ys)]
    by_class = shape.get("by_class")
    if by_class and classes and len(by_class) == len(classes):
        if all(len(s) == len(xs) for s in by_class):
            series = [(str(c), list(s)) for c, s in zip(classes, by_class, strict=True)]
    series = [(label, s) for label, s in series if len(s) == len(xs)]
    note = ""
    categorical = dtype in ("categorical", "boolean")
    if categorical and len(xs) > MAX_LEVELS:
        if len(counts) == len(xs):
            keep = sorted(sorted(range(len(xs)), key=lambda i: -counts[i])[:MAX_LEVELS])
            note = f" Showing the {MAX_LEVELS} most frequent of {len(xs)} levels."
        else:
            keep = list(range(MAX_LEVELS))
            note = f" Showing the first {MAX_LEVELS} of {len(xs)} levels."
        xs = [xs[i] for i in keep]
        series = [(label, [s[i] for i in keep]) for label, s in series]
    if categorical:
        levels = [_level(x) for x in xs]
        rows = max(len(xs), 2) * max(1.0, min(len(series), 3) * 0.6)
        fig, ax = _plot(5.6, 1.15 + 0.24 * rows, ylabel=False, title=True,
                        label_chars=max(map(len, levels), default=4))
        positions = list(range(len(xs)))
        height = 0.8 / len(series)
        for k, (label, values) in enumerate(series):
            offsets = [p - 0.4 + height * (k + 0.5) for p in positions]
            colors = (SERIES[k % len(SERIES)] if label is not None
                      else [_sign_color(v) for v in values])
            ax.barh(offsets, values, height=height * 0.95, color=colors, label=label)
        ax.set_yticks(positions, levels)
        ax.invert_yaxis()
        _zero_line(ax, vertical=True)
        ax.set_xlabel(f"contribution ({unit})")
        ax.grid(axis="x", color="#eee")
    else:
        fig, ax = _plot(5.6, 3.0, title=True, bottom=0.2 if dtype == "timestamp" else 0.0)
        plotted: Sequence[Any] = xs
        times = _timestamps(xs) if dtype == "timestamp" else None
        if times is not None:
            plotted = times
        elif dtype == "timestamp" or not all(_is_number(x) for x in xs):
            plotted = list(range(len(xs)))
            note += " The x values could not be read as numbers or times: drawn in order."
        for k, (label, values) in enumerate(series):
            ax.plot(plotted, values, marker="o", markersize=3, linewidth=1.6,
                    color=SERIES[k % len(SERIES)], label=label)
        if times is not None:
            from matplotlib.dates import AutoDateLocator, ConciseDateFormatter

            locator = AutoDateLocator()
            ax.xaxis.set_major_locator(locator)
            ax.xaxis.set_major_formatter(ConciseDateFormatter(locator))
        _zero_line(ax)
        ax.set_xlabel(_clip(name, 60))
        ax.set_ylabel(f"contribution ({unit})")
        ax.grid(color="#eee")
    if any(label is not None for label, _ in series):
        ax.legend(loc="lower right", bbox_to_anchor=(1.0, 1.0), ncols=min(len(series), 4),
                  borderaxespad=0.2, handlelength=1.2, columnspacing=0.8)
    ax.set_title(_clip(name, 60), loc="left")
    return fig, note


def _axis_labels(values: Sequence[Any], limit: int = 8) -> tuple[list[float], list[str]]:
    """Positions and short labels for a surface's axis: every level, or about `limit`."""
    step = max(1, math.ceil(len(values) / limit))
    positions = list(range(0, len(values), step))
    return [p + 0.5 for p in positions], [_clip(fmt_value(values[i]), 12) for i in positions]


def pair_chart(term: PairTerm, unit: str) -> Figure:
    """A pair term's surface as a heat map: the first column across, the second up, the
    contribution as colour (the waterfalls' orange adds, blue takes away), the same scale
    either side of 0."""
    from matplotlib.colors import LinearSegmentedColormap

    colours = LinearSegmentedColormap.from_list("contribution", [NEGATIVE, "#ffffff", POSITIVE])
    surface = term.surface
    xs, ys = list(surface.get("x", [])), list(surface.get("y", []))
    grid = [[float(v) for v in row] for row in surface.get("contribution", [])]
    reach = max((abs(v) for row in grid for v in row), default=0.0) or 1.0
    ylabels = _axis_labels(ys)
    fig, ax = _plot(5.6, 3.4, title=True, right=1.3,
                    label_chars=max(map(len, ylabels[1]), default=4))
    # Vector cells (pcolormesh), not an image: an embedded bitmap is a data: URL, which the
    # page's Content-Security-Policy would not load.
    image = ax.pcolormesh([list(col) for col in zip(*grid, strict=True)] if grid else [[0.0]],
                          cmap=colours, vmin=-reach, vmax=reach)
    ax.set_xlim(0, max(len(xs), 1))
    ax.set_ylim(0, max(len(ys), 1))
    ax.set_xticks(*_axis_labels(xs))
    ax.set_yticks(*ylabels)
    first, second = term.columns
    ax.set_xlabel(_clip(first, 60))
    ax.set_ylabel(_clip(second, 60))
    bar = fig.colorbar(image, ax=ax, fraction=0.08, pad=0.03)
    bar.set_label(f"contribution ({unit})")
    ax.set_title(_clip(f"{first} & {second}", 60), loc="left")
    return fig


def _reason_label(column: str, value: Any) -> str:
    return f"{_clip(column, 24)} = {_clip(fmt_value(value), 18)}"


def waterfall_chart(row: RowExplanation, unit: str) -> Figure:
    """From the base value, one step per reason (largest first), to the output."""
    reasons = sorted(row.reasons, key=lambda r: -abs(r.contribution))  # stable: ties keep order
    shown = reasons[:MAX_REASONS]
    rest = reasons[MAX_REASONS:]
    steps = [(_reason_label(r.column, r.value), r.contribution) for r in shown]
    if rest:
        steps.append((f"{len(rest)} other columns", sum(r.contribution for r in rest)))
    labels = ["base value"] + [s[0] for s in steps] + ["output"]
    fig, ax = _plot(7.0, 0.95 + 0.27 * len(labels), label_chars=max(map(len, labels)),
                    ylabel=False)
    level = row.base_value
    ends = [level]
    for y, (_, c) in enumerate(steps, start=1):
        ax.barh(y, c, left=level, height=0.62, color=_sign_color(c))
        ax.plot([level, level], [y - 1.31 if y > 1 else y - 1, y - 0.31], color="#bbb",
                linewidth=0.7, zorder=0)
        level += c
        ends.append(level)
    last = len(labels) - 1
    ax.plot([level, level], [last - 1.31 if steps else last - 1, last], color="#bbb",
            linewidth=0.7, zorder=0)
    for y, value, color in ((0, row.base_value, NEUTRAL), (last, row.output, "#1b1b1b")):
        ax.plot([value], [y], marker="D", markersize=6, color=color, zorder=3)
    span = (max(ends + [row.output]) - min(ends + [row.output])) or abs(row.output) or 1.0
    pad = span * 0.03
    for y, (_, c) in enumerate(steps, start=1):
        start, end = ends[y - 1], ends[y]
        x, ha = (max(start, end) + pad, "left") if c >= 0 else (min(start, end) - pad, "right")
        ax.text(x, y, fmt_signed(c), va="center", ha=ha, fontsize=8, color=_sign_color(c))
    ax.text(row.base_value + pad, 0, fmt_number(row.base_value), va="center", fontsize=8)
    ax.text(row.output + pad, last, fmt_number(row.output), va="center", fontsize=8,
            fontweight="bold")
    low, high = min(ends + [row.output]), max(ends + [row.output])
    ax.set_xlim(low - span * 0.25, high + span * 0.25)
    ax.set_yticks(list(range(len(labels))), labels)
    ax.invert_yaxis()
    ax.set_xlabel(unit)
    ax.grid(axis="x", color="#eee")
    return fig


# ----------------------------------------------------------------------------- page parts


class _Task:
    """What the card's outputs mean, for titles and axis labels."""

    def __init__(self, card: ModelCard) -> None:
        self.classification = (
            card.task.task_kind == "classification" if card.task is not None
            else card.classes is not None
        )
        self.label = card.task.label_column if card.task is not None else None
        self.classes = list(card.classes or [])
        self.multiclass = self.classification and len(self.classes) > 2
        target = self.label if self.label is not None else "the teacher's output"
        if not self.classification:
            self.unit = target
            self.shape_unit = target
            self.importance_unit = target
        elif self.multiclass:
            self.unit = "score"
            self.shape_unit = "class score"
            self.importance_unit = "score of the predicted class"
        else:
            positive = _level(self.classes[1]) if len(self.classes) > 1 else "class 1"
            self.unit = "log-odds"
            self.shape_unit = f"log-odds of {positive}"
            self.importance_unit = "log-odds of the predicted class"

    def title(self, card: ModelCard) -> str:
        family = FAMILY_NAMES.get(card.family, card.family)
        if not self.classification:
            what = f"regression of {self.label}" if self.label else "regression"
        else:
            levels = " / ".join(_level(c) for c in self.classes)
            of = f" of {self.label}" if self.label else ""
            what = f"classification{of} ({levels})" if levels else f"classification{of}"
        return f"{family}: {what}"


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


def _card_section(card: ModelCard, task: _Task) -> str:
    rows = card.rows
    filt = filter_text(card.filter)
    pairs = [
        ("model id", f"<code>{esc(card.model_id)}</code>"),
        ("kind", esc(KIND_NAMES.get(card.kind, card.kind))),
        ("family", f"{esc(FAMILY_NAMES.get(card.family, card.family))} "
                   f"(<code>{esc(card.family)}</code>)"),
        ("task", esc("classification" if task.classification else "regression")
         + (f" into {esc(', '.join(_level(c) for c in task.classes))}"
            if task.classes else "")),
        ("label column", f"<code>{esc(task.label)}</code>" if task.label
         else "none (the teacher gives the target)"),
        ("created", esc(_created(card.created_at))),
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


def _metrics_section(card: ModelCard) -> str:
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


def _trials_section(card: ModelCard) -> str:
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
            _draw(lambda: trials_chart(trials, card.score_name), "trials"),
            f"{esc(card.score_name)} per trial; the star marks the chosen one, the dashed line "
            "the best score so far.", "trials-chart"))
    rows = []
    for i, t in enumerate(trials):
        if (score := _score(t)) is not None:
            outcome = fmt_number(score) + (" ★ best" if i == best else "")
        elif t.error:
            outcome = f'<span class="error">{esc(_clip(t.error, 300))}</span>'
        else:
            outcome = "no score"
        rows.append([str(i + 1), esc(t.family or card.family),
                     f"<code>{esc(fmt_params(t.params))}</code>", outcome, esc(t.node or "—")])
    parts.append(_table(["#", "family", "params", f"{esc(card.score_name)} or error", "node"],
                        rows, numeric=[0], css="trials",
                        row_class=lambda r: "best" if r == best else ""))
    parts.append("</section>")
    return "".join(parts)


def _explanation_section(card: ModelCard, task: _Task) -> str:
    importance = card.explanation.importance
    parts = ['<section id="explanation"><h2>What the model learnt</h2>']
    if importance:
        parts.append(_chart(
            _draw(lambda: importance_chart(importance, task.importance_unit), "importance"),
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

        svg = _draw(make, f"shape{n}")
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


def _pairs_part(card: ModelCard, task: _Task) -> str:
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
        scope = f" ({esc(_level(shown))})" if shown is not None else ""
        parts.append(_chart(
            _draw(partial(pair_chart, term, task.shape_unit), f"pair{n}"),
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
        rows.append([esc(_level(c)) + ("&nbsp;◀" if c == predicted else ""),
                     f"{p:.3f}", bar])
    return _table(["class", "probability", ""], rows, numeric=[1], css="probabilities")


def _examples_section(card: ModelCard, task: _Task, examples: PredictResponse | None) -> str:
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
            unit = f"{task.unit} of class {_level(predicted)}"
            if task.multiclass:
                unit += " (before softmax)"
            side = (f"<p>predicted class</p><p class=value>{esc(_level(predicted))}</p>"
                    f"{_probabilities(examples, i, predicted)}")
        else:
            unit = task.unit
            of = f" of <code>{esc(task.label)}</code>" if task.label else ""
            side = f"<p>prediction{of}</p><p class=value>{esc(fmt_number(predicted))}</p>"
        if row.rule:
            side += f"<p>rule: <code>{esc(row.rule)}</code></p>"
        svg = _draw(partial(waterfall_chart, row, unit), f"why{i}")
        caption = (
            f"Example {i + 1}: from the base value {esc(fmt_number(row.base_value))} to the "
            f"output {esc(fmt_number(row.output))} ({esc(unit)}).")
        parts.append(f'<div class="example">{_chart(svg, caption, "waterfall-chart")}'
                     f'<aside class="prediction">{side}</aside></div>')
    parts.append("</section>")
    return "".join(parts)


def render_report(card: ModelCard, examples: PredictResponse | None) -> str:
    """The whole report as one HTML document (UTF-8), asking no other host for anything.

    `examples` is the card's example rows scored with every reason (`top_k=None`); None,
    or no explanations, for a card without examples.
    """
    task = _Task(card)
    title = f"Model report — {task.title(card)}"
    body = "".join([
        f"<header><h1>{esc(task.title(card))}</h1>"
        f'<p class="subtitle">{esc(KIND_NAMES.get(card.kind, card.kind))} · model '
        f"<code>{esc(card.model_id)}</code> · {esc(_created(card.created_at))}</p></header>",
        _card_section(card, task),
        _metrics_section(card),
        _trials_section(card),
        _explanation_section(card, task),
        _examples_section(card, task, examples),
    ])
    return (
        "<!DOCTYPE html>\n<html lang=\"en\">\n<head>\n<meta charset=\"utf-8\">\n"
        f'<meta http-equiv="Content-Security-Policy" content="{CSP}">\n'
        '<meta name="viewport" content="width=device-width, initial-scale=1">\n'
        f"<title>{esc(title)}</title>\n<style>{_CSS}</style>\n</head>\n"
        f"<body>\n{body}\n</body>\n</html>\n"
    )
