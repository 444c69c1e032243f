"""The label pipeline's stages as plain functions: prepare, score a trial, finalize.

The Ray side (actors/) decides where these run; everything they compute is here, so
the whole fit can be tested and reproduced without a cluster.
"""

from __future__ import annotations

import json
import math
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import numpy as np
import pandas as pd
from sklearn.model_selection import train_test_split

from reasoning.distill import (
    TeacherTargets,
    fidelity,
    fidelity_loss,
    fit_student,
    label_metrics,
)
from reasoning.filters import apply_filter
from reasoning.jsonable import json_scalar
from reasoning.labels import label_array
from reasoning.metrics import evaluate, validation_loss
from reasoning.model import ReasoningModel
from reasoning.schemas import (
    Column,
    Explanation,
    FitRequest,
    Metrics,
    ModelCard,
    RowCounts,
    Trial,
)

MIN_ROWS = 20
"""Fewer usable rows than this after the filter is a failed job, not a silly model."""
SPLIT = (0.6, 0.2, 0.2)
SCORE_NAME = {"regression": "validation_rmse", "classification": "validation_log_loss"}
FIDELITY_SCORE_NAME = {
    "regression": "validation_rmse_to_teacher",
    "classification": "validation_kl_to_teacher",
}


class JobFailure(Exception):
    """A failure the user can act on; its message is shown as the job's message."""


@dataclass
class PreparedData:
    """The split a fit works on, passed to every trial by object reference.

    Without a task (a teacher-only fit) there are no labels: the y arrays are None.
    With a teacher, `teacher` holds its targets and the labels only evaluate.
    """

    task_kind: str | None
    label_column: str | None
    X_train: pd.DataFrame
    y_train: np.ndarray | None
    X_val: pd.DataFrame
    y_val: np.ndarray | None
    X_test: pd.DataFrame
    y_test: np.ndarray | None
    rows: RowCounts
    stratified: bool
    dropped_null_labels: int
    teacher: TeacherTargets | None = None

    @property
    def label_task(self) -> str:
        """The task of a fit on labels: there is one whenever a fit learns from labels."""
        if self.task_kind is None:
            raise JobFailure("a fit on labels needs a task")
        return self.task_kind

    def X_all(self) -> pd.DataFrame:
        """Every real row, in train / validation / test order."""
        return pd.concat([self.X_train, self.X_val, self.X_test], ignore_index=True)


def _check_labels(y: np.ndarray, task_kind: str, label: str) -> np.ndarray | None:
    """Fail on labels nothing can be learnt from; the classes to stratify by, if usable."""
    if task_kind == "regression":
        if np.nanstd(y) == 0:
            raise JobFailure(f"label column {label!r} is constant ({y[0]}); nothing to learn")
        return None
    classes, counts = np.unique(y.astype(str), return_counts=True)
    if len(classes) < 2:
        raise JobFailure(
            f"label column {label!r} has a single class ({classes[0]!r}) after the filter; "
            "classification needs at least two"
        )
    return y.astype(str) if counts.min() >= 3 else None


def prepare(
    df: pd.DataFrame, request: FitRequest
) -> PreparedData:
    """Filter, drop unlabeled rows, and split train/validation/test (seeded, stratified).

    With a teacher the labels only evaluate, so rows without one are kept and nothing
    about the labels can fail the job.
    """
    distill = request.has_teacher
    task_kind = request.task.task_kind if request.task else None
    label = request.task.label_column if request.task else None
    total = len(df)
    kept = apply_filter(df, request.filter)
    after_filter = len(kept)
    if after_filter < MIN_ROWS:
        raise JobFailure(
            f"the filter kept {after_filter} of {total} rows; at least {MIN_ROWS} are needed"
        )
    y, stratify, dropped = None, None, 0
    if label is not None and task_kind is not None and not distill:
        labeled = kept[kept[label].notna()]
        dropped = after_filter - len(labeled)
        if len(labeled) < MIN_ROWS:
            raise JobFailure(
                f"only {len(labeled)} of {after_filter} rows have a value in label column "
                f"{label!r}; at least {MIN_ROWS} are needed"
            )
        kept = labeled
        y = label_array(labeled[label], task_kind)
        stratify = _check_labels(y, task_kind, label)
    elif label is not None:
        y = kept[label].astype(object).where(kept[label].notna(), None).to_numpy()
    X = kept.drop(columns=[label]) if label is not None else kept
    seed = request.random_state
    val_frac = SPLIT[1] / (SPLIT[0] + SPLIT[1])
    idx = np.arange(len(X))
    rest, test = train_test_split(idx, test_size=SPLIT[2], random_state=seed, stratify=stratify)
    rest_strat = stratify[rest] if stratify is not None else None
    train, val = train_test_split(
        rest, test_size=val_frac, random_state=seed, stratify=rest_strat
    )
    take = X.iloc
    return PreparedData(
        task_kind=task_kind,
        label_column=label,
        X_train=take[train].reset_index(drop=True),
        y_train=None if y is None else y[train],
        X_val=take[val].reset_index(drop=True),
        y_val=None if y is None else y[val],
        X_test=take[test].reset_index(drop=True),
        y_test=None if y is None else y[test],
        rows=RowCounts(
            total=total, after_filter=after_filter, train=len(train), validation=len(val),
            test=len(test),
        ),
        stratified=stratify is not None,
        dropped_null_labels=dropped,
    )


