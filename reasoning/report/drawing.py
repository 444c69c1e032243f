"""Drawing a chart to SVG text ready to inline in the page: matplotlib's object API under the
report's rc settings, one chart at a time (rcParams are process-wide), and the axes helpers
every chart starts from. matplotlib is imported when a chart is drawn, not with the module."""

from __future__ import annotations

import io
import re
import threading
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from reasoning.report.words import fmt_number

if TYPE_CHECKING:
    from matplotlib.axes import Axes
    from matplotlib.figure import Figure
    from matplotlib.typing import RcKeyType

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

_CHAR = 9 * 0.6 / 72
"""Inches per character of a 9 pt label: DejaVu Sans's mean advance, a bound for the
narrower fonts a browser may fall back to."""


def new_plot(
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


def plain_log_ticks(ax: Axes) -> None:
    """Log-axis ticks as plain numbers: the default labels are mathtext, which is off."""
    from matplotlib.ticker import FuncFormatter, NullFormatter

    ax.yaxis.set_major_formatter(FuncFormatter(lambda v, _: fmt_number(float(v))))
    ax.yaxis.set_minor_formatter(NullFormatter())


def draw_svg(make: Callable[[], Figure], prefix: str) -> str:
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


def zero_line(ax: Axes, vertical: bool = False) -> None:
    if vertical:
        ax.axvline(0, color="#999", linewidth=0.8, zorder=0)
    else:
        ax.axhline(0, color="#999", linewidth=0.8, zorder=0)
