"""One rule for what a boolean is: filters, predict rows, the encoder and a retyped upload
column all read the same values the same way (`reasoning.booleans`)."""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd
import pytest

from reasoning.booleans import as_bool
from reasoning.dialects import retype
from reasoning.encoding import Feature, TableEncoder
from reasoning.filters import coerce_value
from reasoning.predict import RowsError, rows_frame
from reasoning.schemas import Column, PredictRequest

SAMPLES: list[tuple[Any, bool | None]] = [
    (True, True), (False, False), (1, True), (0, False), (1.0, True), (0.0, False),
    ("true", True), (" FALSE ", False), ("True", True), ("1", True), ("0", False),
    ("1.0", True), ("0.0", False),
    ("yes", None), ("no", None), ("t", None), ("2", None), (2, None), ("", None),
]


@pytest.mark.parametrize(("value", "expected"), SAMPLES)
def test_the_rule(value: Any, expected: bool | None) -> None:
    assert as_bool(value) is expected


@pytest.mark.parametrize(("value", "expected"), SAMPLES)
def test_a_filter_value(value: Any, expected: bool | None) -> None:
    if expected is None:
        with pytest.raises(ValueError, match="boolean"):
            coerce_value(value, "boolean", column="flag")
    else:
        assert coerce_value(value, "boolean", column="flag") is expected


@pytest.mark.parametrize(("value", "expected"), [s for s in SAMPLES if s[1] is not None])
def test_a_predict_row(value: Any, expected: bool) -> None:
    request = PredictRequest(dataframe_records=[{"flag": value}])
    frame = rows_frame(request, [Column(name="flag", dtype="boolean")])
    assert frame["flag"].tolist() == [expected]


@pytest.mark.parametrize("value", [v for v, e in SAMPLES if e is None and v != ""])
def test_a_predict_row_refuses_what_is_not_a_boolean(value: Any) -> None:
    request = PredictRequest(dataframe_records=[{"flag": value}])
    with pytest.raises(RowsError, match="flag"):
        rows_frame(request, [Column(name="flag", dtype="boolean")])


def test_the_encoder_and_an_upload_retype() -> None:
    values = [v for v, _ in SAMPLES]
    expected = [np.nan if e is None else float(e) for _, e in SAMPLES]
    encoder = TableEncoder(numeric="raw").fit(
        pd.DataFrame({"flag": [True, False]}), [Feature("flag", "boolean")])
    encoded = encoder.transform_column("flag", pd.Series(values, dtype=object))
    np.testing.assert_array_equal(encoded[:, 0], expected)
    text = [v for v in values if isinstance(v, str) and v.strip()]
    retyped = retype(pd.Series(text, dtype=object), "boolean")
    assert [None if pd.isna(v) else bool(v) for v in retyped.values] == [
        as_bool(v) for v in text]
