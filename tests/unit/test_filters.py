"""Filters: every op on every dtype against row sets computed in plain Python."""

from __future__ import annotations

import operator
from datetime import UTC, datetime, timedelta, timezone
from typing import Any

import numpy as np
import pandas as pd
import pytest
from pydantic import TypeAdapter

from reasoning.filters import apply_filter, check_filter, coerce_value
from reasoning.schemas import Filter

FILTER = TypeAdapter(Filter)
INDEX = [10, 11, 12, 13, 14, 15, 16]
BERLIN = timezone(timedelta(hours=1))  # fixed offset: comparisons need no tz database


def _dt(day: int, hour: int = 0, tz: Any = None) -> datetime:
    return datetime(2024, 1, day, hour, tzinfo=tz)


# Plain-Python rows (None = missing); the DataFrame is built from them, and the expected
# row sets come from them too, so the filter code is checked against independent logic.
ROWS: dict[str, list[Any]] = {
    "i": [1, 2, 3, 4, 5, 6, 7],
    "ni": [1, None, 3, None, 5, 6, -2],
    "f": [0.5, None, 2.5, -1.0, None, 10.0, 3.0],
    "b": [True, None, False, True, False, None, True],
    "c": ["b", None, "a", "c", "b", None, "B"],
    "t": [_dt(1), _dt(2), None, _dt(3), _dt(4, 12), None, _dt(5)],
    "tz": [_dt(1, tz=UTC), None, _dt(2, 5, UTC), _dt(3, tz=UTC), None, _dt(4, tz=UTC),
           _dt(5, 23, UTC)],
    "ts": [_dt(1), _dt(2), _dt(3), None, _dt(5), _dt(6), _dt(7)],
}


def _frame() -> pd.DataFrame:
    r = ROWS
    return pd.DataFrame(
        {
            "i": pd.Series(r["i"], dtype="int64"),
            "ni": pd.Series(r["ni"], dtype="Int64"),
            "f": pd.Series([np.nan if v is None else v for v in r["f"]], dtype="float64"),
            "b": pd.Series(r["b"], dtype="boolean"),
            "c": pd.Series(r["c"], dtype="str"),
            "t": pd.Series(r["t"], dtype="datetime64[ns]"),
            "tz": pd.Series(
                [None if v is None else v.replace(tzinfo=None) for v in r["tz"]],
                dtype="datetime64[us]",
            ).dt.tz_localize("UTC").dt.tz_convert("Europe/Berlin"),
            "ts": pd.Series(r["ts"], dtype="datetime64[s]"),
        }
    ).set_axis(INDEX)


@pytest.fixture(autouse=True)
def _check_frame_dtypes() -> None:
    df = _frame()
    assert str(df["tz"].dtype).startswith("datetime64[us, Europe/Berlin")
    assert str(df["ts"].dtype) == "datetime64[s]"


# Per column: (JSON value for scalar ops, its Python meaning, JSON list, Python list).
CASES: dict[str, tuple[Any, Any, list[Any], list[Any]]] = {
    "i": (4, 4, [1, "3", 7.0], [1, 3, 7]),
    "ni": ("3", 3, [1, 6, 100], [1, 6, 100]),
    "f": (2.5, 2.5, [0.5, "-1"], [0.5, -1.0]),
    "b": ("TRUE", True, [False], [False]),
    "c": ("b", "b", ["a", "B"], ["a", "B"]),
    "t": ("2024-01-03", _dt(3), ["2024-01-01T00:00:00", "2024-01-05"], [_dt(1), _dt(5)]),
    "tz": ("2024-01-03T01:00:00+01:00", _dt(3, tz=UTC), ["2024-01-04"], [_dt(4, tz=UTC)]),
    "ts": ("2024-01-05T00:00:00Z", _dt(5), ["2024-01-06", "2024-01-01"], [_dt(6), _dt(1)]),
}
PY_OPS = {"==": operator.eq, "!=": operator.ne, "<": operator.lt, "<=": operator.le,
          ">": operator.gt, ">=": operator.ge}