def score_trial(
    data: PreparedData, family: str, params: dict[str, Any], random_state: int
) -> float:
    """Fit on train, score on validation (lower is better): against the labels, or the
    teacher when there is one."""
    t = data.teacher
    if t is not None:
        student = fit_student(family, params, random_state, t.X_fit, t.t_fit, t.classes)
        loss = fidelity_loss(student, data.X_val, t.t_val)
    else:
        model = ReasoningModel(family, data.label_task, params, random_state)
        model.fit(data.X_train, data.y_train)
        loss = validation_loss(data.label_task, data.y_val, model, data.X_val)
    return loss if math.isfinite(loss) else float("inf")


def scored_trial(family: str, params: dict[str, Any], score: float | None,
                 node: str | None) -> Trial:
    """A finished trial as the card keeps it. A loss that is not finite (the fit diverged)
    has no score to rank by, and says so rather than looking like a score never reported."""
    if score is None or not math.isfinite(score):
        return Trial(family=family, params=params, score=None, node=node,
                     error=f"its validation loss was {score} (the fit diverged)")
    return Trial(family=family, params=params, score=float(score), node=node)


def best_trial(trials: list[Trial]) -> Trial:
    """The lowest score; ties go to the earlier trial so the choice is reproducible."""
    scored = [(t.score, i) for i, t in enumerate(trials)
              if t.score is not None and math.isfinite(t.score)]
    if not scored:
        first = next((t.error for t in trials if t.error), "no score was reported")
        raise JobFailure(f"every hyperparameter trial failed; the first said: {first}")
    return trials[min(scored)[1]]


def _refit(
    data: PreparedData, family: str, params: dict[str, Any], random_state: int
) -> tuple[ReasoningModel, Metrics]:
    """The final model on train+validation and its metrics on the test rows."""
    t = data.teacher
    if t is None:
        X = pd.concat([data.X_train, data.X_val], ignore_index=True)
        y = np.concatenate([data.y_train, data.y_val])
        model = ReasoningModel(family, data.label_task, params, random_state).fit(X, y)
        return model, Metrics(test=evaluate(data.label_task, data.y_test, model, data.X_test))
    X = pd.concat([t.X_fit, data.X_val], ignore_index=True)
    student = fit_student(
        family, params, random_state, X, np.concatenate([t.t_fit, t.t_val]), t.classes
    )
    metrics = Metrics(fidelity=fidelity(student, data.X_test, t.t_test))
    return student, with_label_metrics(metrics, student, data, family, params, random_state)


def with_label_metrics(
    metrics: Metrics,
    student: ReasoningModel,
    data: PreparedData,
    family: str,
    params: dict[str, Any],
    random_state: int,
) -> Metrics:
    """`metrics` with the distilled student's accuracy against the labels and the label-only
    baseline's (same family and configuration fitted on the labels), where there are labels."""
    test = _labelled(data.y_test, data.X_test, data.task_kind)
    added = {"test": label_metrics(student, data.task_kind, *test)}
    baseline = label_only(data, family, params, random_state)
    if baseline is not None:
        added["label_only"] = label_metrics(baseline, data.task_kind, *test)
    return metrics.model_copy(update=added)


