"""Ray Tune search spaces, one module per family, and the registry that maps names to them.

Keys are exactly the family's hyperparameter names in ``reasoning.families``; a family without an
entry here cannot be searched (`search_space` refuses it, naming the ones it knows).
"""

from __future__ import annotations

import copy
from typing import Any

from tune_configs import decision_tree, gam, linear, mlp, random_forest, xgboost

SEARCH_SPACES: dict[str, dict[str, Any]] = {
    "linear": linear.SEARCH_SPACE,
    "gam": gam.SEARCH_SPACE,
    "decision_tree": decision_tree.SEARCH_SPACE,
    "xgboost": xgboost.SEARCH_SPACE,
    "random_forest": random_forest.SEARCH_SPACE,
    "mlp": mlp.SEARCH_SPACE,
}


def search_space(family: str) -> dict[str, Any]:
    """A fresh copy of the family's search space (Tune may mutate what it is handed)."""
    try:
        space = SEARCH_SPACES[family]
    except KeyError:
        raise ValueError(
            f"no search space for family {family!r}; known: {sorted(SEARCH_SPACES)}"
        ) from None
    return copy.deepcopy(space)