def _expected(col: str, keep: Any) -> list[int]:
    return [INDEX[k] for k, v in enumerate(ROWS[col]) if keep(v)]


def _kept(flt: dict[str, Any]) -> list[int]:
    return list(apply_filter(_frame(), FILTER.validate_python(flt)).index)


@pytest.mark.parametrize("col", list(CASES))
@pytest.mark.parametrize("op", list(PY_OPS))
def test_scalar_ops_match_python(col: str, op: str) -> None:
    value, meaning, _, _ = CASES[col]
    expected = _expected(col, lambda v: v is not None and PY_OPS[op](v, meaning))
    assert _kept({"kind": "cmp", "col": col, "op": op, "value": value}) == expected


@pytest.mark.parametrize("col", list(CASES))
def test_list_ops_match_python(col: str) -> None:
    _, _, values, meanings = CASES[col]
    inside = _expected(col, lambda v: v is not None and v in meanings)
    outside = _expected(col, lambda v: v is not None and v not in meanings)
    assert _kept({"kind": "cmp", "col": col, "op": "in", "value": values}) == inside
    assert _kept({"kind": "cmp", "col": col, "op": "not_in", "value": values}) == outside
    assert inside and outside  # the cases are chosen so both sides are non-trivial


@pytest.mark.parametrize("col", list(CASES))
def test_null_ops_match_python(col: str) -> None:
    assert _kept({"kind": "cmp", "col": col, "op": "is_null"}) == _expected(
        col, lambda v: v is None
    )
    assert _kept({"kind": "cmp", "col": col, "op": "is_not_null"}) == _expected(
        col, lambda v: v is not None
    )


def test_nulls_never_satisfy_comparisons() -> None:
    for col in ("ni", "f", "b", "c", "t", "tz"):
        null_rows = set(_expected(col, lambda v: v is None))
        assert null_rows
        value, _, values, _ = CASES[col]
        for op in PY_OPS:
            assert not null_rows & set(_kept({"kind": "cmp", "col": col, "op": op,
                                              "value": value}))
        assert not null_rows & set(_kept({"kind": "cmp", "col": col, "op": "not_in",
                                          "value": values}))


def test_empty_lists() -> None:
    assert _kept({"kind": "cmp", "col": "f", "op": "in", "value": []}) == []
    assert _kept({"kind": "cmp", "col": "f", "op": "not_in", "value": []}) == _expected(
        "f", lambda v: v is not None
    )


def test_float_value_against_integer_column() -> None:
    assert _kept({"kind": "cmp", "col": "i", "op": ">", "value": 2.5}) == _expected(
        "i", lambda v: v > 2.5
    )
    assert _kept({"kind": "cmp", "col": "ni", "op": "==", "value": 2.5}) == []
    assert _kept({"kind": "cmp", "col": "ni", "op": "<=", "value": "3.0"}) == _expected(
        "ni", lambda v: v is not None and v <= 3
    )


def test_combinators() -> None:
    both = {"kind": "and", "filters": [
        {"kind": "cmp", "col": "i", "op": ">=", "value": 2},
        {"kind": "cmp", "col": "b", "op": "==", "value": True},
    ]}
    either = {"kind": "or", "filters": [
        {"kind": "cmp", "col": "c", "op": "==", "value": "a"},
        {"kind": "cmp", "col": "f", "op": ">", "value": 5},
    ]}
    i, b, c, f = ROWS["i"], ROWS["b"], ROWS["c"], ROWS["f"]
    assert _kept(both) == [INDEX[k] for k in range(7) if i[k] >= 2 and b[k] is True]
    assert _kept(either) == [
        INDEX[k] for k in range(7) if c[k] == "a" or (f[k] is not None and f[k] > 5)
    ]
    nested = {"kind": "and", "filters": [either, {"kind": "not", "filter": both}]}
    assert _kept(nested) == [k for k in _kept(either) if k not in _kept(both)]