def _labelled(
    y: np.ndarray | None, X: pd.DataFrame, task_kind: str | None
) -> tuple[np.ndarray | None, pd.DataFrame]:
    """A split part's labels and rows, keeping only rows that have a label (with a teacher,
    rows without one stay in the split)."""
    if y is None:
        return None, X
    mask = pd.notna(pd.Series(y)).to_numpy()
    return label_array(pd.Series(list(y[mask])), task_kind), X[mask].reset_index(drop=True)


def label_only(
    data: PreparedData, family: str, params: dict[str, Any], random_state: int
) -> ReasoningModel | None:
    """The same family and configuration fitted on the labels alone (the baseline)."""
    if data.task_kind is None or data.y_train is None:
        return None
    parts = [_labelled(data.y_train, data.X_train, data.task_kind),
             _labelled(data.y_val, data.X_val, data.task_kind)]
    y = np.concatenate([p[0] for p in parts])
    if len(y) < MIN_ROWS or len({str(v) for v in y}) < 2:
        return None
    X = pd.concat([p[1] for p in parts], ignore_index=True)
    return ReasoningModel(family, data.task_kind, params, random_state).fit(X, y)


def summary_line(data: PreparedData, random_state: int) -> str:
    """How many rows the filter kept and how they were split, for the model card."""
    rows = data.rows
    how = "stratified by label" if data.stratified else "random"
    text = (
        f"The filter kept {rows.after_filter:,} of {rows.total:,} rows"
        + (f"; {data.dropped_null_labels:,} without a label were dropped"
           if data.dropped_null_labels else "")
        + f"; split {rows.train:,} train / {rows.validation:,} validation / {rows.test:,} "
        f"test ({how}, random_state={random_state})."
    )
    if data.teacher is not None and data.teacher.teacher.get("kind") == "diffmodel":
        text += " The DiffModel teacher gave values and Jacobians for them (Sobolev fit)."
    elif data.teacher is not None:
        text += (f" The teacher labelled them and {data.teacher.n_synthetic:,} synthetic rows "
                 "(MUNGE) around the training rows.")
    return text


def finalize(
    data: PreparedData,
    request: FitRequest,
    trials: list[Trial],
    job_id: str,
    kind: str,
) -> tuple[ReasoningModel, ModelCard]:
    """Refit the best trial's family and configuration on train+validation, evaluate, explain."""
    best = best_trial(trials)
    family = best.family or request.family_names()[0]
    model, metrics = _refit(data, family, best.params, request.random_state)
    return model, model_card(
        model, data, request, job_id, kind, family, best.params, trials, metrics
    )


def model_card(
    model: ReasoningModel,
    data: PreparedData,
    request: FitRequest,
    job_id: str,
    kind: str,
    family: str,
    params: dict[str, Any],
    trials: list[Trial],
    metrics: Metrics,
) -> ModelCard:
    """The card the registry keeps next to the model."""
    classes = getattr(model, "classes_", None)
    return ModelCard(
        model_id=uuid.uuid4(),
        kind=kind,
        family=family,
        task=request.task,
        dataset_id=request.dataset_id,
        job_id=job_id,
        filter=request.filter,
        teacher=data.teacher.teacher if data.teacher is not None else None,
        features=[Column(name=f.name, dtype=f.dtype) for f in model.features_],
        classes=[json_scalar(c) for c in classes] if classes is not None else None,
        hyperparameters=params,
        score_name=SCORE_NAME[model.task_kind] if data.teacher is None
        else FIDELITY_SCORE_NAME[model.task_kind],
        trials=trials,
        rows=data.rows,
        metrics=metrics,
        explanation=Explanation(**model.global_explanation(data.X_test)),
        random_state=request.random_state,
        created_at=datetime.now(UTC),
        summary=summary_line(data, request.random_state),
        examples=example_rows(data.X_test),
    )


EXAMPLES = 3
"""Test rows a card keeps for its report's "why" charts."""


def example_rows(X: pd.DataFrame, n: int = EXAMPLES) -> list[dict[str, Any]]:
    """The first `n` rows as JSON values (timestamps in ISO 8601, missing values null), so
    they can be scored again as a predict request's `dataframe_records`."""
    return json.loads(X.head(n).to_json(orient="records", date_format="iso", date_unit="us",
                                        double_precision=15))

