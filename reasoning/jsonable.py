"""Values as JSON: the one numpy/pandas-to-JSON conversion of cells, classes and chart axes.

Explanations, predictions, model cards and teacher requests all say a value in JSON; they go
through here so a missing value, a timestamp or a numpy scalar reads the same everywhere.
"""

from __future__ import annotations

import datetime as dt
import math
from typing import Any

import numpy as np
import pandas as pd

from reasoning.encoding import Feature, days_to_timestamp


def json_scalar(value: Any) -> Any:
    """A cell as JSON: None for any missing marker, ISO strings for times, Python scalars."""
    if value is None:
        return None
    if isinstance(value, np.generic) and not isinstance(value, np.datetime64 | np.timedelta64):
        value = value.item()
    if isinstance(value, str | bool):
        return value
    try:
        if pd.isna(value):
            return None
    except (TypeError, ValueError):
        pass
    if isinstance(value, np.datetime64):
        return pd.Timestamp(value).isoformat()
    if isinstance(value, dt.datetime | dt.date | dt.time):
        return value.isoformat()
    if isinstance(value, float):
        return value if math.isfinite(value) else None
    if isinstance(value, int):
        return value
    return str(value)


def column_json(series: pd.Series, dtype: str) -> list[Any]:
    """A column's cells as JSON; integer columns read back as floats (from JSON) stay ints."""
    out = [json_scalar(v) for v in series.astype(object)]
    if dtype == "integer":
        out = [int(v) if isinstance(v, float) and v.is_integer() else v for v in out]
    return out


def x_json(feature: Feature, center: float) -> Any:
    """A numeric column's point on a chart axis (a bin's mean): an ISO time for timestamps,
    an int for a whole number of an integer column, else a float."""
    if feature.dtype == "timestamp":
        return days_to_timestamp(float(center)).isoformat()
    if feature.dtype == "integer" and float(center).is_integer():
        return int(center)
    return float(center)


def grid_json(feature: Feature, value: Any) -> Any:
    """A surface's grid value: a level or time as it is, a number as ``x_json`` says it."""
    if feature.dtype in ("categorical", "boolean", "timestamp"):
        return json_scalar(value)
    return x_json(feature, float(value))
