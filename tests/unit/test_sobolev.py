"""Sobolev fits of linear / gam to a teacher's values and Jacobians (closed form)."""

from __future__ import annotations

import pickle

import numpy as np
import pandas as pd
import pytest
from sklearn.datasets import make_friedman1
from sklearn.linear_model import Ridge

from reasoning.fidelity import gradient_fidelity
from reasoning.model import ReasoningModel
from tests.unit.test_families import N_TRAIN, make_task

FRIEDMAN_COLUMNS = [f"x{i}" for i in range(10)]


def friedman(X: pd.DataFrame) -> np.ndarray:
    """The noiseless Friedman #1 function."""
    x = X.to_numpy()
    return (
        10 * np.sin(np.pi * x[:, 0] * x[:, 1])
        + 20 * (x[:, 2] - 0.5) ** 2
        + 10 * x[:, 3]
        + 5 * x[:, 4]
    )


def friedman_gradient(X: pd.DataFrame) -> np.ndarray:
    """Its exact gradient (n, 10); x5..x9 do not matter."""
    x = X.to_numpy()
    wave = 10 * np.pi * np.cos(np.pi * x[:, 0] * x[:, 1])
    grad = np.zeros_like(x)
    grad[:, 0] = wave * x[:, 1]
    grad[:, 1] = wave * x[:, 0]
    grad[:, 2] = 40 * (x[:, 2] - 0.5)
    grad[:, 3] = 10.0
    grad[:, 4] = 5.0
    return grad


@pytest.fixture(scope="module")
def friedman_data() -> tuple[pd.DataFrame, np.ndarray, pd.DataFrame]:
    Xa, y = make_friedman1(n_samples=2000, noise=1.0, random_state=0)
    X = pd.DataFrame(Xa, columns=FRIEDMAN_COLUMNS)
    held = pd.DataFrame(np.random.default_rng(1).random((1000, 10)), columns=FRIEDMAN_COLUMNS)
    return X, y, held


def test_friedman_sobolev_gam_beats_the_values_only_gam(friedman_data) -> None:
    X, y, held = friedman_data
    sobolev = ReasoningModel("gam").fit_sobolev(X, y, friedman_gradient(X))
    plain = ReasoningModel("gam").fit(X, y)
    truth = friedman(held)
    rmse_sobolev = np.sqrt(np.mean((sobolev.predict(held) - truth) ** 2))
    rmse_plain = np.sqrt(np.mean((plain.predict(held) - truth) ** 2))
    assert rmse_sobolev < rmse_plain
    # Gradient fidelity: the Sobolev model's own analytic Jacobian points the right way.
    true_grad = friedman_gradient(held)
    cos_sobolev = mean_gradient_cosine(sobolev.jacobian(held)[:, :, 0], true_grad)
    cos_plain = mean_gradient_cosine(plain.jacobian(held)[:, :, 0], true_grad)
    assert cos_sobolev > cos_plain + 0.02
    assert cos_sobolev > 0.9


def test_without_gradient_weight_it_is_the_values_only_ridge(friedman_data) -> None:
    """lambda = 0: the stacked solve with the profiled intercept is Ridge's own fit."""
    X, y, held = friedman_data
    for family in ("linear", "gam"):
        sobolev = ReasoningModel(family).fit_sobolev(X, y, friedman_gradient(X), grad_weight=0.0)
        encode = sobolev.encoder_.transform
        plain = Ridge(alpha=sobolev.params_["alpha"]).fit(encode(X), y)
        np.testing.assert_allclose(sobolev.core_.coef[0], plain.coef_, atol=1e-8)
        np.testing.assert_allclose(sobolev.predict(held), plain.predict(encode(held)),
                                   atol=1e-8)


def test_a_gam_teacher_is_recovered_exactly() -> None:
    """Values and derivatives that a gam can produce are fitted exactly: rows agree."""
    X, y, kind = make_task("regression")
    teacher = ReasoningModel("gam", kind, {"n_knots": 5}).fit(X, y)
    student = ReasoningModel("gam", params={"n_knots": 5, "alpha": 1e-8}).fit_sobolev(
        X, teacher.predict(X), teacher.jacobian(X)
    )
    np.testing.assert_allclose(student.predict(X), teacher.predict(X), atol=1e-5)
    np.testing.assert_allclose(student.jacobian(X), teacher.jacobian(X), atol=1e-5)


def test_derivatives_alone_shape_the_curves() -> None:
    """With the values pure noise, a heavy gradient weight still recovers the slopes."""
    X, y, kind = make_task("regression")
    teacher = ReasoningModel("gam", kind).fit(X, y)
    noise = np.random.default_rng(0).normal(0.0, 5.0, len(X))
    J = teacher.jacobian(X)
    heavy = ReasoningModel("gam").fit_sobolev(X, noise, J, grad_weight=1e4)
    none = ReasoningModel("gam").fit_sobolev(X, noise, J, grad_weight=0.0)
    assert mean_gradient_cosine(heavy.jacobian(X), J) > 0.99
    assert mean_gradient_cosine(none.jacobian(X), J) < 0.9


