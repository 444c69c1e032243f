"""Analytic Jacobians (linear, gam, mlp) against central finite differences of the raw output."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from reasoning.encoding import TableEncoder
from reasoning.model import ReasoningModel
from reasoning.targets import teacher_logits
from tests.unit.test_families import N_TRAIN, make_task

TASKS = ("regression", "binary", "multiclass")
NUMERIC = {"age": 1e-3, "income": 1e-3, "signup": 1e-2}  # column -> step in its own units
COLUMNS = ["age", "income", "member", "color", "signup"]
CASES = [
    ("linear", {}),
    ("gam", {}),
    ("mlp", {"activation": "tanh", "max_iter": 200}),
    ("mlp", {"activation": "relu", "max_iter": 200}),
]


def _shift(X: pd.DataFrame, column: str, step: float) -> pd.DataFrame:
    out = X.copy()
    if column == "signup":
        out[column] = X[column] + pd.to_timedelta(step, unit="D")
    else:
        out[column] = X[column].astype("float64") + step
    return out


def _interior(train: pd.DataFrame, X: pd.DataFrame, column: str) -> np.ndarray:
    """Rows with a value strictly inside the training range.

    A spline is flat outside its knots, so at the range's ends it has a kink: the Jacobian gives
    the slope from inside there, central differences the average of both sides.
    """
    values = X[column]
    inside = values.notna() & (values > train[column].min()) & (values < train[column].max())
    return inside.to_numpy(dtype=bool, na_value=False)


def _finite_differences(model: ReasoningModel, X: pd.DataFrame, column: str) -> np.ndarray:
    """(n, K) central differences of decision_function in the column's own units."""
    h = NUMERIC[column]
    up = model.decision_function(_shift(X, column, h))
    down = model.decision_function(_shift(X, column, -h))
    diff = (up - down) / (2.0 * h)
    return diff[:, None] if diff.ndim == 1 else diff


@pytest.fixture(scope="module")
def models() -> dict[tuple[str, str, str], tuple[ReasoningModel, pd.DataFrame]]:
    out = {}
    for task in TASKS:
        X, y, kind = make_task(task)
        for family, params in CASES:
            model = ReasoningModel(family, kind, params, random_state=0)
            out[(family, params.get("activation", ""), task)] = (
                model.fit(X.iloc[:N_TRAIN], y[:N_TRAIN]),
                X.iloc[N_TRAIN:].reset_index(drop=True),
            )
    return out


TRAIN = make_task("regression")[0].iloc[:N_TRAIN]  # the same rows for every task


@pytest.mark.parametrize("task", TASKS)
@pytest.mark.parametrize(("family", "params"), CASES)
def test_jacobian_matches_finite_differences(models, family: str, params: dict, task: str) -> None:
    model, X = models[(family, params.get("activation", ""), task)]
    J = model.jacobian(X)
    k = 1 if task == "regression" else len(model.classes_)
    assert J.shape == (len(X), len(COLUMNS), k) and J.dtype == np.float64
    for column in NUMERIC:
        j = COLUMNS.index(column)
        present = _interior(TRAIN, X, column)
        assert present.sum() > 0.8 * len(X)
        fd = _finite_differences(model, X, column)
        np.testing.assert_allclose(J[present, j, :], fd[present], rtol=1e-4, atol=1e-6)
        assert np.isfinite(J[:, j, :]).all()
        # Somewhere the slope is not 0, or the comparison above would prove nothing.
        assert np.abs(J[present, j, :]).max() > 1e-4
    # Booleans and categoricals have no slope.
    assert np.isnan(J[:, COLUMNS.index("member"), :]).all()
    assert np.isnan(J[:, COLUMNS.index("color"), :]).all()
    if task == "binary":
        np.testing.assert_array_equal(J[..., 0], -J[..., 1])


@pytest.mark.parametrize(("family", "params"), CASES[:2])
def test_missing_value_has_the_slope_at_the_imputed_value(
    models, family: str, params: dict
) -> None:
    """Additive families: the slope at a missing income is the slope at the training median."""
    model, X = models[(family, "", "regression")]
    train_median = float(np.nanmedian(TRAIN["income"]))
    rows = X.head(3).copy()
    rows["income"] = [np.nan, train_median, 60.0]
    J = model.jacobian(rows)
    j = COLUMNS.index("income")
    assert J[0, j, 0] == pytest.approx(J[1, j, 0], rel=1e-12)
    if family == "gam":  # the spline's slope really depends on where it is taken
        assert J[0, j, 0] != pytest.approx(J[2, j, 0], rel=1e-3)


