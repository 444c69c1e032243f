"""Registry of model families: one module per family, registered here.

Plugging one in: its module (a `Family`), an instance in the registration loop below, its
name in `REASONING_FAMILIES` or `SAME_SERVER_FAMILIES`, and a search space in
`tune_configs/`.
"""

from __future__ import annotations

from reasoning.families.base import Family, FittedCore, StackedCore, Task
from reasoning.families.decision_tree import DecisionTreeFamily
from reasoning.families.gam import GamFamily
from reasoning.families.linear import LinearFamily
from reasoning.families.mlp import MlpFamily
from reasoning.families.random_forest import RandomForestFamily
from reasoning.families.xgboost import XGBoostFamily

FAMILIES: dict[str, Family] = {}
"""Every family this server can fit: the reasoning ones and same-server black boxes."""

REASONING_FAMILIES: tuple[str, ...] = ("linear", "gam", "decision_tree", "xgboost")
"""Families allowed in ``model_types`` of /v1/reasoning/fit."""

SAME_SERVER_FAMILIES: tuple[str, ...] = ("random_forest", "mlp")
"""Black boxes for /v1/models/fit only (future teachers); they still explain themselves."""


def register_family(family: Family) -> Family:
    """Add a family under its name (a later module calls this for itself)."""
    if family.name in FAMILIES:
        raise ValueError(f"family {family.name!r} is already registered")
    FAMILIES[family.name] = family
    return family


def get_family(name: str) -> Family:
    """The family called ``name``; the error lists the valid names (the API shows it as a 422)."""
    try:
        return FAMILIES[name]
    except (KeyError, TypeError):
        raise ValueError(
            f"unknown model family {name!r}; valid families: {sorted(FAMILIES)}"
        ) from None


def is_differentiable(name: str) -> bool:
    """Whether the family can be a DiffModel (fitted to Jacobians, served at /grads)."""
    return get_family(name).differentiable


def differentiable_families(among: tuple[str, ...] | None = None) -> list[str]:
    """The differentiable families (of `among`, default all), for messages and documents."""
    names = tuple(FAMILIES) if among is None else among
    return [name for name in names if is_differentiable(name)]


for _family in (
    LinearFamily(),
    GamFamily(),
    DecisionTreeFamily(),
    XGBoostFamily(),
    RandomForestFamily(),
    MlpFamily(),
):
    register_family(_family)

__all__ = [
    "FAMILIES",
    "REASONING_FAMILIES",
    "SAME_SERVER_FAMILIES",
    "Family",
    "FittedCore",
    "StackedCore",
    "Task",
    "get_family",
    "differentiable_families",
    "is_differentiable",
    "register_family",
]
