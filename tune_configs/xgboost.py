"""Search space of the ``xgboost`` family: depth-limited boosting around the usual defaults."""

from __future__ import annotations

from typing import Any

from ray import tune

SEARCH_SPACE: dict[str, Any] = {
    "n_estimators": tune.randint(50, 401),  # 50..400
    "max_depth": tune.randint(2, 7),  # 2..6
    "learning_rate": tune.loguniform(0.01, 0.3),
    "subsample": tune.uniform(0.6, 1.0),
    "colsample_bytree": tune.uniform(0.6, 1.0),
    "min_child_weight": tune.loguniform(0.5, 20.0),
    "reg_lambda": tune.loguniform(1e-2, 10.0),
}
