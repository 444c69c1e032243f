"""Ridge / logistic regression on standardized numerics and one-hot categoricals.

Reasons are coef x (z - mean_train(z)): centring makes the base value the output of an average
row, so a column at its training mean contributes nothing.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from functools import partial
from typing import Any, ClassVar

import numpy as np
from sklearn.linear_model import LogisticRegression, Ridge

from reasoning.encoding import NumericMode
from reasoning.families.base import (
    Family,
    FittedCore,
    Task,
    column_means,
    fit_for_task,
    mirror_binary,
    require_positive,
)


class LinearCore(FittedCore):
    """Raw outputs Z @ coef.T + intercept, with coef (K', d) where K' = 1 for regression/binary."""

    def __init__(
        self, task: Task, estimator: Ridge | LogisticRegression, z_mean: np.ndarray
    ) -> None:
        self.task = task
        self.estimator = estimator
        self.coef = np.atleast_2d(np.asarray(estimator.coef_, dtype=np.float64))
        self.intercept = np.atleast_1d(np.asarray(estimator.intercept_, dtype=np.float64))
        self.z_mean = z_mean
        base = self.intercept + self.coef @ z_mean
        self.base_value = mirror_binary(base[0]) if task.is_binary else base

    def _scores(self, Z: np.ndarray) -> np.ndarray:
        return Z @ self.coef.T + self.intercept

    def decision(self, Z: np.ndarray) -> np.ndarray:
        scores = self._scores(Z)
        return mirror_binary(scores[:, 0]) if self.task.is_binary else scores

    def contributions(self, Z: np.ndarray) -> np.ndarray:
        centred = Z - self.z_mean
        contrib = centred[:, :, None] * self.coef.T[None, :, :]
        return mirror_binary(contrib[:, :, 0]) if self.task.is_binary else contrib

    def design_jacobian(self, Z: np.ndarray) -> np.ndarray:
        """The coefficients, the same at every row: the model is linear in the design."""
        grad = np.broadcast_to(self.coef.T[None, :, :], (len(Z), *self.coef.T.shape))
        return mirror_binary(grad[:, :, 0]) if self.task.is_binary else grad.copy()


class LinearFamily(Family):
    """Ridge(alpha) for regression, LogisticRegression(C=1/alpha) for classification."""

    name: ClassVar[str] = "linear"
    numeric_encoding: ClassVar[NumericMode] = "standard"
    defaults: ClassVar[Mapping[str, Any]] = {"alpha": 1.0}

    def validate_params(self, params: Mapping[str, Any]) -> None:
        require_positive(params, "alpha")

    def estimators(
        self, params: Mapping[str, Any], random_state: int | None
    ) -> tuple[Callable[[], Any], Callable[[], Any]]:
        """The (regressor, classifier) a label fit makes: Ridge and LogisticRegression at
        the given alpha (lbfgs is deterministic; random_state matters to other solvers)."""
        alpha = float(params["alpha"])
        return (partial(Ridge, alpha=alpha),
                partial(LogisticRegression, C=1.0 / alpha, max_iter=2000,
                        random_state=random_state))

    def fit(
        self,
        Z: np.ndarray,
        y: np.ndarray,
        task: Task,
        params: Mapping[str, Any],
        random_state: int | None,
    ) -> LinearCore:
        estimator = fit_for_task(task, *self.estimators(params, random_state), Z, y)
        return LinearCore(task, estimator, column_means(Z))

    def fit_soft(
        self,
        Z: np.ndarray,
        targets: np.ndarray,
        task: Task,
        params: Mapping[str, Any],
        random_state: int | None,
    ) -> LinearCore:
        """One multi-output Ridge on the teacher's log-odds / logits (the same fit per class)."""
        estimator = Ridge(alpha=float(params["alpha"]))
        estimator.fit(Z, np.asarray(targets, dtype=np.float64))
        return LinearCore(task, estimator, column_means(Z))
