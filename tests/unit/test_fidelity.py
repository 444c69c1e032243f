"""Fidelity of a student to its teacher: known values by hand, plain floats, undefined left out."""

from __future__ import annotations

import json
import math

import numpy as np
import pytest

from reasoning.fidelity import classification_fidelity, gradient_fidelity, regression_fidelity


def test_regression_identical_and_by_hand() -> None:
    teacher = np.array([1.0, 2.0, 3.0, 4.0])
    same = regression_fidelity(teacher, teacher)
    assert same == {"rmse": 0.0, "r2": 1.0}
    out = regression_fidelity([1.0, 2.0, 3.0, 6.0], teacher)
    # SSE 4 over 4 rows; the teacher's SST is 5.
    assert out["rmse"] == pytest.approx(1.0)
    assert out["r2"] == pytest.approx(1 - 4 / 5)
    assert all(type(v) is float for v in out.values())
    json.dumps(out)


def test_regression_shapes_and_undefined_values() -> None:
    assert regression_fidelity(np.array([[1.0], [3.0]]), [1.0, 2.0])["rmse"] == pytest.approx(
        math.sqrt(0.5)
    )
    assert regression_fidelity([2.0], [1.0]) == {"rmse": 1.0}  # R² needs two rows
    assert regression_fidelity([], []) == {}
    with pytest.raises(ValueError):
        regression_fidelity([1.0, 2.0], [1.0, 2.0, 3.0])


def test_classification_identical() -> None:
    proba = np.array([[0.2, 0.5, 0.3], [0.9, 0.05, 0.05], [0.0, 0.0, 1.0]])
    out = classification_fidelity(proba, proba)
    assert out["agreement"] == 1.0
    assert out["mean_kl"] == pytest.approx(0.0, abs=1e-12)


def test_classification_by_hand() -> None:
    teacher = np.array([[0.8, 0.2], [0.5, 0.5]])
    student = np.array([[0.4, 0.6], [0.5, 0.5]])
    out = classification_fidelity(student, teacher)
    assert out["agreement"] == 0.5
    kl_first = 0.8 * math.log(0.8 / 0.4) + 0.2 * math.log(0.2 / 0.6)
    assert out["mean_kl"] == pytest.approx(kl_first / 2)
    # KL(teacher || student), not the other way round.
    reverse = 0.4 * math.log(0.4 / 0.8) + 0.6 * math.log(0.6 / 0.2)
    assert out["mean_kl"] != pytest.approx(reverse / 2)


def test_classification_binary_vector_and_clipping() -> None:
    teacher = np.array([0.9, 0.1, 0.7])
    student = np.array([0.6, 0.3, 0.2])
    one_d = classification_fidelity(student, teacher)
    two_d = classification_fidelity(
        np.column_stack([1 - student, student]), np.column_stack([1 - teacher, teacher])
    )
    assert one_d == pytest.approx(two_d)
    assert one_d["agreement"] == pytest.approx(2 / 3)
    # A student certain of the wrong class: large but finite, as log loss would be.
    out = classification_fidelity([[1.0, 0.0]], [[0.0, 1.0]])
    assert out["agreement"] == 0.0
    assert math.isfinite(out["mean_kl"]) and out["mean_kl"] > 20
    with pytest.raises(ValueError):
        classification_fidelity(np.ones((2, 3)) / 3, np.ones((2, 2)) / 2)
    assert classification_fidelity(np.zeros((0, 2)), np.zeros((0, 2))) == {}


def test_gradient_identical_opposite_orthogonal() -> None:
    jac = np.array([[1.0, 2.0, -3.0], [0.5, 0.0, 4.0]])
    assert gradient_fidelity(jac, jac)["gradient_cosine"] == pytest.approx(1.0)
    assert gradient_fidelity(2.5 * jac, jac)["gradient_cosine"] == pytest.approx(1.0)
    assert gradient_fidelity(-jac, jac)["gradient_cosine"] == pytest.approx(-1.0)
    assert gradient_fidelity([[1.0, 0.0]], [[0.0, 3.0]])["gradient_cosine"] == pytest.approx(0.0)


def test_gradient_by_hand_with_nulls_and_zero_rows() -> None:
    teacher = [[1.0, None, 0.0], [1.0, 1.0, 0.0], [0.0, 0.0, 0.0]]
    student = [[2.0, 7.0, 0.0], [1.0, 0.0, 0.0], [1.0, 1.0, 1.0]]
    out = gradient_fidelity(student, teacher)
    # Row 1: the null column is dropped from both, cos 1. Row 2: cos 45° = 1/sqrt(2).
    # Row 3: the teacher's gradient is all zero, so the row is skipped.
    assert out["gradient_cosine"] == pytest.approx((1.0 + 1 / math.sqrt(2)) / 2)
    assert gradient_fidelity([[0.0, 0.0]], [[1.0, 2.0]]) == {}
    assert gradient_fidelity([[np.nan, 1.0]], [[1.0, np.nan]]) == {}


def test_gradient_classification_means_over_rows_and_classes() -> None:
    teacher = np.array([[[1.0, 0.0], [0.0, 1.0]], [[1.0, 1.0], [2.0, 0.0]]])
    student = np.array([[[1.0, 0.0], [0.0, -1.0]], [[1.0, 1.0], [1.0, 1.0]]])
    out = gradient_fidelity(student, teacher)
    assert out["gradient_cosine"] == pytest.approx((1.0 - 1.0 + 1.0 + 1 / math.sqrt(2)) / 4)
    with pytest.raises(ValueError):
        gradient_fidelity(student, teacher[:, :1])
    with pytest.raises(ValueError):
        gradient_fidelity(np.ones(3), np.ones(3))
