"""Depth-limited gradient-boosted trees, explained by exact TreeSHAP (``pred_contribs``).

xgboost computes in float32, so its own margin and the sum of its SHAP values differ by float32
rounding (about 1e-7 of the output). Explanations take the output as base + sum(contributions)
in float64 (ReasoningModel.explain does), so reasons always add up exactly; ``decision`` uses
xgboost's own margin, because TreeSHAP costs some hundred times a plain prediction and
predictions (trial scores, teachers, /invocations) need no reasons.
"""

from __future__ import annotations

from collections.abc import Mapping
from functools import partial
from typing import Any, ClassVar

import numpy as np
import xgboost as xgb

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


class XGBoostCore(FittedCore):
    """A fitted XGBRegressor/XGBClassifier; outputs are float64 sums of its TreeSHAP values."""

    def __init__(self, task: Task, estimator: xgb.XGBRegressor | xgb.XGBClassifier) -> None:
        self.task = task
        self.estimator = estimator
        self.n_design = int(estimator.n_features_in_)
        # The bias column of pred_contribs is the same for every row: read it once.
        probe = np.full((1, self.n_design), np.nan)
        self.base_value = self._shap(probe)[0, -1, :].copy()

    def _shap(self, Z: np.ndarray) -> np.ndarray:
        """TreeSHAP values (n, d + 1, K) in float64; the last design slot is the bias."""
        dmat = xgb.DMatrix(Z, missing=np.nan, nthread=1)
        raw = self.estimator.get_booster().predict(dmat, pred_contribs=True)
        raw = np.asarray(raw, dtype=np.float64)
        if raw.ndim == 3:  # multiclass: (n, K, d + 1)
            return np.transpose(raw, (0, 2, 1))
        if self.task.is_binary:
            return mirror_binary(raw)
        return raw[:, :, None]

    def contributions(self, Z: np.ndarray) -> np.ndarray:
        return self._shap(Z)[:, :-1, :]

    def decision(self, Z: np.ndarray) -> np.ndarray:
        dmat = xgb.DMatrix(Z, missing=np.nan, nthread=1)
        margin = self.estimator.get_booster().predict(dmat, output_margin=True)
        margin = np.asarray(margin, dtype=np.float64)
        if margin.ndim == 2:  # multiclass: (n, K)
            return margin
        return mirror_binary(margin) if self.task.is_binary else margin[:, None]


class XGBoostFamily(Family):
    """XGBRegressor / XGBClassifier with the hist method on one thread (deterministic)."""

    name: ClassVar[str] = "xgboost"
    numeric_encoding: ClassVar[NumericMode] = "raw"
    defaults: ClassVar[Mapping[str, Any]] = {
        "n_estimators": 200,
        "max_depth": 4,
        "learning_rate": 0.1,
        "subsample": 1.0,
        "colsample_bytree": 1.0,
        "min_child_weight": 1.0,
        "reg_lambda": 1.0,
    }

    def validate_params(self, params: Mapping[str, Any]) -> None:
        require_positive(params, "n_estimators", "max_depth", "learning_rate")
        require_range(params, "subsample", 1e-6, 1.0)
        require_range(params, "colsample_bytree", 1e-6, 1.0)
        require_range(params, "min_child_weight", 0.0, np.inf)
        require_range(params, "reg_lambda", 0.0, np.inf)

    def fit(
        self,
        Z: np.ndarray,
        y: np.ndarray,
        task: Task,
        params: Mapping[str, Any],
        random_state: int | None,
    ) -> XGBoostCore:
        common: dict[str, Any] = {
            **{key: params[key] for key in self.defaults},
            "tree_method": "hist",
            "n_jobs": 1,
            "random_state": 0 if random_state is None else int(random_state),
            "missing": np.nan,
        }
        estimator = fit_for_task(
            task, partial(xgb.XGBRegressor, objective="reg:squarederror", **common),
            partial(xgb.XGBClassifier, **common), Z, y,
        )
        return XGBoostCore(task, estimator)
