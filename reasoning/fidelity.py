"""How closely a distilled student reproduces its teacher, measured on held-out real rows.

Accuracy against labels says how good a student is; fidelity says how well distillation worked,
which is what a user compares with the label-only baseline. Plain floats only (model cards are
JSON) and, as in ``metrics``, a value undefined on the given rows (R² of one row, a cosine with no
usable gradient pair) is left out rather than reported as NaN.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np
from scipy import stats
from sklearn import metrics as skm
from sklearn.metrics.pairwise import paired_cosine_distances

from reasoning.metrics import LOG_LOSS_EPS


def regression_fidelity(student_values: Any, teacher_values: Any) -> dict[str, float]:
    """R² and RMSE of the student's values against the teacher's (the teacher is the truth)."""
    student = _vector(student_values, "student_values")
    teacher = _vector(teacher_values, "teacher_values")
    _same_shape(student, teacher)
    if len(teacher) == 0:
        return {}
    out = {"rmse": float(skm.root_mean_squared_error(teacher, student))}
    if len(teacher) >= 2:
        out["r2"] = float(skm.r2_score(teacher, student))
    return out


def classification_fidelity(
    student_proba: Any, teacher_proba: Any, eps: float = LOG_LOSS_EPS
) -> dict[str, float]:
    """Argmax agreement and mean KL(teacher || student) over rows.

    Probabilities are (n, n_classes); a 1-D array is read as P(positive class) of a binary task.
    Both sides are clipped to [eps, 1] and renormalised before KL, so a student that gives a
    class zero probability costs a large finite amount (as log loss does) rather than infinity.
    """
    student = _proba(student_proba, "student_proba")
    teacher = _proba(teacher_proba, "teacher_proba")
    _same_shape(student, teacher)
    if len(teacher) == 0:
        return {}
    agreement = skm.accuracy_score(teacher.argmax(axis=1), student.argmax(axis=1))
    kl = stats.entropy(
        np.clip(teacher, eps, 1.0), np.clip(student, eps, 1.0), axis=1
    )  # entropy(pk, qk) normalises both rows and returns KL(pk || qk)
    return {"agreement": float(agreement), "mean_kl": float(np.mean(kl))}


def gradient_fidelity(student_jacobian: Any, teacher_jacobian: Any) -> dict[str, float]:
    """Mean cosine between the student's and the teacher's gradients.

    Jacobians are (n, n_columns) for regression or (n, n_classes, n_columns) for classification;
    each (row, class) gradient is one vector. An entry that is NaN (or None) on either side, such
    as a non-numeric column, is dropped from both vectors; a pair where either vector is then all
    zero has no direction and is skipped. No usable pair: an empty dict.
    """
    student = np.asarray(student_jacobian, dtype=np.float64)
    teacher = np.asarray(teacher_jacobian, dtype=np.float64)
    _same_shape(student, teacher)
    if student.ndim not in (2, 3):
        raise ValueError(f"Jacobians must be 2-D or 3-D, got shape {student.shape}")
    width = student.shape[-1]
    student, teacher = student.reshape(-1, width), teacher.reshape(-1, width)
    usable = np.isfinite(student) & np.isfinite(teacher)
    student = np.where(usable, student, 0.0)
    teacher = np.where(usable, teacher, 0.0)
    keep = np.any(student != 0, axis=1) & np.any(teacher != 0, axis=1)
    if not keep.any():
        return {}
    cosine = 1.0 - paired_cosine_distances(student[keep], teacher[keep])
    value = float(np.mean(np.clip(cosine, -1.0, 1.0)))
    return {"gradient_cosine": value} if math.isfinite(value) else {}


def _vector(values: Any, name: str) -> np.ndarray:
    arr = np.asarray(values, dtype=np.float64)
    if arr.ndim == 2 and arr.shape[1] == 1:
        arr = arr[:, 0]
    if arr.ndim != 1:
        raise ValueError(f"{name} must be one value per row, got shape {arr.shape}")
    return arr


def _proba(values: Any, name: str) -> np.ndarray:
    arr = np.asarray(values, dtype=np.float64)
    if arr.ndim == 1:
        arr = np.column_stack([1.0 - arr, arr])
    if arr.ndim != 2 or arr.shape[1] < 2:
        raise ValueError(f"{name} must be (n_rows, n_classes >= 2), got shape {arr.shape}")
    return arr


def _same_shape(student: np.ndarray, teacher: np.ndarray) -> None:
    if student.shape != teacher.shape:
        raise ValueError(f"student shape {student.shape} != teacher shape {teacher.shape}")