def test_not_is_two_valued() -> None:
    # SQL would drop null rows from NOT (f > 1); here `not` is the complement of its mask.
    inner = {"kind": "cmp", "col": "f", "op": ">", "value": 1}
    kept = _kept({"kind": "not", "filter": inner})
    assert kept == _expected("f", lambda v: v is None or not v > 1)
    assert set(kept) | set(_kept(inner)) == set(INDEX)


def test_none_filter_and_index_preserved() -> None:
    df = _frame()
    assert apply_filter(df, None) is df
    out = apply_filter(df, FILTER.validate_python({"kind": "cmp", "col": "i", "value": 3}))
    assert list(out.index) == [12]
    assert out.dtypes.equals(df.dtypes)


def test_timestamp_value_conversion_between_naive_and_aware() -> None:
    # Aware value vs naive column: converted to UTC, then compared.
    assert _kept({"kind": "cmp", "col": "t", "op": "==",
                  "value": "2024-01-04T14:00:00+02:00"}) == _expected(
        "t", lambda v: v == _dt(4, 12)
    )
    # Naive value vs aware column: taken as UTC.
    assert _kept({"kind": "cmp", "col": "tz", "op": "==", "value": "2024-01-02T05:00:00"}) == [
        12
    ]


def test_categorical_column_of_mixed_objects() -> None:
    df = pd.DataFrame({"x": pd.Series([1, "1", "a", None], dtype=object)})
    flt = FILTER.validate_python({"kind": "cmp", "col": "x", "op": "==", "value": 1})
    assert list(apply_filter(df, flt).index) == [0, 1]


def test_apply_filter_errors() -> None:
    with pytest.raises(ValueError, match="unknown column 'nope'"):
        _kept({"kind": "cmp", "col": "nope", "value": 1})
    with pytest.raises(ValueError, match="value 'abc' cannot be compared with integer column 'i'"):
        _kept({"kind": "cmp", "col": "i", "value": "abc"})


# ------------------------------------------------------------------------- coerce_value


@pytest.mark.parametrize(
    ("value", "dtype", "expected"),
    [
        (3, "integer", 3),
        ("42", "integer", 42),
        (" -7 ", "integer", -7),
        (2.0, "integer", 2),
        (2.5, "integer", 2.5),
        ("1e3", "float", 1000.0),
        ("-inf", "float", float("-inf")),
        (1, "float", 1),
        (True, "boolean", True),
        ("False", "boolean", False),
        ("true", "boolean", True),
        (0, "boolean", False),
        (1, "boolean", True),
        ("x", "categorical", "x"),
        (12, "categorical", "12"),
        (1.5, "categorical", "1.5"),
        (True, "categorical", "true"),
        ("2024-01-02", "timestamp", pd.Timestamp("2024-01-02")),
    ],
)
def test_coerce_value(value: Any, dtype: str, expected: Any) -> None:
    got = coerce_value(value, dtype)
    assert got == expected
    assert type(got) is type(expected)


def test_coerce_timestamp_awareness() -> None:
    aware = coerce_value("2024-01-02T03:00:00+02:00", "timestamp", tz_aware=False)
    assert aware == pd.Timestamp("2024-01-02T01:00:00") and aware.tzinfo is None
    naive = coerce_value("2024-01-02T03:00:00", "timestamp", tz_aware=True)
    assert naive == pd.Timestamp("2024-01-02T03:00:00", tz="UTC")
    kept = coerce_value("2024-01-02T03:00:00+02:00", "timestamp")
    assert kept.utcoffset() == timedelta(hours=2)


