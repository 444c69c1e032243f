"""Dataset upload parsing (CSV, Parquet), its error messages, and the on-disk store."""

from __future__ import annotations

import io
import uuid
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from reasoning.encoding import infer_dtype
from reasoning.readers import read_table
from reasoning.schemas import DEFAULT_TENANT
from reasoning.service.stores import Stores
from reasoning.upload_checks import DatasetError

CSV = b"""id, score ,flag,city,when,count,maybe,ratio,stamp_tz
1,0.5,true,Paris,2024-01-01,10,TRUE,1.0,2024-01-01T10:00:00Z
2,,false,,2024-01-02T03:04:05,,,2.0,2024-01-01T12:00:00+02:00
3,2.25,True,Oslo,,30,false,3.5,
4,-1e3,FALSE,NA,2024-03-01 12:00,40,,4.0,2024-02-01T00:00:00-05:00
"""


def _dtypes(df: pd.DataFrame) -> dict[str, str]:
    return {c: infer_dtype(df[c]) for c in df.columns}


def _parquet(table: pa.Table) -> bytes:
    buf = io.BytesIO()
    pq.write_table(table, buf)
    return buf.getvalue()


def test_csv_inference_with_missing_values() -> None:
    df = read_table("data.csv", CSV)
    assert list(df.columns) == ["id", "score", "flag", "city", "when", "count", "maybe",
                                "ratio", "stamp_tz"]
    assert _dtypes(df) == {
        "id": "integer", "score": "float", "flag": "boolean", "city": "categorical",
        "when": "timestamp", "count": "integer", "maybe": "boolean", "ratio": "float",
        "stamp_tz": "timestamp",
    }
    assert df["id"].dtype == np.int64 and df["id"].tolist() == [1, 2, 3, 4]
    assert str(df["count"].dtype) == "Int64"
    assert df["count"].isna().tolist() == [False, True, False, False]
    assert df["count"].dropna().tolist() == [10, 30, 40]
    assert df["score"].dtype == np.float64 and np.isnan(df["score"][1])
    assert df["score"][3] == -1000.0
    assert df["flag"].dtype == bool and df["flag"].tolist() == [True, False, True, False]
    assert str(df["maybe"].dtype) == "boolean"
    assert df["maybe"].tolist() == [True, pd.NA, False, pd.NA]
    assert df["city"].isna().tolist() == [False, True, False, True]
    assert df["city"][0] == "Paris"
    assert pd.api.types.is_datetime64_dtype(df["when"].dtype)
    assert df["when"][1] == pd.Timestamp("2024-01-02T03:04:05") and pd.isna(df["when"][2])
    assert df["ratio"].dtype == np.float64  # "1.0" was a float in the file
    assert isinstance(df["stamp_tz"].dtype, pd.DatetimeTZDtype)  # mixed offsets -> UTC
    assert df["stamp_tz"][1] == pd.Timestamp("2024-01-01T10:00:00Z")


def test_csv_strips_names_and_bom_and_keeps_text_columns() -> None:
    df = read_table("x.CSV", "\ufeff a ,b\n007,x1\n8,2024-01-01\n".encode())
    assert list(df.columns) == ["a", "b"]
    assert df["a"].tolist() == [7, 8]
    assert _dtypes(df)["b"] == "categorical"  # one value is not a timestamp
    assert df["b"].tolist() == ["x1", "2024-01-01"]


def test_csv_all_missing_column_and_big_integers() -> None:
    df = read_table("x.csv", b"a,b,c\n,1,99999999999999999999\n,2,1\n")
    assert df["a"].isna().all()
    assert _dtypes(df)["b"] == "integer"
    assert _dtypes(df)["c"] == "float"  # beyond int64


