"""Registry of model families: one module per family, registered here.

Plugging one in: its module (a `Family`), an instance in the registration loop below, its
name in `reasoning.family_names` (and in `DIFFERENTIABLE_FAMILIES` if it is), and a search
space in `tune_configs/`.
"""

from __future__ import annotations

from reasoning.families.base import Family, FittedCore, StackedCore, Task
from reasoning.families.decision_tree import DecisionTreeFamily
from reasoning.families.gam import GamFamily
from reasoning.families.linear import LinearFamily
from reasoning.families.mlp import MlpFamily
from reasoning.families.random_forest import RandomForestFamily
from reasoning.families.xgboost import XGBoostFamily
from reasoning.family_names import (
    ALL_FAMILIES,
    REASONING_FAMILIES,
    SAME_SERVER_FAMILIES,
    differentiable_families,
)

FAMILIES: dict[str, Family] = {}
"""Every family this server can fit: the reasoning ones and same-server black boxes."""


def register_family(family: Family) -> Family:
    """Add a family under its name (which `reasoning.family_names` must list too)."""
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


for _family in (
    LinearFamily(),
    GamFamily(),
    DecisionTreeFamily(),
    XGBoostFamily(),
    RandomForestFamily(),
    MlpFamily(),
):
    register_family(_family)
if tuple(FAMILIES) != ALL_FAMILIES:
    raise ImportError(f"registered families {list(FAMILIES)} differ from "
                      f"reasoning.family_names {list(ALL_FAMILIES)}")

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
