"""Reading an uploaded Parquet file into a typed table, within its `TableLimits`.

The file's own schema is trusted; only types outside the service's few are converted. A
Parquet file can claim far more than its size (run-length and dictionary encoding,
compression), so its declared sizes are checked first, then its text columns are read
dictionary-encoded batch by batch, so the decoded size and the longest cell are known
before anything is expanded.
"""

from __future__ import annotations

import re
from typing import Any

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from reasoning.upload_checks import DatasetError, TableLimits, clean_names, trim

PARQUET_MAGIC = b"PAR1"
MAX_PARQUET_CELLS = 50_000_000
"""Rows × columns a Parquet upload may declare: a few KB of run-length encoding can claim
billions of rows, which would exhaust memory on reading (a 100 MiB CSV holds about this
many cells at most)."""
PARQUET_BATCH_ROWS = 65_536


def read_parquet(filename: str, content: bytes, limits: TableLimits) -> pd.DataFrame:
    """The file's table in the service's dtypes (nullable ones only where values are
    missing, as a CSV is read)."""
    if len(content) < 8 or content[:4] != PARQUET_MAGIC or content[-4:] != PARQUET_MAGIC:
        raise DatasetError(
            f"file {filename!r} is not a Parquet file (it must start and end with 'PAR1')"
        )
    try:
        table = _bounded_parquet(filename, content, limits)
        table = _normalise_arrow(filename, table)
        df = table.to_pandas(types_mapper=_nullable_types)
    except DatasetError:
        raise
    except (pa.ArrowException, OSError, ValueError, TypeError) as exc:
        raise DatasetError(f"file {filename!r} is not readable Parquet: {trim(exc)}") from exc
    names = clean_names(filename, list(df.columns))
    return pd.DataFrame(
        {name: _numpy_when_complete(df.iloc[:, i]) for i, name in enumerate(names)}
    )


def _bounded_parquet(filename: str, content: bytes, limits: TableLimits) -> pa.Table:
    """The file's table, read batch by batch with text columns kept dictionary-encoded, so
    the decoded size (and the longest cell) is known from the dictionaries' lengths before
    anything is expanded. Decompression is bounded first by the sizes the file declares,
    which Arrow holds each page to."""
    plain = pq.ParquetFile(pa.BufferReader(content))
    meta = plain.metadata
    if meta.num_columns > limits.columns:
        raise limits.too_many_columns(filename, meta.num_columns)
    cells = meta.num_rows * meta.num_columns
    if cells > MAX_PARQUET_CELLS:
        raise DatasetError(
            f"file {filename!r} declares {meta.num_rows:,} rows × {meta.num_columns:,} "
            f"columns = {cells:,} cells; at most {MAX_PARQUET_CELLS:,} are accepted"
        )
    declared = sum(meta.row_group(g).column(c).total_uncompressed_size
                   for g in range(meta.num_row_groups) for c in range(meta.num_columns))
    if declared > limits.decoded_bytes:
        raise limits.too_large(filename, declared, "at least ")
    text = [f.name for f in plain.schema_arrow if is_text(f.type)]
    reader = pq.ParquetFile(pa.BufferReader(content), read_dictionary=text)
    decoded, batches = 0, []
    for batch in reader.iter_batches(batch_size=PARQUET_BATCH_ROWS):
        for name, column in zip(batch.schema.names, batch.columns, strict=True):
            size, longest = _decoded_size(column)
            if longest > limits.cell_chars:
                raise limits.too_long_cell(filename, name, longest)
            decoded += size
        if decoded > limits.decoded_bytes:
            raise limits.too_large(filename, decoded, "at least ")
        batches.append(batch)
    return pa.Table.from_batches(batches) if batches else reader.schema_arrow.empty_table()


def _decoded_size(column: pa.Array) -> tuple[int, int]:
    """Bytes a column takes once its dictionary is expanded, and its longest text cell."""
    if pa.types.is_dictionary(column.type):
        lengths = pc.binary_length(column.dictionary).to_numpy(zero_copy_only=False)
        indices = column.indices.to_numpy(zero_copy_only=False)
        present = (indices[~np.isnan(indices)] if indices.dtype.kind == "f"
                   else indices).astype(np.int64)
        if len(present) and (present.min() < 0 or present.max() >= len(lengths)):
            raise ValueError("a dictionary index is out of range")  # a mangled file
        used = lengths[present]
        return int(used.sum()) + 4 * len(column), int(used.max()) if len(used) else 0
    if is_text(column.type):
        return column.nbytes, int(pc.max(pc.binary_length(column)).as_py() or 0)
    return column.nbytes, 0


def is_text(t: pa.DataType) -> bool:
    """A string or binary type, of either offset width (pyarrow tests each one alone)."""
    return (pa.types.is_string(t) or pa.types.is_large_string(t) or pa.types.is_binary(t)
            or pa.types.is_large_binary(t))


def _normalise_arrow(filename: str, table: pa.Table) -> pa.Table:
    """Cast Parquet's types onto the service's few and drop pandas' unnamed index columns.

    The file's own schema is trusted (a string column stays text even if it looks like
    numbers); only types outside the vocabulary are converted.
    """
    meta = table.schema.pandas_metadata or {}
    unnamed_index = {
        c for c in meta.get("index_columns", [])
        if isinstance(c, str) and re.fullmatch(r"__index_level_\d+__", c)
    }
    names: list[str] = []
    arrays: list[pa.ChunkedArray] = []
    for field, column in zip(table.schema, table.columns, strict=True):
        if field.name in unnamed_index:
            continue
        t = field.type
        if pa.types.is_dictionary(t):
            column, t = column.cast(t.value_type), t.value_type
        if pa.types.is_decimal(t) or pa.types.is_null(t) or pa.types.is_floating(t):
            column = column.cast(pa.float64())
        elif pa.types.is_date(t):
            column = column.cast(pa.timestamp("s"))
        elif pa.types.is_large_string(t):
            column = column.cast(pa.string())
        elif not (
            pa.types.is_integer(t) or pa.types.is_boolean(t) or pa.types.is_string(t)
            or pa.types.is_timestamp(t)
        ):
            raise DatasetError(
                f"file {filename!r}: column {field.name!r} has unsupported type {t}; "
                "use numbers, booleans, strings or timestamps"
            )
        names.append(field.name)
        arrays.append(column)
    return pa.table(arrays, names=names)


def _nullable_types(t: pa.DataType) -> Any:
    """Read integers and booleans null-aware, so a missing value does not make floats."""
    if pa.types.is_integer(t):
        return pd.UInt64Dtype() if t == pa.uint64() else pd.Int64Dtype()
    if pa.types.is_boolean(t):
        return pd.BooleanDtype()
    return None


def _numpy_when_complete(s: pd.Series) -> pd.Series:
    """Nullable Int64/boolean only where values are missing, as the CSV reader does."""
    if isinstance(s.dtype, pd.Int64Dtype | pd.UInt64Dtype | pd.BooleanDtype) and not s.isna().any():
        return s.astype({"Int64": "int64", "UInt64": "uint64", "boolean": "bool"}[s.dtype.name])
    if pd.api.types.is_string_dtype(s.dtype) and not pd.api.types.is_datetime64_any_dtype(s):
        return s.astype("str")
    return s
