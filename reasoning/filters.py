"""Row filters: check them against a dataset's schema at submit time, apply them to a table.

Null semantics follow SQL for comparisons: a missing value never satisfies `==`, `!=`,
`<`, `<=`, `>`, `>=`, `in` or `not_in`; only `is_null` / `is_not_null` see it. Logic is
two-valued, though: `not` keeps exactly the rows its inner filter drops, so
`not (x > 5)` keeps rows where x is null (SQL's three-valued NOT would drop them).
"""

from __future__ import annotations

import difflib
import math
import operator
import re
from collections.abc import Callable
from typing import Any

import numpy as np
import pandas as pd

from reasoning.booleans import as_bool, as_text
from reasoning.dtypes import DTYPES, NUMERIC_DTYPES
from reasoning.encoding import infer_dtype
from reasoning.levels import unknown_level
from reasoning.schemas import LIST_OPS, NULL_OPS, And, Comparison, Filter, Not, Op, Or

_NUMBER_RE = re.compile(r"[+-]?(\d+(\.\d*)?|\.\d+)([eE][+-]?\d+)?|[+-]?inf(inity)?", re.I)
_INT64_MAX = 2**63 - 1
_CMP: dict[Op, Callable[[Any, Any], Any]] = {
    Op.eq: operator.eq,
    Op.ne: operator.ne,
    Op.lt: operator.lt,
    Op.le: operator.le,
    Op.gt: operator.gt,
    Op.ge: operator.ge,
}
_MAX_LISTED_COLUMNS = 20
LEVEL_OPS = frozenset({Op.eq, Op.ne, Op.in_, Op.not_in})
"""Comparisons whose values must be levels of a categorical or boolean column to mean
anything (an order comparison of text is rare but deliberate)."""
Levels = Callable[[str], list[str] | None]
"""A column's known levels (text for categoricals, "false"/"true" present in a boolean
column), or None when they are not known."""


def _cannot(value: Any, dtype: str, column: str | None, why: str = "") -> ValueError:
    where = f"{dtype} column {column!r}" if column is not None else f"{dtype} column"
    return ValueError(f"value {value!r} cannot be compared with {where}{why}")


def coerce_value(
    value: Any, dtype: str, *, column: str | None = None, tz_aware: bool | None = None
) -> Any:
    """Turn a JSON value into something comparable with a column of `dtype`.

    `column` only names the column in the error message. For timestamps, `tz_aware` says
    whether the column is tz-aware (None: leave the value as parsed); naive values meet
    aware columns as UTC and aware values meet naive columns converted to UTC.
    Raises ValueError with a user-facing message when the value does not fit.
    """
    if value is None:
        raise ValueError("null cannot be compared with anything; use is_null / is_not_null")
    if isinstance(value, list | dict | tuple):
        raise _cannot(value, dtype, column, " (expected a single value)")
    if dtype in NUMERIC_DTYPES:
        return _coerce_number(value, dtype, column)
    if dtype == "boolean":
        return _coerce_bool(value, column)
    if dtype == "timestamp":
        return _coerce_timestamp(value, column, tz_aware)
    if dtype == "categorical":
        if isinstance(value, bool):
            return as_text(value)  # JSON's spelling, as in CSV text
        return str(value)
    raise ValueError(f"unknown column dtype {dtype!r}; expected one of {', '.join(DTYPES)}")


def _coerce_number(value: Any, dtype: str, column: str | None) -> int | float:
    if isinstance(value, bool):
        raise _cannot(value, dtype, column, " (booleans are not numbers here)")
    if isinstance(value, int):
        number: int | float = value
    elif isinstance(value, float):
        number = value
    elif isinstance(value, str) and _NUMBER_RE.fullmatch(value.strip()):
        text = value.strip()
        number = int(text) if re.fullmatch(r"[+-]?\d+", text) else float(text)
    else:
        raise _cannot(value, dtype, column)
    if isinstance(number, float):
        if math.isnan(number):
            raise _cannot(value, dtype, column, "; use is_null to test for missing values")
        if dtype == "integer" and number.is_integer():
            number = int(number)
    if isinstance(number, int) and abs(number) > _INT64_MAX:
        number = float(number)  # still orders correctly against int64 values
    return number


