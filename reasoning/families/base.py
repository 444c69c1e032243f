"""What a model family is: hyperparameter defaults, an encoder, and a fitted core with reasons.

A new family (random_forest, mlp, ...) is one module with a ``Family`` subclass and a
``FittedCore`` subclass, registered as ``reasoning.families`` says. Everything around it
(input columns, classes, JSON, explanations) lives in ``reasoning.model`` and beside it, shared.

Output convention (all families): ``decision`` gives raw outputs of shape (n, K) with K = 1 for
regression and K = n_classes for classification. Binary: column 1 is the log-odds m of class 1 and
column 0 is -m; multiclass: one score per class. ``base_value + contributions(Z).sum(axis=1)``
equals ``decision(Z)`` to 1e-6.

Soft targets (distillation): ``Family.fit_soft`` fits a classification core to the teacher's raw
outputs as regression targets, (n, 1) class-1 log-odds m for binary, (n, K) logits for multiclass;
the core then follows the same output convention.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, ClassVar, Literal

import numpy as np
import pandas as pd
from scipy.special import expit, softmax

from reasoning.encoding import DesignColumn, NumericMode, TableEncoder
from reasoning.family_names import DIFFERENTIABLE_FAMILIES

TaskKind = Literal["regression", "classification"]
TASK_KINDS: tuple[str, ...] = ("regression", "classification")


@dataclass(frozen=True)
class Task:
    """What the core predicts: a value, or one of ``n_classes`` class indices 0..n_classes-1."""

    kind: TaskKind
    n_classes: int = 1

    def __post_init__(self) -> None:
        if self.kind not in TASK_KINDS:
            raise ValueError(f"task_kind must be one of {list(TASK_KINDS)}, got {self.kind!r}")
        if self.kind == "classification" and self.n_classes < 2:
            raise ValueError("classification needs at least two classes in the training labels")

    @property
    def n_outputs(self) -> int:
        """K: 1 for regression, the number of classes for classification."""
        return 1 if self.kind == "regression" else self.n_classes

    @property
    def is_binary(self) -> bool:
        """Binary classification uses one log-odds, mirrored for class 0."""
        return self.kind == "classification" and self.n_classes == 2


def column_means(Z: np.ndarray) -> np.ndarray:
    """Design-column means, the centre that reasons are measured from (zeros for no rows)."""
    return Z.mean(axis=0) if len(Z) else np.zeros(Z.shape[1])


def mirror_binary(m: np.ndarray) -> np.ndarray:
    """Class-1 scores (..., ) -> (..., 2) scores [-m, m]: the binary raw-output convention."""
    return np.stack([-m, m], axis=-1)


class FittedCore(ABC):
    """A fitted model on the design matrix that explains itself additively."""

    task: Task
    base_value: np.ndarray
    """(K,) raw output before any column contributes."""

    @abstractmethod
    def decision(self, Z: np.ndarray) -> np.ndarray:
        """Raw outputs (n, K)."""

    @abstractmethod
    def contributions(self, Z: np.ndarray) -> np.ndarray:
        """Additive contributions per design column (n, d, K), in raw-output space."""

    def proba(self, Z: np.ndarray) -> np.ndarray:
        """Class probabilities (n, K): sigmoid of the class-1 log-odds, or softmax of the logits."""
        raw = self.decision(Z)
        if self.task.is_binary:
            p1 = expit(raw[:, 1])
            return np.column_stack([1.0 - p1, p1])
        return softmax(raw, axis=1)

    def rules(self, Z: np.ndarray, design: Sequence[DesignColumn]) -> list[str] | None:
        """Per-row rule text, for families that have one (trees); None otherwise."""
        return None

    def design_jacobian(self, Z: np.ndarray) -> np.ndarray:
        """d raw output / d design column (n, d, K), for differentiable families only."""
        raise NotImplementedError(f"{type(self).__name__} has no analytic gradient")


class StackedCore(FittedCore):
    """A classification core made of one regression core per fitted output (soft targets).

    Binary: one core for the class-1 log-odds m, mirrored to [-m, m]; multiclass: one per class.
    Probabilities are the sigmoid / softmax of the stacked outputs (``FittedCore.proba``).
    """

    def __init__(self, task: Task, cores: Sequence[FittedCore]) -> None:
        self.task = task
        self.cores = list(cores)
        self.base_value = self._stack([np.asarray(c.base_value) for c in self.cores])

    def _stack(self, parts: Sequence[np.ndarray]) -> np.ndarray:
        out = np.concatenate(parts, axis=-1)
        return mirror_binary(out[..., 0]) if self.task.is_binary else out

    def decision(self, Z: np.ndarray) -> np.ndarray:
        return self._stack([c.decision(Z) for c in self.cores])

    def contributions(self, Z: np.ndarray) -> np.ndarray:
        return self._stack([c.contributions(Z) for c in self.cores])

    def design_jacobian(self, Z: np.ndarray) -> np.ndarray:
        return self._stack([c.design_jacobian(Z) for c in self.cores])

    def rules(self, Z: np.ndarray, design: Sequence[DesignColumn]) -> list[str] | None:
        """The one core's rules for binary; several trees have no single rule path."""
        return self.cores[0].rules(Z, design) if len(self.cores) == 1 else None


