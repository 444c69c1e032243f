"""Search space of the ``random_forest`` family: a same-server black box (a future teacher)."""

from __future__ import annotations

from typing import Any

from ray import tune

SEARCH_SPACE: dict[str, Any] = {
    "n_estimators": tune.randint(50, 301),  # 50..300
    "max_depth": tune.randint(4, 21),  # 4..20: deep trees are what forests average over
    "min_samples_leaf": tune.lograndint(1, 21),  # 1..20
    "max_features": tune.uniform(0.2, 1.0),  # fraction of design columns per split
}