def _coerce_bool(value: Any, column: str | None) -> bool:
    flag = as_bool(value)
    if flag is None:
        raise _cannot(value, "boolean", column, " (expected true/false or 0/1)")
    return flag


def _coerce_timestamp(value: Any, column: str | None, tz_aware: bool | None) -> pd.Timestamp:
    if not isinstance(value, str):
        raise _cannot(value, "timestamp", column, " (expected an ISO-8601 string)")
    try:
        ts = pd.to_datetime(value.strip(), format="ISO8601")
    except (ValueError, TypeError, OverflowError) as exc:
        raise _cannot(value, "timestamp", column, " (expected an ISO-8601 string)") from exc
    if not isinstance(ts, pd.Timestamp) or pd.isna(ts):
        raise _cannot(value, "timestamp", column, " (expected an ISO-8601 string)")
    if tz_aware is True and ts.tzinfo is None:
        ts = ts.tz_localize("UTC")
    elif tz_aware is False and ts.tzinfo is not None:
        ts = ts.tz_convert("UTC").tz_localize(None)
    return ts


def column_list(dtypes: dict[str, str]) -> str:
    """The columns, quoted and trimmed, for messages that name what is available."""
    names = list(dtypes)
    listed = ", ".join(repr(n) for n in names[:_MAX_LISTED_COLUMNS])
    if len(names) > _MAX_LISTED_COLUMNS:
        listed += f" (and {len(names) - _MAX_LISTED_COLUMNS} more)"
    return listed or "(none)"


def _unknown_column(col: str, dtypes: dict[str, str]) -> str:
    close = difflib.get_close_matches(col, list(dtypes), n=1)
    hint = f"; did you mean {close[0]!r}?" if close else ""
    return f"unknown column {col!r}{hint} available columns: {column_list(dtypes)}"


def check_filter(
    flt: Filter, dtypes: dict[str, str], levels: Levels | None = None
) -> list[dict[str, Any]]:
    """Every problem of `flt` against a schema, as `{"loc": [...], "msg": ...}` entries.

    Locations start at "filter" and follow the request body into combinators, e.g.
    ["filter", "filters", 0, "value", 1] for the second list element of the first child.
    With `levels`, a value of ==, !=, in, not_in on a categorical or boolean column must be
    one the column has (a case or spelling slip gets "did you mean").
    """
    return _check(flt, dtypes, ["filter"], levels)


def _check(
    flt: Filter, dtypes: dict[str, str], loc: list[Any], levels: Levels | None = None
) -> list[dict[str, Any]]:
    if isinstance(flt, And | Or):
        errors: list[dict[str, Any]] = []
        for i, child in enumerate(flt.filters):
            errors += _check(child, dtypes, [*loc, "filters", i], levels)
        return errors
    if isinstance(flt, Not):
        return _check(flt.filter, dtypes, [*loc, "filter"], levels)
    assert isinstance(flt, Comparison)
    dtype = dtypes.get(flt.col)
    if dtype is None:
        return [{"loc": [*loc, "col"], "msg": _unknown_column(flt.col, dtypes)}]
    if flt.op in NULL_OPS:
        return []
    errors = []
    known = levels(flt.col) if levels is not None and flt.op in LEVEL_OPS and dtype in (
        "categorical", "boolean") else None
    listed = flt.op in LIST_OPS
    items = (flt.value if isinstance(flt.value, list) else [flt.value]) if listed \
        else [flt.value]
    for i, item in enumerate(items):
        where = [*loc, "value", i] if listed else [*loc, "value"]
        try:
            coerced = coerce_value(item, dtype, column=flt.col)
        except ValueError as exc:
            errors.append({"loc": where, "msg": str(exc)})
            continue
        if known is None:
            continue
        if dtype == "boolean" and str(coerced).lower() not in known:
            only = " and ".join(known) or "no"
            errors.append({"loc": where, "msg": f"boolean column {flt.col!r} has only {only} "
                           f"values, so {item!r} matches no row"})
        elif dtype == "categorical" and coerced not in known:
            errors.append({"loc": where, "msg": unknown_level(item, flt.col, known)})
    return errors


