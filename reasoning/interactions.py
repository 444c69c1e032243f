"""Which pairs of input columns interact: the candidates for a GA²M's pair terms.

FAST (Lou, Caruana, Gehrke, Hooker, KDD 2013) ranks every pair by how much a cheap
two-dimensional model of the additive model's residuals gains. This is the same idea with
a measured equivalent of its cheap model: each column cut into at most ``BINS`` bins
(quantiles for numbers, the most frequent levels for categories, missing values a bin of
their own), and a pair scored by the residual sum of squares its two-way table of bin means
explains beyond the two one-way tables (the interaction sum of squares of a two-way
ANOVA), less what noise alone would explain with that many free cells. One pass over the
rows per pair (a ``bincount``), so ranking all pairs of 40 columns costs less than one fit.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import pandas as pd

from reasoning.encoding import Feature, category_keys, to_float

BINS = 8
"""Bins per column when ranking: enough for a two-way table to show a surface's shape."""
MAX_COLUMNS = 40
"""Pairs are sought among the columns that matter most alone (780 pairs at most)."""
MAX_ROWS = 50_000
"""Ranking reads at most this many rows (the first ones: the rows come shuffled)."""


def column_bins(series: pd.Series, feature: Feature, bins: int = BINS) -> np.ndarray:
    """Bin index per row, 0..bins; missing values (and rare levels) in bins of their own."""
    if feature.dtype == "categorical":
        keys = category_keys(series)
        levels, codes, counts = np.unique(keys, return_inverse=True, return_counts=True)
        kept = np.argsort(-counts, kind="stable")[: bins - 1]
        rank = np.full(len(levels), bins - 1)
        rank[kept] = np.arange(len(kept))
        return rank[codes]
    values = to_float(series, feature.dtype)
    present = ~np.isnan(values)
    out = np.full(len(values), bins, dtype=np.intp)  # missing
    if present.any():
        edges = np.unique(np.quantile(values[present], np.linspace(0, 1, bins + 1)[1:-1]))
        out[present] = np.searchsorted(edges, values[present], side="right")
    return out


def rank_pairs(
    X: pd.DataFrame,
    features: Sequence[Feature],
    residuals: np.ndarray,
    importance: np.ndarray,
    n_pairs: int,
) -> list[tuple[str, str]]:
    """The ``n_pairs`` pairs of columns whose interaction explains most of ``residuals``
    ((n,) or (n, outputs), the additive model's), best first; pairs that explain no more than
    noise would are left out, so fewer may come back. ``importance`` (n_features,) picks the
    ``MAX_COLUMNS`` columns among which pairs are sought."""
    if n_pairs <= 0 or len(features) < 2:
        return []
    r = np.asarray(residuals, dtype=np.float64)
    r = r.reshape(len(r), -1)[:MAX_ROWS]
    rows = len(r)
    r = r - r.mean(axis=0)
    noise = float((r**2).sum()) / max(rows - 1, 1)  # per row, summed over outputs
    columns = np.argsort(-np.asarray(importance), kind="stable")[:MAX_COLUMNS]
    frame = X.iloc[:rows]
    binned = {int(j): column_bins(frame[features[j].name], features[j]) for j in columns}
    one_way = {j: _explained(b, r) for j, b in binned.items()}
    scored: list[tuple[float, int, int]] = []
    for pos, a in enumerate(sorted(binned)):
        for b in sorted(binned)[pos + 1:]:
            cells = binned[a] * (BINS + 1) + binned[b]
            explained, n_cells = _explained(cells, r)
            extra = explained - one_way[a][0] - one_way[b][0]
            free = n_cells - one_way[a][1] - one_way[b][1] + 1
            score = extra - free * noise
            if score > 0:
                scored.append((score, a, b))
    scored.sort(key=lambda t: (-t[0], t[1], t[2]))
    return [(features[a].name, features[b].name) for _, a, b in scored[:n_pairs]]


def _explained(groups: np.ndarray, r: np.ndarray) -> tuple[float, int]:
    """Sum of squares of ``r`` (centred) that the groups' means explain, and the number of
    non-empty groups."""
    counts = np.bincount(groups)
    filled = counts > 0
    total = 0.0
    for k in range(r.shape[1]):
        sums = np.bincount(groups, weights=r[:, k], minlength=len(counts))
        total += float((sums[filled] ** 2 / counts[filled]).sum())
    return total, int(filled.sum())
