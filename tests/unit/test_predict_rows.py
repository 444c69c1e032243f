"""Hostile scoring rows: NaN and infinities, numbers too big, too many rows (reasoning.predict)."""

from __future__ import annotations

import json

import pytest
from pydantic import ValidationError

from reasoning.predict import RowsError, rows_frame
from reasoning.schemas import MAX_PREDICT_ROWS, Column, InvocationsRequest, PredictRequest

FEATURES = [Column(name="x", dtype="float"), Column(name="n", dtype="integer"),
            Column(name="c", dtype="categorical")]


def _frame(body: str):
    # json.loads as FastAPI does: it accepts NaN, Infinity and turns 1e999 into inf.
    return rows_frame(PredictRequest.model_validate(json.loads(body)), FEATURES)


@pytest.mark.parametrize(
    ("body", "words"),
    [
        ('{"dataframe_records": [{"x": 1, "n": 1, "c": "a"}, {"x": NaN, "n": 1, "c": "a"}]}',
         "row 1, column 'x': NaN"),
        ('{"dataframe_records": [{"x": 1, "n": Infinity, "c": "a"}]}',
         "row 0, column 'n': Infinity"),
        ('{"dataframe_records": [{"x": -Infinity, "n": 1, "c": "a"}]}',
         "row 0, column 'x': -Infinity"),
        ('{"dataframe_records": [{"x": 1e999, "n": 1, "c": "a"}]}', "row 0, column 'x': Infinity"),
        ('{"dataframe_records": [{"x": 1, "n": 1, "c": NaN}]}', "row 0, column 'c': NaN"),
        ('{"dataframe_split": {"columns": ["x", "n", "c"], "data": [[1, 2, "a"], [1, NaN, "b"]]}}',
         "row 1, column 'n': NaN"),
    ],
)
def test_non_finite_numbers_name_row_and_column(body: str, words: str) -> None:
    with pytest.raises(RowsError, match="send null") as caught:
        _frame(body)
    assert words in str(caught.value)


def test_missing_keys_in_records_are_still_nulls() -> None:
    frame = _frame('{"dataframe_records": [{"x": 1, "n": 1, "c": "a"}, {"x": null}]}')
    assert frame["n"].isna().tolist() == [False, True]


@pytest.mark.parametrize("big", ["1" + "0" * 400, "-" + "9" * 1000])
def test_integers_too_big_for_a_float_are_named(big: str) -> None:
    with pytest.raises(RowsError, match="column 'x'"):
        _frame('{"dataframe_records": [{"x": ' + big + ', "n": 1, "c": "a"}]}')


def test_integers_beyond_int64_become_floats() -> None:
    frame = _frame('{"dataframe_records": [{"x": ' + str(2**70) + ', "n": 1, "c": "a"}]}')
    assert frame["x"].dtype == "float64" and frame["x"][0] == float(2**70)


def test_row_count_is_bounded() -> None:
    rows = [{"x": 1}] * (MAX_PREDICT_ROWS + 1)
    for shape in ({"dataframe_records": rows},
                  {"dataframe_split": {"columns": ["x"], "data": [[1]] * (MAX_PREDICT_ROWS + 1)}}):
        with pytest.raises(ValidationError, match=f"at most {MAX_PREDICT_ROWS}"):
            PredictRequest.model_validate(shape)
    with pytest.raises(ValidationError, match=f"at most {MAX_PREDICT_ROWS}"):
        InvocationsRequest.model_validate({"instances": rows})
    PredictRequest.model_validate({"dataframe_records": rows[:MAX_PREDICT_ROWS]})
