"""A random forest (same-server black box), explained by Saabas path contributions per tree.

Each tree's path contributions (``decision_tree.path_steps``) are averaged over the trees, so they
telescope to the forest's average leaf value. Regression: that is the prediction itself.
Classification: the average is the forest's class probability p, and the raw output is the
clipped log-odds of p per class (as for the single tree); the probability-space contributions of a
row are scaled by (logodds(p) - logodds(p_base)) / (p - p_base), one factor per row and class, so
that they keep their signs and proportions and sum exactly to the raw output.
"""

from __future__ import annotations

from collections.abc import Mapping
from functools import partial
from typing import Any, ClassVar

import numpy as np
from scipy import sparse
from sklearn.ensemble import RandomForestClassifier, RandomForestRegressor

from reasoning.encoding import NumericMode
from reasoning.families.base import (
    Family,
    FittedCore,
    Task,
    fit_for_task,
    mirror_binary,
    require_positive,
    require_range,
)
from reasoning.families.decision_tree import PROBA_CLIP, clipped_log_odds, path_steps

_FLAT = 1e-14
"""Below this probability change the secant factor is replaced by the log-odds slope."""


class ForestCore(FittedCore):
    """A fitted sklearn forest with one stacked Saabas map for all its trees."""

    def __init__(
        self, task: Task, estimator: RandomForestRegressor | RandomForestClassifier
    ) -> None:
        self.task = task
        self.estimator = estimator
        self.n_design = int(estimator.n_features_in_)
        trees = [tree.tree_ for tree in estimator.estimators_]
        values = [self._node_values(tree) for tree in trees]
        # decision_path concatenates the trees' nodes in this order: stack the maps the same way.
        steps = sparse.vstack(
            [path_steps(tree, value, self.n_design) for tree, value in zip(trees, values,
                                                                           strict=True)]
        )
        self.step_matrix = (steps / len(trees)).tocsr()
        self.root_value = np.mean([value[0] for value in values], axis=0)
        self.k = self.root_value.shape[0]
        if task.kind == "regression":
            self.base_value = self.root_value.copy()
        else:
            base = clipped_log_odds(self.root_value)
            self.base_value = mirror_binary(base[0]) if task.is_binary else base

    def _node_values(self, tree: Any) -> np.ndarray:
        """(n_nodes, K') node means (regression) or class fractions (class 1 only for binary)."""
        if self.task.kind == "regression":
            return tree.value[:, 0, :1].astype(np.float64)
        frac = tree.value[:, 0, :].astype(np.float64)
        frac = frac / frac.sum(axis=1, keepdims=True)
        return frac[:, 1:2] if self.task.is_binary else frac

    def _probability(self, Z: np.ndarray) -> np.ndarray:
        """The forest's own probabilities of the fitted outputs (n, K')."""
        proba = self.estimator.predict_proba(Z)
        return proba[:, 1:2] if self.task.is_binary else proba

    def _finish(self, out: np.ndarray) -> np.ndarray:
        return mirror_binary(out[..., 0]) if self.task.is_binary else out

    def decision(self, Z: np.ndarray) -> np.ndarray:
        if self.task.kind == "regression":
            return self.estimator.predict(Z).astype(np.float64).reshape(len(Z), 1)
        return self._finish(clipped_log_odds(self._probability(Z)))

    def contributions(self, Z: np.ndarray) -> np.ndarray:
        indicator, _ = self.estimator.decision_path(Z)
        steps = (indicator @ self.step_matrix).toarray().reshape(len(Z), self.n_design, self.k)
        if self.task.kind == "regression":
            return steps
        p = self._probability(Z)
        moved = steps.sum(axis=1)  # p - p_base, up to rounding
        change = clipped_log_odds(p) - clipped_log_odds(self.root_value)
        inside = (p > PROBA_CLIP) & (p < 1.0 - PROBA_CLIP)
        slope = np.where(inside, 1.0 / np.clip(p * (1.0 - p), PROBA_CLIP, None), 0.0)
        flat = np.abs(moved) <= _FLAT
        factor = np.where(flat, slope, change / np.where(flat, 1.0, moved))
        return self._finish(steps * factor[:, None, :])

    def proba(self, Z: np.ndarray) -> np.ndarray:
        """The forest's averaged leaf fractions, as it predicts them itself."""
        return self.estimator.predict_proba(Z)


class RandomForestFamily(Family):
    """sklearn random forest on the "raw" encoding (it routes NaN itself), on one thread."""

    name: ClassVar[str] = "random_forest"
    numeric_encoding: ClassVar[NumericMode] = "raw"
    defaults: ClassVar[Mapping[str, Any]] = {
        "n_estimators": 100,
        "max_depth": 12,
        "min_samples_leaf": 1,
        "max_features": 0.5,
    }

    def validate_params(self, params: Mapping[str, Any]) -> None:
        require_positive(params, "n_estimators", "max_depth", "min_samples_leaf")
        require_range(params, "max_features", 1e-6, 1.0)

    def fit(
        self,
        Z: np.ndarray,
        y: np.ndarray,
        task: Task,
        params: Mapping[str, Any],
        random_state: int | None,
    ) -> ForestCore:
        common: dict[str, Any] = {
            "n_estimators": int(params["n_estimators"]),
            "max_depth": int(params["max_depth"]),
            "min_samples_leaf": int(params["min_samples_leaf"]),
            "max_features": float(params["max_features"]),
            "n_jobs": 1,
            "random_state": random_state,
        }
        estimator = fit_for_task(
            task, partial(RandomForestRegressor, **common),
            partial(RandomForestClassifier, **common), Z, y,
        )
        return ForestCore(task, estimator)
