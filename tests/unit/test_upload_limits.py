"""What one upload may unpack into (TableLimits): decoded bytes, columns and one cell's
length, for CSV and Parquet alike, found while reading, before the table is built."""

from __future__ import annotations

import io
import resource

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from reasoning.readers import read_table
from reasoning.upload_checks import DatasetError, DatasetTooLarge, TableLimits

SMALL = TableLimits(decoded_bytes=10 * 2**20, columns=50, cell_chars=1_000)


def _parquet(table: pa.Table, **options) -> bytes:
    out = io.BytesIO()
    pq.write_table(table, out, compression="zstd", **options)
    return out.getvalue()


def _peak_mib() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def test_a_dictionary_bomb_is_refused_before_it_is_expanded():
    """A 1 MB text repeated in 20,000 rows: a file of kilobytes, 20 GB once decoded."""
    rows = 20_000
    column = pa.DictionaryArray.from_arrays(pa.array(np.zeros(rows, dtype=np.int32)),
                                            pa.array(["x" * 1_000_000]))
    content = _parquet(pa.table({"s": column, "n": np.arange(rows)}))
    assert len(content) < 200_000
    before = _peak_mib()
    with pytest.raises(DatasetTooLarge, match=r"unpacks into at least [\d,]+ bytes"):
        read_table("bomb.parquet", content, TableLimits(decoded_bytes=10 * 2**20,
                                                        cell_chars=2_000_000))
    assert _peak_mib() - before < 500  # never anywhere near 20 GB


def test_a_decompression_bomb_is_refused_from_the_sizes_it_declares():
    table = pa.table({"s": ["y" * 100_000] * 1_000})  # 100 MB of text, plain-encoded
    content = _parquet(table, use_dictionary=False)
    assert len(content) < 1_000_000
    with pytest.raises(DatasetTooLarge, match="REASONING_MAX_UPLOAD_DECODED_BYTES"):
        read_table("zip.parquet", content, TableLimits(decoded_bytes=10 * 2**20,
                                                       cell_chars=200_000))


@pytest.mark.parametrize("dictionary", [True, False])
def test_a_long_parquet_cell_is_422_naming_its_column(dictionary):
    content = _parquet(pa.table({"ok": ["a", "b"], "note": ["short", "z" * 5_000]}),
                       use_dictionary=dictionary)
    with pytest.raises(DatasetError, match="column 'note' holds 5,000 characters") as err:
        read_table("t.parquet", content, SMALL)
    assert not isinstance(err.value, DatasetTooLarge)


def test_a_long_csv_cell_is_422_naming_its_column():
    content = b"a,note\n1,short\n2," + b"z" * 5_000 + b"\n"
    with pytest.raises(DatasetError, match="column 'note' holds 5,000 characters"):
        read_table("t.csv", content, SMALL)


@pytest.mark.parametrize("kind", ["csv", "parquet"])
def test_too_many_columns_is_422(kind):
    names = [f"c{i}" for i in range(51)]
    if kind == "csv":
        content = (",".join(names) + "\n" + ",".join("1" * 51) + "\n").encode()
    else:
        content = _parquet(pa.table({name: [1] for name in names}))
    with pytest.raises(DatasetError, match="has 51 columns; at most 50"):
        read_table(f"t.{kind}", content, SMALL)


def test_a_csv_bigger_than_the_decoded_limit_is_413():
    content = b"a\n" + b"1\n" * 1_000
    with pytest.raises(DatasetTooLarge, match="2,002 bytes"):
        read_table("t.csv", content, TableLimits(decoded_bytes=2_000))


def test_tables_within_the_limits_read_as_before():
    names = [f"c{i}" for i in range(50)]
    csv_content = (",".join(names) + "\n" + ",".join(["x" * 1_000] * 50) + "\n").encode()
    assert read_table("t.csv", csv_content, SMALL).shape == (1, 50)
    column = pa.DictionaryArray.from_arrays(pa.array([0, 1, None, 0], type=pa.int32()),
                                            pa.array(["x" * 1_000, "b"]))
    frame = read_table("t.parquet", _parquet(pa.table({"s": column})), SMALL)
    assert list(frame["s"].fillna("-")) == ["x" * 1_000, "b", "-", "x" * 1_000]
