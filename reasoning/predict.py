"""Scoring requests: JSON rows in, predictions with reasons out.

JSON carries no dtypes, so rows are coerced to the dtypes the model was trained on;
a value that does not fit its column is an error naming the column and the value.
Python's json module accepts `NaN` and `Infinity` (and turns 1e999 into infinity): such
values are refused with the row and column, rather than read as missing or scored.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence
from typing import Any

import numpy as np
import pandas as pd

from reasoning.booleans import as_bool
from reasoning.dtypes import NUMERIC_DTYPES
from reasoning.jsonable import json_scalar
from reasoning.model import ColumnMismatchError, ReasoningModel
from reasoning.schemas import (
    Column,
    GradsResponse,
    PredictRequest,
    PredictResponse,
    RowExplanation,
)


class RowsError(ValueError):
    """The rows do not match the model's columns; the message names the problem."""


def _coerce(name: str, dtype: str, values: pd.Series) -> pd.Series:
    try:
        if dtype in NUMERIC_DTYPES:
            numbers = pd.to_numeric(values, errors="raise")
            # Integers beyond int64 stay Python ints (object): as floats, or too big.
            return numbers if numbers.dtype != object else numbers.astype("float64")
        if dtype == "boolean":
            mapped = values.map(as_bool)
            bad = values.notna() & mapped.isna()
            if bad.any():
                raise ValueError(f"{values[bad].iloc[0]!r} is not a boolean")
            return mapped.astype("boolean")
        if dtype == "timestamp":
            parsed = pd.to_datetime(values, format="ISO8601", utc=True)
            return parsed.dt.tz_localize(None)
        return values.map(lambda v: v if v is None or isinstance(v, str) else str(v))
    except (ValueError, TypeError, OverflowError) as err:
        raise RowsError(f"column {name!r} ({dtype}): {err}") from None


_NON_FINITE_JSON = {"nan": "NaN", "inf": "Infinity", "-inf": "-Infinity"}


def _check_finite(rows: Iterable[tuple[int, Iterable[tuple[str, Any]]]]) -> None:
    """Refuse NaN and infinities (JSON has neither; null is the missing value)."""
    for i, cells in rows:
        for column, value in cells:
            if isinstance(value, float) and not math.isfinite(value):
                shown = _NON_FINITE_JSON[repr(float(value))]
                raise RowsError(
                    f"row {i}, column {column!r}: {shown} is not a number JSON allows; "
                    "send null for a missing value"
                )


def _split_cells(columns: Sequence[str], data: list[list[Any]]) -> Iterable[tuple[int, Any]]:
    return ((i, zip(columns, row, strict=False)) for i, row in enumerate(data))


def rows_frame(request: PredictRequest, features: list[Column]) -> pd.DataFrame:
    """The request's rows as a frame with exactly the model's columns, in its dtypes."""
    if request.dataframe_split is not None:
        split = request.dataframe_split
        if len(set(split.columns)) != len(split.columns):
            raise RowsError("dataframe_split.columns has duplicate names")
        bad = [i for i, row in enumerate(split.data) if len(row) != len(split.columns)]
        if bad:
            raise RowsError(
                f"dataframe_split.data row {bad[0]} has {len(split.data[bad[0]])} values "
                f"for {len(split.columns)} columns"
            )
        _check_finite(_split_cells(split.columns, split.data))
        frame = pd.DataFrame(split.data, columns=split.columns, dtype=object)
    else:
        records = request.dataframe_records or []
        _check_finite((i, record.items()) for i, record in enumerate(records))
        frame = pd.DataFrame.from_records(records)
        frame = frame.astype(object)
    if len(frame) == 0:
        raise RowsError("no rows to score")
    expected = [f.name for f in features]
    missing = [c for c in expected if c not in frame.columns]
    unexpected = [c for c in frame.columns if c not in expected]
    if missing or unexpected:
        raise RowsError(str(ColumnMismatchError(missing, unexpected)))
    frame = frame.where(pd.notna(frame), None)
    return pd.DataFrame({f.name: _coerce(f.name, f.dtype, frame[f.name]) for f in features})


def predict_response(
    model: ReasoningModel, model_id: str, frame: pd.DataFrame, top_k: int | None,
    pairs: bool = False,
) -> PredictResponse:
    """Predictions, class probabilities, and per-row reasons that sum to the output."""
    explained = model.explain(frame, top_k=top_k, pairs=pairs)
    explanations = [RowExplanation(**e) for e in explained]
    if model.task_kind == "classification":
        # The explained class is the prediction; one contributions pass serves both.
        predictions = [e["class"] for e in explained]
        return PredictResponse(
            model_id=model_id,
            predictions=predictions,
            classes=[json_scalar(c) for c in model.classes_],
            probabilities=model.predict_proba(frame).tolist(),
            explanations=explanations,
        )
    predictions = [e["output"] for e in explained]
    return PredictResponse(model_id=model_id, predictions=predictions, explanations=explanations)


def teacher_predictions(model: ReasoningModel, frame: pd.DataFrame) -> list[Any]:
    """The teacher protocol's answer: values, or per row a {class: probability} map."""
    if model.task_kind != "classification":
        return [float(v) for v in model.predict(frame)]
    names = [str(json_scalar(c)) for c in model.classes_]
    return [dict(zip(names, map(float, row), strict=True)) for row in model.predict_proba(frame)]


def grads_response(model: ReasoningModel, frame: pd.DataFrame, columns: list[str]) -> GradsResponse:
    """Per row d raw output / d column in the request's column order (per class when K > 1).

    Non-numeric columns have no derivative: null, as the DiffModel protocol says.
    """
    jac = model.jacobian(frame)  # (n, features, K), NaN where not differentiable
    order = [[f.name for f in model.features_].index(c) for c in columns]
    jac = jac[:, order, :]

    def cells(values: np.ndarray) -> list[float | None]:
        return [None if np.isnan(v) else float(v) for v in values]

    classification = model.task_kind == "classification"
    rows = [
        [cells(jac[i, :, k]) for k in range(jac.shape[2])] if classification
        else cells(jac[i, :, 0])
        for i in range(len(jac))
    ]
    classes = [json_scalar(c) for c in model.classes_] if classification else None
    return GradsResponse(columns=columns, classes=classes, jacobians=rows)
