"""Test metrics for model cards and the validation loss that ranks hyperparameter trials.

Plain floats only (model cards are JSON): a metric that is undefined on the given rows (ROC AUC
with one class present, R2 on a single row) is left out rather than reported as NaN.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np
import pandas as pd
from sklearn import metrics as skm

from reasoning.labels import label_array

LOG_LOSS_EPS = 1e-15


def _log_loss(y: np.ndarray, proba: np.ndarray, classes: np.ndarray) -> float:
    """sklearn's log loss; a label the model never saw costs -log(eps) instead of an error."""
    known = np.isin(y, classes)
    if known.all():
        return float(skm.log_loss(y, proba, labels=classes))
    idx = np.searchsorted(classes, np.where(known, y, classes[0]))
    p = np.where(known, proba[np.arange(len(y)), idx], 0.0)
    return float(-np.mean(np.log(np.clip(p, LOG_LOSS_EPS, 1.0))))


def _finite(values: dict[str, float]) -> dict[str, float]:
    return {k: float(v) for k, v in values.items() if v is not None and math.isfinite(v)}


def evaluate(task_kind: str, y_true: Any, model: Any, X: pd.DataFrame) -> dict[str, float]:
    """Test metrics of a fitted model (``predict``, ``predict_proba``, ``classes_``) on (X, y).

    Regression: rmse, mae, r2. Classification: accuracy, log_loss, and roc_auc (binary) or
    f1_macro (multiclass).
    """
    y = label_array(y_true)
    if len(y) == 0:
        return {}
    if task_kind == "regression":
        pred = np.asarray(model.predict(X), dtype=np.float64)
        y = y.astype(np.float64)
        out = {
            "rmse": skm.root_mean_squared_error(y, pred),
            "mae": skm.mean_absolute_error(y, pred),
            "r2": skm.r2_score(y, pred) if len(y) >= 2 else math.nan,
        }
        return _finite(out)
    if task_kind != "classification":
        raise ValueError(f"unknown task_kind {task_kind!r}")
    classes = np.asarray(model.classes_)
    proba = np.asarray(model.predict_proba(X), dtype=np.float64)
    pred = np.asarray(model.predict(X))
    out = {
        "accuracy": skm.accuracy_score(y, pred),
        "log_loss": _log_loss(y, proba, classes),
    }
    if len(classes) == 2:
        if len(np.unique(y)) == 2 and np.isin(y, classes).all():
            out["roc_auc"] = skm.roc_auc_score(y == classes[1], proba[:, 1])
    else:
        out["f1_macro"] = skm.f1_score(y, pred, labels=classes, average="macro", zero_division=0)
    return _finite(out)


def validation_loss(task_kind: str, y_true: Any, model: Any, X: pd.DataFrame) -> float:
    """Lower is better: rmse for regression, log loss for classification (inf if undefined)."""
    y = label_array(y_true)
    if len(y) == 0:
        return math.inf
    if task_kind == "regression":
        pred = np.asarray(model.predict(X), dtype=np.float64)
        loss = float(skm.root_mean_squared_error(y.astype(np.float64), pred))
    elif task_kind == "classification":
        proba = np.asarray(model.predict_proba(X), dtype=np.float64)
        loss = _log_loss(y, proba, np.asarray(model.classes_))
    else:
        raise ValueError(f"unknown task_kind {task_kind!r}")
    return loss if math.isfinite(loss) else math.inf