def test_jacobian_units_follow_the_input_column() -> None:
    """A linear model on days: d/dt per day, whatever the timestamp resolution."""
    days = np.arange(200, dtype=float)
    X = pd.DataFrame(
        {
            "t": pd.Timestamp("2022-01-01") + pd.to_timedelta(days, unit="D"),
            "x": np.sin(days),
        }
    )
    y = 0.5 * days + 3.0 * X["x"].to_numpy()
    model = ReasoningModel("linear", params={"alpha": 1e-8}).fit(X, y)
    J = model.jacobian(X.head(4))
    np.testing.assert_allclose(J[:, :, 0], [[0.5, 3.0]] * 4, rtol=1e-6)
    seconds = X.astype({"t": "datetime64[s]"}).head(4)
    np.testing.assert_allclose(model.jacobian(seconds), J, rtol=1e-12)


@pytest.mark.parametrize("family", ["decision_tree", "xgboost", "random_forest"])
def test_non_differentiable_families_refuse(family: str) -> None:
    X, y, kind = make_task("regression", n=80)
    model = ReasoningModel(family, kind, {"n_estimators": 5} if family != "decision_tree" else {})
    model.fit(X, y)
    with pytest.raises(ValueError, match="not differentiable.*gam.*mlp"):
        model.jacobian(X)


def test_jacobian_of_an_empty_frame_and_unfitted_model() -> None:
    X, y, kind = make_task("multiclass", n=120)
    model = ReasoningModel("linear", kind).fit(X, y)
    assert model.jacobian(X.head(0)).shape == (0, 5, 3)
    with pytest.raises(ValueError, match="not fitted"):
        ReasoningModel("mlp").jacobian(X)


@pytest.mark.parametrize(("family", "task"), [("linear", "binary"), ("mlp", "multiclass")])
def test_soft_fitted_students_have_jacobians(family: str, task: str) -> None:
    X, y, kind = make_task(task, n=200)
    teacher = ReasoningModel("linear", kind).fit(X, y)
    student = ReasoningModel(family, kind, {"max_iter": 100} if family == "mlp" else {})
    student.fit_soft(X, teacher_logits(teacher.predict_proba(X)), teacher.classes_)
    rows = X[_interior(X, X, "income")].head(20)
    J = student.jacobian(rows)
    fd = _finite_differences(student, rows, "income")
    np.testing.assert_allclose(J[:, COLUMNS.index("income"), :], fd, rtol=1e-4, atol=1e-6)


@pytest.mark.parametrize("mode", ["raw", "standard", "spline"])
def test_encoder_derivatives(mode: str) -> None:
    """d(design)/d(input) against differences of transform, 0 for one-hots and indicators."""
    X, _, _ = make_task("regression", n=200)
    enc = TableEncoder(numeric=mode, n_knots=5).fit(X)
    D = enc.derivatives(X)[0]
    assert D.shape == (len(X), enc.n_design)
    for column, h in NUMERIC.items():
        idx = enc.design_indices(column)
        inside = _interior(X, X, column)
        fd = (enc.transform(_shift(X, column, h)) - enc.transform(_shift(X, column, -h)))
        np.testing.assert_allclose(
            D[inside][:, idx], fd[inside][:, idx] / (2 * h), rtol=1e-5, atol=1e-8
        )
        if mode == "spline":  # the spline's slope at the ends is the one from inside
            at_min = (X[column] == X[column].min()).to_numpy(dtype=bool, na_value=False)
            ahead = enc.transform(_shift(X, column, h)) - enc.transform(X)
            np.testing.assert_allclose(D[at_min][:, idx], ahead[at_min][:, idx] / h, atol=1e-4)
    indicators = [i for i, c in enumerate(enc.design_) if c.kind in ("missing", "onehot")]
    assert (D[:, indicators] == 0).all()
    assert enc.differentiable_inputs().tolist() == [True, True, False, False, True]