class Family(ABC):
    """A model family: its name, defaults, encoding, and how to fit a core."""

    name: ClassVar[str]
    numeric_encoding: ClassVar[NumericMode]
    defaults: ClassVar[Mapping[str, Any]]

    @property
    def differentiable(self) -> bool:
        """Whether it can be a DiffModel: said once, by name, in `reasoning.family_names`."""
        return self.name in DIFFERENTIABLE_FAMILIES

    def resolve_params(self, params: Mapping[str, Any] | None) -> dict[str, Any]:
        """Defaults overlaid with ``params``; unknown names are an error, types follow defaults.

        Tune hands over numpy scalars; casting to the default's type keeps the chosen
        hyperparameters JSON-safe and makes ``params={}`` always valid.
        """
        given = dict(params or {})
        unknown = sorted(set(given) - set(self.defaults))
        if unknown:
            raise ValueError(
                f"unknown hyperparameters for family {self.name!r}: {unknown}; "
                f"valid: {sorted(self.defaults)}"
            )
        resolved: dict[str, Any] = {}
        for key, default in self.defaults.items():
            value = given.get(key, default)
            if isinstance(default, bool):
                resolved[key] = bool(value)
            elif isinstance(default, int):
                if float(value) != int(float(value)):
                    raise ValueError(f"hyperparameter {key!r} must be an integer, got {value!r}")
                resolved[key] = int(float(value))
            elif isinstance(default, float):
                resolved[key] = float(value)
            else:
                resolved[key] = value
        self.validate_params(resolved)
        return resolved

    def validate_params(self, params: Mapping[str, Any]) -> None:
        """Reject values the estimator would choke on, with a message naming the parameter."""
        return None

    def make_encoder(self, params: Mapping[str, Any]) -> TableEncoder:
        """The (unfitted) encoder this family fits on."""
        return TableEncoder(numeric=self.numeric_encoding)

    def pair_terms(self, params: Mapping[str, Any]) -> int:
        """How many pairwise interaction terms to add after an additive fit (GA²M); the
        families that explain themselves another way have none."""
        return 0

    @abstractmethod
    def fit(
        self,
        Z: np.ndarray,
        y: np.ndarray,
        task: Task,
        params: Mapping[str, Any],
        random_state: int | None,
    ) -> FittedCore:
        """Fit on design matrix Z; y is float (regression) or class index 0..K-1."""

    def fit_soft(
        self,
        Z: np.ndarray,
        targets: np.ndarray,
        task: Task,
        params: Mapping[str, Any],
        random_state: int | None,
    ) -> FittedCore:
        """Fit a classification core to raw-output targets (n, 1) binary m or (n, K) logits.

        The default fits one regression core per target column with the same hyperparameters;
        families whose estimator takes several outputs at once override this.
        """
        regression = Task("regression")
        cores = [
            self.fit(Z, targets[:, k], regression, params, random_state)
            for k in range(targets.shape[1])
        ]
        return StackedCore(task, cores)


CoreFit = Callable[[Family, dict[str, Any], TableEncoder, pd.DataFrame, np.ndarray], FittedCore]
"""How a ReasoningModel gets its core: (family, resolved params, fitted encoder, input
frame, design matrix) -> fitted core (a plain fit, a soft-target fit, a Sobolev fit)."""


def fit_for_task(
    task: Task, regressor: Callable[[], Any], classifier: Callable[[], Any], Z: np.ndarray,
    y: np.ndarray,
) -> Any:
    """Fit a new regressor on float targets, or a new classifier on class indices."""
    if task.kind == "regression":
        return regressor().fit(Z, np.asarray(y, dtype=np.float64))
    return classifier().fit(Z, np.asarray(y, dtype=np.intp))


def require_positive(params: Mapping[str, Any], *names: str) -> None:
    """Shared check: each named hyperparameter is > 0."""
    for name in names:
        if not params[name] > 0:
            raise ValueError(f"hyperparameter {name!r} must be > 0, got {params[name]!r}")


def require_range(params: Mapping[str, Any], name: str, low: float, high: float) -> None:
    """Shared check: low <= params[name] <= high."""
    if not low <= params[name] <= high:
        raise ValueError(
            f"hyperparameter {name!r} must be in [{low}, {high}], got {params[name]!r}"
        )
