"""Distillation: training a student on a teacher's outputs, and measuring what it gained.

The teacher gives the target (values, or class probabilities turned into clipped
log-odds); the labels, where a task names them, only evaluate. Fidelity is measured on
held-out real rows, and the same family and configuration fitted on the labels alone
is the baseline that shows what distillation gained.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd

from reasoning.fidelity import classification_fidelity, gradient_fidelity, regression_fidelity
from reasoning.metrics import evaluate
from reasoning.model import ReasoningModel
from reasoning.schemas import Metrics
from reasoning.targets import teacher_logits
from reasoning.teachers import HttpTeacher, shown_url


@dataclass(frozen=True)
class DistillOptions:
    """Service settings of distillation: how much synth-gen makes, on how many shards, and
    how patient the service is with an external teacher."""

    synthetic_factor: float = 5.0
    synthetic_cap: int = 100_000
    synth_gen_shards: int = 2
    teacher_timeout: float = 30.0
    teacher_retries: int = 3
    teacher_allow: str = ""
    """Non-public teacher destinations allowed anyway: CIDRs and host names, comma-separated."""


@dataclass
class TeacherTargets:
    """The teacher's outputs for every row the student sees or is measured on.

    `X_fit` is the real training rows followed by the synthetic ones; the `t_*` arrays
    are values (n,) for a regression teacher, probabilities (n, K) for a classifier.
    """

    X_fit: pd.DataFrame
    t_fit: np.ndarray
    t_val: np.ndarray
    t_test: np.ndarray
    classes: list[Any] | None
    n_synthetic: int
    teacher: dict[str, Any]

    @property
    def task_kind(self) -> str:
        return "regression" if self.classes is None else "classification"


def fit_student(
    family: str,
    params: dict[str, Any],
    random_state: int,
    X: pd.DataFrame,
    targets: np.ndarray,
    classes: list[Any] | None,
) -> ReasoningModel:
    """Regression fits the teacher's values; classification its soft targets."""
    if classes is None:
        return ReasoningModel(family, "regression", params, random_state).fit(X, targets)
    model = ReasoningModel(family, "classification", params, random_state)
    return model.fit_soft(X, teacher_logits(targets), classes)


def fidelity(student: ReasoningModel, X: pd.DataFrame, teacher: np.ndarray) -> dict[str, float]:
    """Regression: R² and RMSE against the teacher; classification: agreement and mean KL."""
    if student.task_kind == "classification":
        return classification_fidelity(student.predict_proba(X), teacher)
    return regression_fidelity(student.predict(X), teacher)


def fidelity_loss(student: ReasoningModel, X: pd.DataFrame, teacher: np.ndarray) -> float:
    """What trials minimise: RMSE to the teacher's values, or mean KL to its probabilities."""
    scores = fidelity(student, X, teacher)
    return scores["mean_kl"] if student.task_kind == "classification" else scores["rmse"]


def label_metrics(
    model: ReasoningModel, task_kind: str | None, y: np.ndarray | None, X: pd.DataFrame
) -> dict[str, float]:
    """Accuracy against the labels, when there are labels the model's classes can match."""
    if task_kind is None or y is None or len(y) == 0:
        return {}
    if task_kind == "classification":
        known = {str(c) for c in model.classes_}
        if not {str(v) for v in y} <= known:
            return {}  # a teacher whose classes are not the label's values
    if (task_kind == "classification") != (model.task_kind == "classification"):
        return {}
    return evaluate(task_kind, y, model, X)


DIFFMODEL_PARAMS: dict[str, dict[str, Any]] = {
    "gam": {"n_pairs": 10, "n_knots": 10, "alpha": 1e-3}}
"""A DiffModel student's hyperparameters. There is no search, and none is needed: the
teacher's values and slopes are noiseless and plentiful (one derivative row per row and
column), so a gam can take fine splines with little shrinkage, and the pair terms that
explain what its additive fit left (up to 10; pairs that explain nothing are left out)."""


def diffmodel_fit(
    data: Any, teacher: HttpTeacher, grads_url: str, family: str, random_state: int
) -> tuple[ReasoningModel, Metrics, TeacherTargets]:
    """DiffModel teacher: a Sobolev fit to its values and Jacobians on train+validation rows,
    with value and gradient fidelity on the test rows, and what the teacher answered (the
    card's `teacher` and the label comparison read it from the prepared data)."""
    X = data.X_all()
    answer = teacher.predict(X)
    jac = teacher.jacobians(X, grads_url)  # (n, K, d), d = X's columns
    classes = answer.classes
    values = answer.values if classes is None else teacher_logits(answer.values)
    n_fit = len(data.X_train) + len(data.X_val)
    jac_fit = jac[:n_fit, 0, :] if classes is None else jac[:n_fit].transpose(0, 2, 1)
    task_kind = "regression" if classes is None else "classification"
    student = ReasoningModel(family, task_kind, DIFFMODEL_PARAMS.get(family), random_state)
    student.fit_sobolev(X.iloc[:n_fit].reset_index(drop=True), values[:n_fit], jac_fit, classes)
    t_test = answer.values[n_fit:]
    student_jac = student.jacobian(data.X_test).transpose(0, 2, 1)  # (n, K, d)
    metrics = Metrics(
        fidelity={
            **fidelity(student, data.X_test, t_test),
            **gradient_fidelity(student_jac, jac[n_fit:]),
        }
    )
    targets = TeacherTargets(
        X_fit=X.iloc[:n_fit], t_fit=answer.values[:n_fit], t_val=answer.values[:0],
        t_test=t_test, classes=classes, n_synthetic=0,
        teacher={"kind": "diffmodel", "url": shown_url(teacher.url),
                 "grads_url": shown_url(grads_url)},
    )
    return student, metrics, targets
