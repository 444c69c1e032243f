"""The report's charts, each a matplotlib figure: trials, importance, a column's shape, a pair
term's surface and an example row's waterfall."""

from __future__ import annotations

import math
from collections.abc import Sequence
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any

from reasoning.report.drawing import new_plot, plain_log_ticks, zero_line
from reasoning.report.words import clip_text, fmt_number, fmt_signed, fmt_value, level_text
from reasoning.schemas import PairTerm, RowExplanation, Trial

if TYPE_CHECKING:
    from matplotlib.figure import Figure

POSITIVE = "#d9541e"
"""Contributions that raise the output (a colour-blind safe orange/blue pair)."""
NEGATIVE = "#1f6fb4"
NEUTRAL = "#7f7f7f"
SERIES = ["#1f6fb4", "#d9541e", "#2a9d5c", "#8e5bb5", "#b8860b", "#d04f8c", "#4d4d4d"]
MAX_LEVELS = 25
"""Levels drawn per categorical shape: the most frequent ones (wide tables stay legible)."""
MAX_REASONS = 12
"""Reasons drawn per waterfall; the rest are summed into one step."""


def _sign_color(value: float) -> str:
    return POSITIVE if value > 0 else NEGATIVE if value < 0 else NEUTRAL


def trial_score(trial: Trial) -> float | None:
    """A trial's score when it has a finite one (a failed trial has None or infinity)."""
    return trial.score if trial.score is not None and math.isfinite(trial.score) else None


def best_index(trials: Sequence[Trial]) -> int | None:
    """The winning trial as training.best_trial picks it: lowest score, earlier on ties."""
    scored = [(score, i) for i, t in enumerate(trials) if (score := trial_score(t)) is not None]
    return min(scored)[1] if scored else None


def trials_chart(trials: Sequence[Trial], score_name: str) -> Figure:
    """Score per trial (lower is better), the best marked, the running best as a step."""
    fig, ax = new_plot(7.5, 3.2, label_chars=8)
    numbers = list(range(1, len(trials) + 1))
    scores = {i: score for i, t in enumerate(trials) if (score := trial_score(t)) is not None}
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
            plain_log_ticks(ax)
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
    labels = [clip_text(k) for k, _ in items]
    fig, ax = new_plot(7.5, 0.9 + 0.26 * max(len(items), 1), ylabel=False,
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
        levels = [level_text(x) for x in xs]
        rows = max(len(xs), 2) * max(1.0, min(len(series), 3) * 0.6)
        fig, ax = new_plot(5.6, 1.15 + 0.24 * rows, ylabel=False, title=True,
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
        zero_line(ax, vertical=True)
        ax.set_xlabel(f"contribution ({unit})")
        ax.grid(axis="x", color="#eee")
    else:
        fig, ax = new_plot(5.6, 3.0, title=True, bottom=0.2 if dtype == "timestamp" else 0.0)
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
        zero_line(ax)
        ax.set_xlabel(clip_text(name, 60))
        ax.set_ylabel(f"contribution ({unit})")
        ax.grid(color="#eee")
    if any(label is not None for label, _ in series):
        ax.legend(loc="lower right", bbox_to_anchor=(1.0, 1.0), ncols=min(len(series), 4),
                  borderaxespad=0.2, handlelength=1.2, columnspacing=0.8)
    ax.set_title(clip_text(name, 60), loc="left")
    return fig, note


def _axis_labels(values: Sequence[Any], limit: int = 8) -> tuple[list[float], list[str]]:
    """Positions and short labels for a surface's axis: every level, or about `limit`."""
    step = max(1, math.ceil(len(values) / limit))
    positions = list(range(0, len(values), step))
    return [p + 0.5 for p in positions], [clip_text(fmt_value(values[i]), 12) for i in positions]


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
    fig, ax = new_plot(5.6, 3.4, title=True, right=1.3,
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
    ax.set_xlabel(clip_text(first, 60))
    ax.set_ylabel(clip_text(second, 60))
    bar = fig.colorbar(image, ax=ax, fraction=0.08, pad=0.03)
    bar.set_label(f"contribution ({unit})")
    ax.set_title(clip_text(f"{first} & {second}", 60), loc="left")
    return fig


def _reason_label(column: str, value: Any) -> str:
    return f"{clip_text(column, 24)} = {clip_text(fmt_value(value), 18)}"


def waterfall_chart(row: RowExplanation, unit: str) -> Figure:
    """From the base value, one step per reason (largest first), to the output."""
    reasons = sorted(row.reasons, key=lambda r: -abs(r.contribution))  # stable: ties keep order
    shown = reasons[:MAX_REASONS]
    rest = reasons[MAX_REASONS:]
    steps = [(_reason_label(r.column, r.value), r.contribution) for r in shown]
    if rest:
        steps.append((f"{len(rest)} other columns", sum(r.contribution for r in rest)))
    labels = ["base value"] + [s[0] for s in steps] + ["output"]
    fig, ax = new_plot(7.0, 0.95 + 0.27 * len(labels), label_chars=max(map(len, labels)),
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
