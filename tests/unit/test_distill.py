"""Distillation quality without Ray: a student fitted on a teacher's outputs over real and
MUNGE rows reproduces the teacher on held-out real rows."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from sklearn.datasets import load_breast_cancer, load_diabetes
from sklearn.model_selection import train_test_split

from reasoning.distill import fidelity, fit_student
from reasoning.model import ReasoningModel
from reasoning.munge import munge, synthetic_size


def _split(X: pd.DataFrame, y: np.ndarray):
    return train_test_split(X, y, test_size=0.3, random_state=0)


def test_breast_cancer_student_agrees_with_its_teacher() -> None:
    data = load_breast_cancer(as_frame=True)
    X_train, X_test, y_train, _ = _split(data.data, data.target.to_numpy())
    teacher = ReasoningModel("xgboost", "classification", {"n_estimators": 200},
                             random_state=0).fit(X_train, y_train)
    synthetic = munge(X_train, synthetic_size(len(X_train)), random_state=0)
    X_fit = pd.concat([X_train, synthetic], ignore_index=True)
    student = fit_student("gam", {}, 0, X_fit, teacher.predict_proba(X_fit),
                          list(teacher.classes_))
    scores = fidelity(student, X_test, teacher.predict_proba(X_test))
    assert scores["agreement"] >= 0.95
    assert list(student.classes_) == list(teacher.classes_)
    for row in student.explain(X_test.head(5), top_k=None):
        total = row["base_value"] + sum(r["contribution"] for r in row["reasons"])
        assert total == pytest.approx(row["output"], abs=1e-6)


def test_regression_student_tracks_its_teacher() -> None:
    data = load_diabetes(as_frame=True)
    X_train, X_test, y_train, _ = _split(data.data, data.target.to_numpy())
    teacher = ReasoningModel("random_forest", "regression", {"n_estimators": 100},
                             random_state=0).fit(X_train, y_train)
    X_fit = pd.concat([X_train, munge(X_train, 1000, random_state=1)], ignore_index=True)
    student = fit_student("linear", {"alpha": 0.1}, 0, X_fit, teacher.predict(X_fit), None)
    scores = fidelity(student, X_test, teacher.predict(X_test))
    assert scores["r2"] > 0.7 and scores["rmse"] > 0
