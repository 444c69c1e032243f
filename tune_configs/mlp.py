"""Search space of the ``mlp`` family: small networks, ridge penalty and adam's step size."""

from __future__ import annotations

from typing import Any

from ray import tune

SEARCH_SPACE: dict[str, Any] = {
    # Tune samples an index into the list, so tuples of different lengths are fine.
    "hidden_layer_sizes": tune.choice([(32,), (64,), (64, 32)]),
    "activation": tune.choice(["relu", "tanh"]),
    "alpha": tune.loguniform(1e-5, 1e-1),
    "learning_rate_init": tune.loguniform(1e-3, 1e-2),
}
