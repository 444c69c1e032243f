"""Labels as arrays: one conversion for fitting, splitting and scoring.

scikit-learn wants plain numpy arrays, and a class label must keep its type through a
fit (a boolean class stays a boolean in predictions and model cards), so booleans,
integers, floats and text each become their own numpy dtype.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd


def label_array(y: Any, task_kind: str | None = None) -> np.ndarray:
    """`y` as a numpy array of its own type (a regression's as floats; nulls as NaN)."""
    values = y.reset_index(drop=True) if isinstance(y, pd.Series) else pd.Series(y)
    dtype = values.dtype
    if task_kind == "regression" or pd.api.types.is_float_dtype(dtype):
        return values.to_numpy(dtype=np.float64, na_value=np.nan)
    if pd.api.types.is_bool_dtype(dtype):
        return values.to_numpy(dtype=bool)
    if pd.api.types.is_integer_dtype(dtype):
        return values.to_numpy(dtype=np.int64)
    return values.astype(object).to_numpy(dtype=object)


def checked_labels(y: Any, n_rows: int) -> pd.Series:
    """One present label per row, or a ValueError saying what is wrong."""
    labels = y.reset_index(drop=True) if isinstance(y, pd.Series) else pd.Series(np.asarray(y))
    if labels.ndim != 1 or len(labels) != n_rows:
        raise ValueError(f"y must be one label per row: got {len(labels)} labels for {n_rows} rows")
    if labels.isna().any():
        raise ValueError(f"y has {int(labels.isna().sum())} missing labels; drop those rows first")
    return labels
