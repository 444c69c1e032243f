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
    curvature: np.ndarray | None = None,
) -> list[tuple[str, str]]:
    """The ``n_pairs`` pairs of columns whose interaction explains most of ``residuals``
    ((n,) or (n, outputs), the additive model's), best first; pairs that explain no more than
    noise would are left out, so fewer may come back. ``importance`` (n_features,) picks the
    ``MAX_COLUMNS`` columns among which pairs are sought.

    ``curvature`` (the residuals' shape) is the loss's second derivative per row: for the
    log loss p(1 - p), whose residuals y - p are the first. A cell then gains S²/H (its
    gradient sum squared over its curvature sum: the Newton step's gain, as boosting and
    FAST score a split) rather than S²/n, so columns that move p towards 0 or 1 do not look
    as if they interact with everything. Without it, squared error: every row weighs 1.
    """
    if n_pairs <= 0 or len(features) < 2:
        return []
    r = np.asarray(residuals, dtype=np.float64)
    r = r.reshape(len(r), -1)[:MAX_ROWS]
    rows = len(r)
    h = (np.ones_like(r) if curvature is None
         else np.asarray(curvature, dtype=np.float64).reshape(len(r), -1)[:rows])
    h = np.maximum(h, 1e-12)
    r = r - h * (r.sum(axis=0) / h.sum(axis=0))  # no overall offset left to explain
    # What one free cell explains of pure noise: the residuals' variance per unit curvature.
    noise = float((r**2).sum() / h.sum())
    columns = np.argsort(-np.asarray(importance), kind="stable")[:MAX_COLUMNS]
    frame = X.iloc[:rows]
    binned = {int(j): column_bins(frame[features[j].name], features[j]) for j in columns}
    one_way = {j: _explained(b, r, h) for j, b in binned.items()}
    scored: list[tuple[float, int, int]] = []
    for pos, a in enumerate(sorted(binned)):
        for b in sorted(binned)[pos + 1:]:
            cells = binned[a] * (BINS + 1) + binned[b]
            explained, n_cells = _explained(cells, r, h)
            extra = explained - one_way[a][0] - one_way[b][0]
            free = n_cells - one_way[a][1] - one_way[b][1] + 1
            # How far beyond noise, in the null's standard deviations (a chi-square with
            # `free` degrees of freedom per output): wide tables of cells are noisy too.
            dof = free * r.shape[1]
            score = (extra / noise - dof) / np.sqrt(2.0 * max(dof, 1))
            if score > 0:
                scored.append((score, a, b))
    scored.sort(key=lambda t: (-t[0], t[1], t[2]))
    return [(features[a].name, features[b].name) for _, a, b in scored[:n_pairs]]


def _explained(groups: np.ndarray, r: np.ndarray, h: np.ndarray) -> tuple[float, int]:
    """What the groups' own offsets explain of ``r`` (Σ over groups and outputs of S²/H, the
    gain of one Newton step per group), and the number of non-empty groups."""
    counts = np.bincount(groups)
    filled = counts > 0
    total = 0.0
    for k in range(r.shape[1]):
        sums = np.bincount(groups, weights=r[:, k], minlength=len(counts))[filled]
        mass = np.bincount(groups, weights=h[:, k], minlength=len(counts))[filled]
        total += float((sums**2 / mass).sum())
    return total, int(filled.sum())
