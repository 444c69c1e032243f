"""Hostile uploads at the parser: whatever the bytes, a DatasetError that says why, or a table."""

from __future__ import annotations

import io
import random

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from reasoning import parquet_reader
from reasoning.readers import read_table
from reasoning.upload_checks import DatasetError


def _parquet(table: pa.Table) -> bytes:
    buf = io.BytesIO()
    pq.write_table(table, buf)
    return buf.getvalue()


GOOD_PARQUET = _parquet(pa.table({"a": [1, 2, 3], "b": ["x", "y", "z"]}))


@pytest.mark.parametrize(
    ("filename", "content", "fragment"),
    [
        ("x.csv", b" \n\r\n\t\n", "empty"),
        ("x.csv", bytes(range(0x80, 0x100)) * 4, "not UTF-8"),
        ("x.csv", b"a,b\n1,2\n\x00\x00", "NUL bytes"),
        ("x.csv", b"\xef\xbb\xbf,,\n1,2,3\n", "blank column names (column 1, 2, 3)"),
        ("x.csv", b"a,A,a \n1,2,3\n", "duplicate column names: 'a'"),
        ("x.xlsx", b"PK\x03\x04 a zip", "is a spreadsheet, not a CSV"),
        ("x.CSV.exe", b"a\n1\n", "'.exe'"),
        ("x.parquet", GOOD_PARQUET[: len(GOOD_PARQUET) // 2], "not a Parquet file"),
        ("x.parquet", GOOD_PARQUET[:4] + b"\x00" * 40 + GOOD_PARQUET[-8:], "not readable Parquet"),
        ("x.parquet", b"PAR1PAR1", "not readable Parquet"),
    ],
)
def test_hostile_files_name_the_problem(filename: str, content: bytes, fragment: str) -> None:
    with pytest.raises(DatasetError) as info:
        read_table(filename, content)
    assert fragment in str(info.value)
    assert len(str(info.value)) < 500


def test_parquet_declaring_too_many_cells_is_refused_before_reading(monkeypatch) -> None:
    monkeypatch.setattr(parquet_reader, "MAX_PARQUET_CELLS", 5)
    with pytest.raises(DatasetError, match="3 rows × 2 columns = 6 cells; at most 5"):
        read_table("x.parquet", GOOD_PARQUET)
    monkeypatch.setattr(parquet_reader, "MAX_PARQUET_CELLS", 6)
    assert len(read_table("x.parquet", GOOD_PARQUET)) == 3


@pytest.mark.parametrize("filename", ["x.csv", "x.parquet"])
def test_random_bytes_never_escape_as_another_error(filename: str) -> None:
    rng = random.Random(4)
    for _ in range(300):
        size = rng.choice([1, 7, 64, 1000])
        blob = bytes(rng.getrandbits(8) for _ in range(size))
        if filename.endswith(".parquet") and rng.random() < 0.5:
            blob = b"PAR1" + blob + b"PAR1"  # get past the magic check into pyarrow
        try:
            read_table(filename, blob)
        except DatasetError:
            pass


def test_mangled_parquet_never_escapes_as_another_error() -> None:
    rng = random.Random(5)
    for _ in range(300):
        blob = bytearray(GOOD_PARQUET)
        for _ in range(rng.choice([1, 3, 20])):
            blob[rng.randrange(4, len(blob) - 4)] = rng.getrandbits(8)
        try:
            read_table("x.parquet", bytes(blob))
        except DatasetError:
            pass