@pytest.mark.parametrize(
    ("value", "dtype", "fragment"),
    [
        ("abc", "integer", "value 'abc' cannot be compared with integer column 'age'"),
        ("1_000", "integer", "integer column 'age'"),
        (True, "integer", "booleans are not numbers"),
        (float("nan"), "float", "is_null"),
        ("nan", "float", "float column 'age'"),
        ("yes", "boolean", "true/false"),
        (2, "boolean", "boolean column 'age'"),
        ("2024-13-45", "timestamp", "ISO-8601"),
        (1700000000, "timestamp", "ISO-8601"),
        ("", "timestamp", "ISO-8601"),
        (None, "integer", "is_null"),
        ([1], "categorical", "single value"),
    ],
)
def test_coerce_value_errors(value: Any, dtype: str, fragment: str) -> None:
    with pytest.raises(ValueError) as info:
        coerce_value(value, dtype, column="age")
    assert fragment in str(info.value)


def test_coerce_value_unknown_dtype() -> None:
    with pytest.raises(ValueError, match="unknown column dtype"):
        coerce_value(1, "complex")


# ------------------------------------------------------------------------- check_filter

DTYPES = {"age": "integer", "score": "float", "ok": "boolean", "city": "categorical",
          "when": "timestamp"}


def _check(flt: dict[str, Any]) -> list[dict[str, Any]]:
    return check_filter(FILTER.validate_python(flt), DTYPES)


def test_check_filter_accepts_good_filters() -> None:
    good = {"kind": "and", "filters": [
        {"kind": "cmp", "col": "age", "op": ">", "value": 2.5},
        {"kind": "cmp", "col": "ok", "op": "<", "value": True},
        {"kind": "cmp", "col": "city", "op": ">=", "value": 3},
        {"kind": "cmp", "col": "when", "op": "in", "value": ["2024-01-01", "2024-02-01T10:00Z"]},
        {"kind": "cmp", "col": "score", "op": "is_null"},
        {"kind": "not", "filter": {"kind": "cmp", "col": "score", "op": "!=", "value": "1.5"}},
    ]}
    assert _check(good) == []


def test_check_filter_unknown_column_lists_columns() -> None:
    [error] = _check({"kind": "cmp", "col": "agee", "value": 1})
    assert error["loc"] == ["filter", "col"]
    assert "unknown column 'agee'" in error["msg"]
    assert "did you mean 'age'" in error["msg"]
    for name in DTYPES:
        assert repr(name) in error["msg"]


def test_check_filter_trims_long_column_lists() -> None:
    many = {f"col{i}": "float" for i in range(100)}
    [error] = check_filter(FILTER.validate_python({"kind": "cmp", "col": "zzz", "value": 1}),
                           many)
    assert "'col19'" in error["msg"] and "'col20'" not in error["msg"]
    assert "80 more" in error["msg"]


def test_check_filter_locations_in_nested_filters() -> None:
    flt = {"kind": "or", "filters": [
        {"kind": "cmp", "col": "age", "op": "==", "value": "old"},
        {"kind": "and", "filters": [
            {"kind": "cmp", "col": "ok", "op": "in", "value": [True, "maybe", None]},
            {"kind": "not", "filter": {"kind": "cmp", "col": "nope", "op": "is_null"}},
        ]},
        {"kind": "cmp", "col": "when", "op": ">=", "value": "yesterday"},
    ]}
    errors = _check(flt)
    assert [e["loc"] for e in errors] == [
        ["filter", "filters", 0, "value"],
        ["filter", "filters", 1, "filters", 0, "value", 1],
        ["filter", "filters", 1, "filters", 0, "value", 2],
        ["filter", "filters", 1, "filters", 1, "filter", "col"],
        ["filter", "filters", 2, "value"],
    ]
    assert "value 'old' cannot be compared with integer column 'age'" in errors[0]["msg"]
    assert "'maybe'" in errors[1]["msg"] and "boolean column 'ok'" in errors[1]["msg"]
    assert "is_null" in errors[2]["msg"]
    assert "unknown column 'nope'" in errors[3]["msg"]
    assert "timestamp column 'when'" in errors[4]["msg"]
