"""The label pipeline's stages as plain functions: prepare, score a trial, finalize.

The Ray side (actors/) decides where these run; everything they compute is here, so
the whole fit can be tested and reproduced without a cluster.
"""

from __future__ import annotations

import math
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import numpy as np
import pandas as pd
from sklearn.model_selection import train_test_split

from reasoning.filters import apply_filter
from reasoning.metrics import evaluate, validation_loss
from reasoning.model import ReasoningModel
from reasoning.schemas import (
    Column,
    Explanation,
    Metrics,
    ModelCard,
    ModelFitRequest,
    ReasoningFitRequest,
    RowCounts,
    Trial,
)

MIN_ROWS = 20
"""Fewer usable rows than this after the filter is a failed job, not a silly model."""
SPLIT = (0.6, 0.2, 0.2)
SCORE_NAME = {"regression": "validation_rmse", "classification": "validation_log_loss"}


class JobFailure(Exception):
    """A failure the user can act on; its message is shown as the job's message."""


@dataclass
class PreparedData:
    """The split a fit works on, passed to every trial by object reference."""

    task_kind: str
    label_column: str
    X_train: pd.DataFrame
    y_train: np.ndarray
    X_val: pd.DataFrame
    y_val: np.ndarray
    X_test: pd.DataFrame
    y_test: np.ndarray
    rows: RowCounts
    stratified: bool
    dropped_null_labels: int


def _labels(series: pd.Series, task_kind: str) -> np.ndarray:
    """Labels (nulls already dropped) as a plain numpy array scikit-learn accepts."""
    if task_kind == "regression":
        return series.to_numpy(dtype="float64")
    if pd.api.types.is_bool_dtype(series):
        return series.to_numpy(dtype=bool)
    if pd.api.types.is_integer_dtype(series):
        return series.to_numpy(dtype="int64")
    return series.astype(str).to_numpy(dtype=object)


def prepare(
    df: pd.DataFrame, request: ReasoningFitRequest | ModelFitRequest
) -> PreparedData:
    """Filter, drop unlabeled rows, and split train/validation/test (seeded, stratified)."""
    assert request.task is not None, "label fits need a task"
    task_kind, label = request.task.task_kind, request.task.label_column
    total = len(df)
    kept = apply_filter(df, request.filter)
    after_filter = len(kept)
    if after_filter < MIN_ROWS:
        raise JobFailure(
            f"the filter kept {after_filter} of {total} rows; at least {MIN_ROWS} are needed"
        )
    labeled = kept[kept[label].notna()]
    dropped = after_filter - len(labeled)
    if len(labeled) < MIN_ROWS:
        raise JobFailure(
            f"only {len(labeled)} of {after_filter} rows have a value in label column "
            f"{label!r}; at least {MIN_ROWS} are needed"
        )
    y = _labels(labeled[label], task_kind)
    X = labeled.drop(columns=[label])
    if task_kind == "classification":
        classes, counts = np.unique(y.astype(str), return_counts=True)
        if len(classes) < 2:
            raise JobFailure(
                f"label column {label!r} has a single class ({classes[0]!r}) after the "
                "filter; classification needs at least two"
            )
    elif np.nanstd(y) == 0:
        raise JobFailure(f"label column {label!r} is constant ({y[0]}); nothing to learn")
    stratify = None
    if task_kind == "classification" and counts.min() >= 3:
        stratify = y.astype(str)
    seed = request.random_state
    test_frac = SPLIT[2]
    val_frac = SPLIT[1] / (SPLIT[0] + SPLIT[1])
    idx = np.arange(len(X))
    rest, test = train_test_split(idx, test_size=test_frac, random_state=seed, stratify=stratify)
    rest_strat = stratify[rest] if stratify is not None else None
    train, val = train_test_split(
        rest, test_size=val_frac, random_state=seed, stratify=rest_strat
    )
    take = X.iloc
    return PreparedData(
        task_kind=task_kind,
        label_column=label,
        X_train=take[train].reset_index(drop=True),
        y_train=y[train],
        X_val=take[val].reset_index(drop=True),
        y_val=y[val],
        X_test=take[test].reset_index(drop=True),
        y_test=y[test],
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
    """Fit on train, score on validation (lower is better)."""
    model = ReasoningModel(family, data.task_kind, params, random_state)
    model.fit(data.X_train, data.y_train)
    loss = validation_loss(data.task_kind, data.y_val, model, data.X_val)
    return loss if math.isfinite(loss) else float("inf")


def best_trial(trials: list[Trial]) -> Trial:
    """The lowest score; ties go to the earlier trial so the choice is reproducible."""
    scored = [t for t in trials if t.score is not None and math.isfinite(t.score)]
    if not scored:
        first = next((t.error for t in trials if t.error), "no score was reported")
        raise JobFailure(f"every hyperparameter trial failed; the first said: {first}")
    return min(scored, key=lambda t: t.score)


def finalize(
    data: PreparedData,
    request: ReasoningFitRequest | ModelFitRequest,
    trials: list[Trial],
    job_id: str,
    kind: str,
) -> tuple[ReasoningModel, ModelCard]:
    """Refit the best trial's family and configuration on train+validation, evaluate, explain."""
    best = best_trial(trials)
    family = best.family or request.family_names()[0]
    X = pd.concat([data.X_train, data.X_val], ignore_index=True)
    y = np.concatenate([data.y_train, data.y_val])
    model = ReasoningModel(family, data.task_kind, best.params, request.random_state).fit(X, y)
    metrics = evaluate(data.task_kind, data.y_test, model, data.X_test)
    explanation = model.global_explanation(data.X_test)
    rows = data.rows
    how = "stratified by label" if data.stratified else "random"
    summary = (
        f"The filter kept {rows.after_filter:,} of {rows.total:,} rows"
        + (f"; {data.dropped_null_labels:,} without a label were dropped" if
           data.dropped_null_labels else "")
        + f"; split {rows.train:,} train / {rows.validation:,} validation / {rows.test:,} "
        f"test ({how}, random_state={request.random_state})."
    )
    classes = getattr(model, "classes_", None)
    card = ModelCard(
        model_id=uuid.uuid4(),
        kind=kind,
        family=family,
        task=request.task,
        dataset_id=request.dataset_id,
        job_id=job_id,
        filter=request.filter,
        teacher=None,
        features=[Column(name=f.name, dtype=f.dtype) for f in model.features_],
        classes=[_json_scalar(c) for c in classes] if classes is not None else None,
        hyperparameters=best.params,
        score_name=SCORE_NAME[data.task_kind],
        trials=trials,
        rows=rows,
        metrics=Metrics(test=metrics),
        explanation=Explanation(**explanation),
        random_state=request.random_state,
        created_at=datetime.now(UTC),
        summary=summary,
    )
    return model, card


def _json_scalar(value: Any) -> Any:
    return value.item() if isinstance(value, np.generic) else value