@pytest.mark.parametrize(
    ("filename", "content", "fragment"),
    [
        ("x.csv", b"", "empty"),
        ("x.csv", b"  \n\n", "empty"),
        ("x.csv", b"a,b\n", "no data rows"),
        ("x.csv", b"a,b\n1,2\n\xff\xfe\xfa\x00", "NUL bytes"),
        ("x.csv", b"a,b,a\n1,2,3\n", "duplicate column names: 'a'"),
        ("x.csv", b"a, a\n1,2\n", "duplicate column names: 'a'"),
        ("x.csv", b"a,,c\n1,2,3\n", "blank column names (column 2)"),
        ("x.csv", b"a,b\n1,2\n1,2,3\n", "Expected 2 fields"),
        ("x.csv", b'a,b\n1,"unterminated\n', "not valid CSV"),
        ("x.csv", b"PAR1\x00\x01garbage PAR1", "Parquet file, not CSV"),
        ("x.csv", b"\x00\x01\x02\x03\xff\xfe", "binary"),
        ("x.json", b"a\n1\n", ".csv, .tsv, .txt, .parquet, .pq"),
        ("x.xlsx", b"PK\x03\x04whatever", "save it as CSV first"),
        ("x.csv", b"PK\x03\x04\x14\x00\x06\x00", "is a spreadsheet"),
        ("x.csv", b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1\x00", "is a spreadsheet"),
        ("noext", b"a\n1\n", "no extension"),
        ("x.parquet", b"a,b\n1,2\n", "not a Parquet file"),
        ("x.pq", b"PAR1 this is not really parquet PAR1", "not readable Parquet"),
    ],
)
def test_read_errors_name_the_problem(filename: str, content: bytes, fragment: str) -> None:
    with pytest.raises(DatasetError) as info:
        read_table(filename, content)
    assert fragment in str(info.value)
    assert len(str(info.value)) < 500


def test_parser_complaint_is_trimmed() -> None:
    long_row = ",".join(["x" * 50] * 40)
    with pytest.raises(DatasetError) as info:
        read_table("x.csv", f"a,b\n1,2\n{long_row}\n".encode())
    assert len(str(info.value)) <= 400


def test_parquet_header_only_and_empty() -> None:
    empty = _parquet(pa.table({"a": pa.array([], pa.int64())}))
    with pytest.raises(DatasetError, match="no data rows"):
        read_table("x.parquet", empty)
    with pytest.raises(DatasetError, match="empty"):
        read_table("x.parquet", b"")


def test_parquet_duplicate_and_blank_names() -> None:
    dup = pa.Table.from_arrays([pa.array([1]), pa.array([2])], names=["a", " a "])
    with pytest.raises(DatasetError, match="duplicate"):
        read_table("x.parquet", _parquet(dup))
    blank = pa.Table.from_arrays([pa.array([1])], names=["  "])
    with pytest.raises(DatasetError, match="blank"):
        read_table("x.parquet", _parquet(blank))


def test_parquet_unsupported_type() -> None:
    nested = pa.table({"a": pa.array([[1, 2], [3]])})
    with pytest.raises(DatasetError, match="column 'a' has unsupported type"):
        read_table("x.parquet", _parquet(nested))


def test_parquet_types() -> None:
    table = pa.table({
        "i": pa.array([1, None, 3], pa.int32()),
        "j": pa.array([1, 2, 3], pa.int64()),
        "f": pa.array([1.5, None, 2.0], pa.float32()),
        "b": pa.array([True, None, False]),
        "s": pa.array(["x", None, "12"]),
        "d": pa.array(["u", "v", "u"]).dictionary_encode(),
        "day": pa.array([None, 19000, 19001], pa.date32()),
        "t": pa.array([0, None, 10**6], pa.timestamp("ms", tz="UTC")),
    })
    df = read_table("x.pq", _parquet(table))
    assert _dtypes(df) == {"i": "integer", "j": "integer", "f": "float", "b": "boolean",
                           "s": "categorical", "d": "categorical", "day": "timestamp",
                           "t": "timestamp"}
    assert str(df["i"].dtype) == "Int64" and df["j"].dtype == np.int64
    assert df["f"].dtype == np.float64
    assert str(df["b"].dtype) == "boolean"
    assert df["s"].tolist()[2] == "12"  # the file says string: stays text
    assert isinstance(df["t"].dtype, pd.DatetimeTZDtype)


def test_parquet_round_trip_from_pandas() -> None:
    df = read_table("data.csv", CSV)
    buf = io.BytesIO()
    df.set_axis(range(100, 100 + len(df))).to_parquet(buf)  # unnamed index is not data
    back = read_table("data.parquet", buf.getvalue())
    pd.testing.assert_frame_equal(back, df)
    assert _dtypes(back) == _dtypes(df)


# -------------------------------------------------------------------------------- store


def test_store_round_trip(stores: Stores) -> None:
    store = stores.datasets()
    df = read_table("data.csv", CSV)
    info = store.add(df, "first")
    assert info.name == "first" and info.n_rows == 4
    assert info.dtypes() == _dtypes(df)
    assert info.created_at.tzinfo is not None
    assert (Path(stores.artifacts) / "datasets" / str(info.dataset_id) / "data.parquet").is_file()
    assert store.get(info.dataset_id) == info
    assert store.get(str(info.dataset_id)) == info
    loaded = store.load(str(info.dataset_id))
    pd.testing.assert_frame_equal(loaded, df)
    assert _dtypes(loaded) == info.dtypes()


def test_store_lists_newest_first_per_tenant(stores: Stores) -> None:
    store = stores.datasets()
    df = pd.DataFrame({"x": [1, 2]})
    first = store.add(df, "a")
    second = store.add(df, "b")
    theirs = store.add(df, "c", tenant="other")
    assert [i.dataset_id for i in store.list(DEFAULT_TENANT)] == [
        second.dataset_id, first.dataset_id]
    assert [i.dataset_id for i in store.list("other")] == [theirs.dataset_id]
    with pytest.raises(KeyError):
        store.get(theirs.dataset_id, DEFAULT_TENANT)
    assert stores.datasets().list() == store.list()


def test_store_unknown_ids(stores: Stores) -> None:
    store = stores.datasets()
    for bad in (uuid.uuid4(), str(uuid.uuid4()), "not-a-uuid", "../etc"):
        with pytest.raises(KeyError):
            store.get(bad)
        with pytest.raises(KeyError):
            store.load(bad)
