"""An input column in the project's vocabulary, one at a time: its dtype (``infer_dtype``), its
values as numbers (``to_float``) or level keys (``category_keys``), and the two records every
encoding speaks in, ``Feature`` (an input column) and ``DesignColumn`` (a design-matrix column).

Stored models pickle ``Feature`` and ``DesignColumn`` under ``reasoning.encoding`` (where they were
first) or here: ``reasoning.encoding`` re-exports both, so either name loads.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Literal

import numpy as np
import pandas as pd
from pandas.api import types as ptypes

from reasoning.booleans import as_bool
from reasoning.dtypes import DTYPES

"""Input dtypes with a slope: booleans and categoricals jump between levels, they have none."""
MISSING_LEVEL = "<missing>"
"""The category key that stands for a missing value in a categorical column."""

DesignKind = Literal["value", "missing", "spline", "onehot", "pair"]

_EPOCH = pd.Timestamp(0, tz="UTC")
_DAY = pd.Timedelta(days=1)


@dataclass(frozen=True)
class Feature:
    """An input column and its dtype in the project's vocabulary (what model cards show)."""

    name: str
    dtype: str

    def __post_init__(self) -> None:
        if self.dtype not in DTYPES:
            raise ValueError(f"unknown dtype {self.dtype!r}; expected one of {list(DTYPES)}")


@dataclass(frozen=True)
class DesignColumn:
    """One design-matrix column: its name, its input column and how it encodes it.

    ``kind`` is "value" (the number itself, possibly standardized), "missing" (1 where the input
    was missing), "spline" (one spline basis function), "onehot" (1 where the input == level)
    or "pair" (one product of the two inputs' pair bases, an interaction term: ``source`` and
    ``partner`` name its two inputs).
    """

    name: str
    source: str
    source_index: int
    dtype: str
    kind: DesignKind
    level: str | None = None
    partner: str | None = None
    partner_index: int = -1


def infer_dtype(series: pd.Series) -> str:
    """Map a pandas Series (numpy or nullable dtypes, pandas 3 ``str``) to the dtype vocabulary."""
    dt = series.dtype
    if isinstance(dt, pd.CategoricalDtype):
        return "categorical"
    if ptypes.is_bool_dtype(dt):
        return "boolean"
    if ptypes.is_datetime64_any_dtype(dt):
        return "timestamp"
    if ptypes.is_integer_dtype(dt):
        return "integer"
    if ptypes.is_float_dtype(dt):
        return "float"
    if ptypes.is_object_dtype(dt):
        # Object columns come from JSON rows or hand-built frames: look at the values.
        inferred = pd.api.types.infer_dtype(series, skipna=True)
        return {
            "boolean": "boolean",
            "integer": "integer",
            "floating": "float",
            "mixed-integer-float": "float",
            "decimal": "float",
            "datetime64": "timestamp",
            "datetime": "timestamp",
        }.get(inferred, "categorical")
    return "categorical"


def to_float(series: pd.Series, dtype: str) -> np.ndarray:
    """Numbers for a numeric/boolean/timestamp column: float64 with NaN for missing or unparseable.

    Timestamps become days since the Unix epoch (naive ones are read as UTC); infinities count as
    missing because neither trees nor imputers accept them.
    """
    if dtype == "timestamp":
        out = _timestamp_days(series)
    elif dtype == "boolean":
        out = _boolean_values(series)
    else:
        s = series.astype(object) if isinstance(series.dtype, pd.CategoricalDtype) else series
        if ptypes.is_bool_dtype(s.dtype):
            s = s.astype("boolean")
        num = pd.to_numeric(s, errors="coerce")
        out = pd.Series(num).to_numpy(dtype="float64", na_value=np.nan)
    out = np.array(out, dtype="float64")
    out[~np.isfinite(out)] = np.nan
    return out


def category_keys(series: pd.Series) -> np.ndarray:
    """String keys of a categorical column, ``MISSING_LEVEL`` for missing values.

    Strings make levels survive a JSON round trip (a category 1 sent back as "1" still matches).
    """
    missing = series.isna().to_numpy(dtype=bool)
    values = series.astype(object).to_numpy(dtype=object)
    return np.array(
        [MISSING_LEVEL if m else str(v) for v, m in zip(values, missing, strict=True)],
        dtype=object,
    )


def days_to_timestamp(days: float) -> pd.Timestamp:
    """Inverse of the timestamp encoding, for rule text and shape grids."""
    return (_EPOCH + pd.Timedelta(days=float(days))).tz_convert(None)


def _timestamp_days(series: pd.Series) -> np.ndarray:
    if ptypes.is_datetime64_any_dtype(series.dtype):
        ts = pd.to_datetime(series, utc=True)
    else:
        ts = pd.to_datetime(series, errors="coerce", utc=True, format="ISO8601")
        retry = ts.isna().to_numpy() & series.notna().to_numpy()
        if retry.any():
            again = pd.to_datetime(series[retry], errors="coerce", utc=True, format="mixed")
            ts = ts.copy()
            ts[retry] = again
    days = (pd.Series(ts) - _EPOCH) / _DAY
    return days.to_numpy(dtype="float64", na_value=np.nan)


def _one_boolean(value: Any) -> float:
    flag = as_bool(value)
    return np.nan if flag is None else float(flag)


def _boolean_values(series: pd.Series) -> np.ndarray:
    if ptypes.is_bool_dtype(series.dtype):
        return series.astype("boolean").to_numpy(dtype="float64", na_value=np.nan)
    return np.array([_one_boolean(v) for v in series.astype(object)], dtype="float64")