def apply_filter(df: pd.DataFrame, flt: Filter | None) -> pd.DataFrame:
    """The rows of `df` that satisfy `flt` (all rows for None), original index kept.

    Raises ValueError for an unknown column or a value that does not fit its column;
    `check_filter` reports the same problems up front.
    """
    if flt is None:
        return df
    return df.loc[_mask(df, flt)]


def _mask(df: pd.DataFrame, flt: Filter) -> np.ndarray:
    if isinstance(flt, And):
        return np.logical_and.reduce([_mask(df, f) for f in flt.filters])
    if isinstance(flt, Or):
        return np.logical_or.reduce([_mask(df, f) for f in flt.filters])
    if isinstance(flt, Not):
        return ~_mask(df, flt.filter)
    assert isinstance(flt, Comparison)
    if flt.col not in df.columns:
        raise ValueError(_unknown_column(flt.col, {str(c): "" for c in df.columns}))
    series = df[flt.col]
    present = series.notna().to_numpy(dtype=bool)
    if flt.op == Op.is_null:
        return ~present
    if flt.op == Op.is_not_null:
        return present
    dtype = infer_dtype(series)
    values = _comparable(series[present], dtype)
    tz_aware = _tz_aware(series) if dtype == "timestamp" else None
    mask = np.zeros(len(series), dtype=bool)
    if flt.op in LIST_OPS:
        items = flt.value if isinstance(flt.value, list) else [flt.value]
        wanted = [coerce_value(v, dtype, column=flt.col, tz_aware=tz_aware) for v in items]
        hit = _isin(values, wanted)
        mask[present] = hit if flt.op == Op.in_ else ~hit
        return mask
    target = coerce_value(flt.value, dtype, column=flt.col, tz_aware=tz_aware)
    result = _CMP[flt.op](values, target)
    mask[present] = np.asarray(result, dtype=bool)
    return mask


def _comparable(values: pd.Series, dtype: str) -> pd.Series:
    """Non-null values in a form that compares with coerced scalars without surprises."""
    if dtype == "categorical" and not isinstance(values.dtype, pd.StringDtype):
        return values.astype(object).map(str).astype("str")
    if dtype == "boolean":
        return values.astype(bool)
    if dtype == "timestamp" and not pd.api.types.is_datetime64_any_dtype(values.dtype):
        return pd.to_datetime(values, format="ISO8601")
    return values


def _tz_aware(series: pd.Series) -> bool:
    return isinstance(series.dtype, pd.DatetimeTZDtype)


def _isin(values: pd.Series, wanted: list[Any]) -> np.ndarray:
    if not wanted:
        return np.zeros(len(values), dtype=bool)
    if pd.api.types.is_datetime64_any_dtype(values.dtype):
        return _isin_instants(values, wanted)
    return values.isin(wanted).to_numpy(dtype=bool)


def _isin_instants(values: pd.Series, wanted: list[pd.Timestamp]) -> np.ndarray:
    """`isin` for datetimes, as integers in the column's own unit (UTC for zoned ones): one
    hashed pass over the column however long the list. pandas' own isin is fragile across
    units and zones. A wanted instant finer than the column's unit equals none of it."""
    if isinstance(values.dtype, pd.DatetimeTZDtype):
        values = values.dt.tz_convert("UTC").dt.tz_localize(None)
    unit = np.datetime_data(values.dtype)[0]
    targets = set()
    for instant in wanted:
        naive = instant.tz_convert("UTC").tz_localize(None) if instant.tzinfo else instant
        try:
            targets.add(int(naive.as_unit(unit, round_ok=False).asm8.view("int64")))
        except (ValueError, OverflowError):
            continue
    numbers = pd.Series(values.to_numpy().view("int64"))
    return numbers.isin(targets).to_numpy(dtype=bool)