@pytest.mark.parametrize("task", ["binary", "multiclass"])
def test_classification_from_an_mlp_diffmodel(task: str) -> None:
    """The server's own mlp as a DiffModel: decision_function + jacobian in, a gam out."""
    X, y, kind = make_task(task)
    teacher = ReasoningModel("mlp", kind, {"activation": "tanh", "max_iter": 200}).fit(X, y)
    train, held = X.iloc[:N_TRAIN], X.iloc[N_TRAIN:]
    J = teacher.jacobian(train)
    assert np.isnan(J[:, 2:4, :]).all()  # member, color: ignored
    student = ReasoningModel("gam", kind).fit_sobolev(
        train, teacher.decision_function(train), J, teacher.classes_
    )
    values_only = ReasoningModel("gam", kind).fit_sobolev(
        train, teacher.decision_function(train), J, teacher.classes_, grad_weight=0.0
    )
    np.testing.assert_array_equal(student.classes_, teacher.classes_)
    assert np.mean(student.predict(held) == teacher.predict(held)) > 0.8
    teacher_grad = teacher.jacobian(held)
    assert mean_gradient_cosine(student.jacobian(held), teacher_grad) > mean_gradient_cosine(
        values_only.jacobian(held), teacher_grad
    )
    raw = student.decision_function(held)
    base, contrib = student.contributions(held)
    np.testing.assert_allclose(base + contrib.sum(axis=1), raw, atol=1e-6)
    back = pickle.loads(pickle.dumps(student))
    assert back.explain(held.head(3)) == student.explain(held.head(3))
    np.testing.assert_array_equal(back.jacobian(held), student.jacobian(held))


def test_nan_entries_and_jacobian_columns() -> None:
    """NaN entries are ignored: an all-NaN column is the same as leaving the column out."""
    X, y, kind = make_task("regression")
    teacher = ReasoningModel("gam", kind).fit(X, y)
    J = teacher.jacobian(X)[:, :, 0]
    only_income = ReasoningModel().fit_sobolev(X, y, J[:, [1]], jacobian_columns=["income"])
    blanked = J.copy()
    blanked[:, [0, 4]] = np.nan
    masked = ReasoningModel().fit_sobolev(X, y, blanked)
    np.testing.assert_allclose(only_income.predict(X), masked.predict(X), atol=1e-10)
    # NaN in some rows drops just those derivative rows (slopes that disagree with the values,
    # so that every row counts).
    steep = blanked * 3.0
    holes = steep.copy()
    holes[:100, 1] = np.nan
    full, partial = ReasoningModel().fit_sobolev(X, y, steep), ReasoningModel().fit_sobolev(
        X, y, holes)
    assert np.isfinite(partial.predict(X)).all()
    slope = [m.jacobian(X)[:, 1, 0].mean() for m in (masked, partial, full)]
    assert slope[0] < slope[1] < slope[2]


def test_errors() -> None:
    X, y, kind = make_task("regression", n=60)
    J = np.zeros((60, 5))
    with pytest.raises(ValueError, match="linear in its parameters"):
        ReasoningModel("mlp").fit_sobolev(X, y, J)
    with pytest.raises(ValueError, match="grad_weight"):
        ReasoningModel().fit_sobolev(X, y, J, grad_weight=-1.0)
    with pytest.raises(ValueError, match="jacobian_columns not in X"):
        ReasoningModel().fit_sobolev(X, y, J[:, :1], jacobian_columns=["zip"])
    with pytest.raises(ValueError, match="4 columns but 5"):
        ReasoningModel().fit_sobolev(X, y, J[:, :4])
    with pytest.raises(ValueError, match="one row per input row"):
        ReasoningModel().fit_sobolev(X, y[:10], J)
    with pytest.raises(ValueError, match="finite"):
        ReasoningModel().fit_sobolev(X, np.full(60, np.nan), J)
    with pytest.raises(ValueError, match="classes"):
        ReasoningModel(task_kind="classification").fit_sobolev(X, y, J)


def mean_gradient_cosine(a: np.ndarray, b: np.ndarray) -> float:
    """fidelity.gradient_fidelity on Jacobians shaped (n, p) or (n, p, K) as jacobian() gives."""
    a, b = np.asarray(a, dtype=float), np.asarray(b, dtype=float)
    if a.ndim == 3:
        a, b = a.transpose(0, 2, 1), b.transpose(0, 2, 1)
    return gradient_fidelity(a, b)["gradient_cosine"]
