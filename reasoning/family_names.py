"""The model families by name: which route takes which, and which are differentiable.

Requests are checked against these names (`reasoning.schemas`), and what only checks
requests (the CLI, the Python client) should not pay for importing scikit-learn and
xgboost, which the families' code needs. `reasoning.families` registers one family per
name here, in this order, and refuses on import a registry that disagrees.
"""

REASONING_FAMILIES: tuple[str, ...] = ("linear", "gam", "decision_tree", "xgboost")
"""Families allowed in ``model_types`` of /v1/reasoning/fit."""

SAME_SERVER_FAMILIES: tuple[str, ...] = ("random_forest", "mlp")
"""Black boxes for /v1/models/fit only (future teachers); they still explain themselves."""

ALL_FAMILIES: tuple[str, ...] = REASONING_FAMILIES + SAME_SERVER_FAMILIES
"""Every family this server can fit."""

DIFFERENTIABLE_FAMILIES: frozenset[str] = frozenset({"linear", "gam", "mlp"})
"""Families that can be a DiffModel: fitted to Jacobians, and served at /grads."""


def differentiable_families(among: tuple[str, ...] = ALL_FAMILIES) -> list[str]:
    """The differentiable families of `among`, in its order, for messages and documents."""
    return [name for name in among if name in DIFFERENTIABLE_FAMILIES]
