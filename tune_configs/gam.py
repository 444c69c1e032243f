"""Search space of the ``gam`` family: ridge strength and knots per spline."""

from __future__ import annotations

from typing import Any

from ray import tune

SEARCH_SPACE: dict[str, Any] = {
    "alpha": tune.loguniform(1e-3, 1e2),
    "n_knots": tune.randint(4, 13),  # 4..12; randint's upper bound is exclusive
}
