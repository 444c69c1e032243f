"""Search space of the ``linear`` family: ridge strength only."""

from __future__ import annotations

from typing import Any

from ray import tune

SEARCH_SPACE: dict[str, Any] = {
    "alpha": tune.loguniform(1e-3, 1e2),
}
