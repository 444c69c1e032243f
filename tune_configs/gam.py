"""Search space of the ``gam`` family: ridge strength, knots per spline, and how many pairwise
interaction terms (0: purely additive; the pairs themselves are chosen from the data)."""

from __future__ import annotations

from typing import Any

from ray import tune

from reasoning.families.gam import SEARCHED_PAIRS

SEARCH_SPACE: dict[str, Any] = {
    "alpha": tune.loguniform(1e-3, 1e2),
    "n_knots": tune.randint(4, 13),  # 4..12; randint's upper bound is exclusive
    "n_pairs": tune.choice(list(SEARCHED_PAIRS)),
}
