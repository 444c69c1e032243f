"""Search space of the ``decision_tree`` family: shallow enough that rule paths stay readable."""

from __future__ import annotations

from typing import Any

from ray import tune

SEARCH_SPACE: dict[str, Any] = {
    "max_depth": tune.randint(2, 9),  # 2..8
    "min_samples_leaf": tune.lograndint(1, 51),  # 1..50, small leaves as likely as big ones
}
