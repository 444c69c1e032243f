"""Metrics: the right keys per task, values that match their definitions, JSON-safe floats."""

from __future__ import annotations

import json
import math

import numpy as np
import pandas as pd
import pytest

from reasoning.metrics import evaluate, validation_loss
from reasoning.model import ReasoningModel
from tests.unit.test_families import make_task


class Fixed:
    """A stand-in model whose outputs are given, so expected metrics can be computed by hand."""

    def __init__(self, pred: np.ndarray, proba: np.ndarray | None = None, classes=None) -> None:
        self.pred = np.asarray(pred)
        self.proba = proba
        self.classes_ = None if classes is None else np.asarray(classes)

    def predict(self, X: pd.DataFrame) -> np.ndarray:
        return self.pred

    def predict_proba(self, X: pd.DataFrame) -> np.ndarray:
        assert self.proba is not None
        return self.proba


NO_X = pd.DataFrame()


def test_regression_metrics_by_hand() -> None:
    y = np.array([1.0, 2.0, 3.0, 4.0])
    pred = np.array([1.0, 2.0, 3.0, 6.0])
    out = evaluate("regression", y, Fixed(pred), NO_X)
    assert set(out) == {"rmse", "mae", "r2"}
    assert out["rmse"] == pytest.approx(1.0)
    assert out["mae"] == pytest.approx(0.5)
    assert out["r2"] == pytest.approx(1 - 4.0 / 5.0)
    assert all(type(v) is float for v in out.values())
    assert validation_loss("regression", pd.Series(y), Fixed(pred), NO_X) == pytest.approx(1.0)


def test_binary_metrics_by_hand() -> None:
    y = np.array(["no", "yes", "yes", "no"])
    p_yes = np.array([0.2, 0.9, 0.4, 0.6])
    proba = np.column_stack([1 - p_yes, p_yes])
    pred = np.where(p_yes > 0.5, "yes", "no")
    model = Fixed(pred, proba, ["no", "yes"])
    out = evaluate("classification", y, model, NO_X)
    assert set(out) == {"accuracy", "log_loss", "roc_auc"}
    assert out["accuracy"] == pytest.approx(0.5)
    expected_ll = -np.mean(np.log([0.8, 0.9, 0.4, 0.4]))
    assert out["log_loss"] == pytest.approx(expected_ll)
    assert out["roc_auc"] == pytest.approx(0.75)
    assert validation_loss("classification", y, model, NO_X) == pytest.approx(expected_ll)


def test_multiclass_metrics_use_macro_f1() -> None:
    y = np.array([0, 1, 2, 2])
    proba = np.array([[0.8, 0.1, 0.1], [0.1, 0.8, 0.1], [0.1, 0.1, 0.8], [0.6, 0.2, 0.2]])
    model = Fixed(np.array([0, 1, 2, 0]), proba, [0, 1, 2])
    out = evaluate("classification", y, model, NO_X)
    assert set(out) == {"accuracy", "log_loss", "f1_macro"}
    assert out["accuracy"] == pytest.approx(0.75)
    assert out["f1_macro"] == pytest.approx((2 / 3 + 1 + 2 / 3) / 3)


def test_undefined_metrics_are_left_out() -> None:
    y = np.array([1, 1, 1])
    proba = np.array([[0.3, 0.7]] * 3)
    out = evaluate("classification", y, Fixed(np.array([1, 1, 1]), proba, [0, 1]), NO_X)
    assert "roc_auc" not in out and out["accuracy"] == 1.0
    single = evaluate("regression", np.array([2.0]), Fixed(np.array([1.0])), NO_X)
    assert "r2" not in single and single["rmse"] == 1.0


def test_unseen_label_costs_but_does_not_crash() -> None:
    proba = np.array([[0.5, 0.5], [0.9, 0.1]])
    model = Fixed(np.array(["a", "a"]), proba, ["a", "b"])
    loss = validation_loss("classification", np.array(["a", "c"]), model, NO_X)
    assert math.isfinite(loss)
    assert loss > validation_loss("classification", np.array(["a", "a"]), model, NO_X) + 10


def test_unknown_task_kind() -> None:
    with pytest.raises(ValueError, match="task_kind"):
        evaluate("ranking", np.array([1.0]), Fixed(np.array([1.0])), NO_X)


@pytest.mark.parametrize("task", ["regression", "binary", "multiclass"])
def test_on_a_fitted_model(task: str) -> None:
    X, y, kind = make_task(task, n=240)
    model = ReasoningModel("linear", kind).fit(X.iloc[:180], y[:180])
    out = evaluate(kind, y[180:], model, X.iloc[180:])
    json.dumps(out, allow_nan=False)
    loss = validation_loss(kind, y[180:], model, X.iloc[180:])
    if kind == "regression":
        assert out["r2"] > 0.5 and loss == pytest.approx(out["rmse"])
    else:
        assert out["accuracy"] > 0.6 and loss == pytest.approx(out["log_loss"])
