"""Bounds on what one request may ask: comparisons per filter, values per `in` list, and
errors per 422; and an `in` over datetimes that matches exactly, in one pass."""

from __future__ import annotations

import pandas as pd
import pytest
from pydantic import ValidationError

from reasoning.column_stats import ColumnSummary
from reasoning.filters import apply_filter
from reasoning.schemas import (
    MAX_FILTER_LEAVES,
    MAX_LIST_VALUES,
    Comparison,
    ReasoningFitRequest,
)
from reasoning.validation import check_fit_request, design_problem
from serve_app.problems import MAX_ERRORS, invalid_all

BASE = {"dataset_id": "00000000-0000-0000-0000-000000000001",
        "task": {"task_kind": "regression", "label_column": "y"}}
LEAF = {"col": "a", "op": "==", "value": 1}


def _fanned(leaves: int) -> dict:
    """An `and` of `or`s of at most 64 comparisons each (the per-list limit)."""
    groups = [min(64, leaves - i) for i in range(0, leaves, 64)]
    return {"kind": "and", "filters": [{"kind": "or", "filters": [LEAF] * n} for n in groups]}


def test_a_filter_holds_at_most_so_many_comparisons():
    ReasoningFitRequest.model_validate({**BASE, "filter": _fanned(MAX_FILTER_LEAVES)})
    with pytest.raises(ValidationError, match=f"has {MAX_FILTER_LEAVES + 1} comparisons"):
        ReasoningFitRequest.model_validate({**BASE, "filter": _fanned(MAX_FILTER_LEAVES + 1)})


def test_an_in_list_holds_at_most_so_many_values():
    Comparison(col="a", op="in", value=list(range(MAX_LIST_VALUES)))
    with pytest.raises(ValidationError, match=f"{MAX_LIST_VALUES + 1:,} values; at most"):
        Comparison(col="a", op="not_in", value=list(range(MAX_LIST_VALUES + 1)))


def test_a_422_lists_a_few_errors_and_says_how_many_more():
    errors = [{"loc": ["body", "filter", "value", i], "msg": "not a number"}
              for i in range(MAX_ERRORS + 990)]
    problem = invalid_all(errors)
    assert problem.status == 422 and problem.errors == errors[:MAX_ERRORS]
    assert problem.detail.endswith("; and 990 more")
    assert problem.detail.count("not a number") == MAX_ERRORS
    assert "and" not in invalid_all(errors[:2]).detail.split("; ")[-1]


@pytest.mark.parametrize("unit", ["s", "ms", "us", "ns"])
@pytest.mark.parametrize("zone", [None, "Europe/Zurich"])
def test_in_over_datetimes_matches_exactly_in_any_unit_and_zone(unit, zone):
    stamps = pd.Series(pd.to_datetime(["2024-01-01 00:00:00", "2024-06-30 12:00:00",
                                       "2025-01-01 00:00:00", None]).as_unit(unit))
    if zone:
        stamps = stamps.dt.tz_localize("UTC").dt.tz_convert(zone)
    frame = pd.DataFrame({"t": stamps, "i": range(4)})
    wanted = ["2024-06-30T12:00:00Z" if zone else "2024-06-30T12:00:00",
              "2025-01-01T00:00:00.000000001Z" if zone else "2025-01-01T00:00:00.000000001",
              "1999-01-01T00:00:00Z" if zone else "1999-01-01T00:00:00"]
    kept = apply_filter(frame, Comparison(col="t", op="in", value=wanted))
    # A nanosecond after a stored instant is another instant, whatever the column's unit.
    assert list(kept["i"]) == [1]
    left = apply_filter(frame, Comparison(col="t", op="not_in", value=wanted))
    assert list(left["i"]) == [0, 2]  # nulls are neither in nor not in, as in SQL


def _summary(rows: int, distinct: int) -> ColumnSummary:
    return ColumnSummary(n_rows=rows, n_present=rows, minimum=0, maximum=1,
                         n_distinct=distinct)


def test_a_design_matrix_over_the_limit_is_refused_saying_by_how_much():
    dtypes = {"price": "float", "area": "float", "street": "categorical", "garden": "boolean"}
    summaries = {"price": _summary(100_000, 90_000), "area": _summary(100_000, 5_000),
                 "street": _summary(100_000, 20_000), "garden": _summary(100_000, 2)}
    # inputs: area 16 + street 20,001 + garden 2 = 20,019 design columns
    problem = design_problem(dtypes, "price", summaries.__getitem__, limit=200_000_000)
    assert problem is not None
    assert "100,000 rows × 20,019 columns = 2,001,900,000 cells" in problem
    assert "10.0 times the limit of 200,000,000" in problem and "street (20,001)" in problem
    assert design_problem(dtypes, "price", summaries.__getitem__, limit=3_000_000_000) is None
    # The label is not an input: as an input, `price` would count too.
    assert design_problem({"price": "float", "area": "float"}, "price",
                          summaries.__getitem__, limit=1_600_000) is None


def test_the_design_check_is_part_of_a_submits_checks():
    request = ReasoningFitRequest.model_validate({**BASE, "task": {
        "task_kind": "regression", "label_column": "y"}})
    dtypes = {"y": "float", "id": "categorical"}
    summaries = {"y": _summary(1_000, 900), "id": _summary(1_000, 1_000)}
    errors = check_fit_request(request, dtypes, summarize=summaries.__getitem__,
                               design_limit=500_000)
    assert [e["loc"] for e in errors] == [["body", "dataset_id"]]
    assert "times the limit" in errors[0]["msg"]
