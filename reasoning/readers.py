"""Reading an upload into a typed table: which format the file is (by its name, and by its
bytes where they tell more), then that format's reader (`csv_reader`, `parquet_reader`);
`retype_frame` changes the types the reading chose.

What every upload is held to (its errors, `TableLimits`, column names) is in
`upload_checks`.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import pandas as pd

from reasoning.csv_reader import read_csv
from reasoning.dialects import CsvOptions, Reading, retype
from reasoning.encoding import infer_dtype
from reasoning.parquet_reader import PARQUET_MAGIC, read_parquet
from reasoning.schemas import DataWarning, Dialect, Dtype
from reasoning.upload_checks import DatasetError, RetypeError, TableLimits

CSV_EXTENSIONS = (".csv", ".tsv", ".txt")
PARQUET_EXTENSIONS = (".parquet", ".pq")
ACCEPTED_EXTENSIONS = CSV_EXTENSIONS + PARQUET_EXTENSIONS
SPREADSHEET_EXTENSIONS = (".xlsx", ".xlsm", ".xls", ".ods", ".numbers")
SPREADSHEET_MAGIC = (b"PK\x03\x04", b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1")
"""A zip (xlsx, ods) or an OLE2 compound file (xls): a spreadsheet, whatever its name."""
HOW_TO_EXPORT = ("save it as CSV first (Excel: File > Save As > 'CSV UTF-8'; LibreOffice: "
                 "File > Save As > 'Text CSV'; Google Sheets: File > Download > CSV) and "
                 "upload that")


@dataclass
class ReadResult:
    """An upload read: the typed table, how the file was read, what was assumed."""

    frame: pd.DataFrame
    dialect: Dialect
    warnings: list[DataWarning]


def read_table(
    filename: str, content: bytes, limits: TableLimits | None = None
) -> pd.DataFrame:
    """Parse an upload (CSV or Parquet, chosen by extension) into a typed DataFrame (see
    `read_upload`, which also says how it was read)."""
    return read_upload(filename, content, limits).frame


def read_upload(
    filename: str,
    content: bytes,
    limits: TableLimits | None = None,
    options: CsvOptions | None = None,
    dtypes: dict[str, Dtype] | None = None,
    errors: str = "raise",
) -> ReadResult:
    """Parse an upload (CSV/TSV/TXT or Parquet, chosen by extension) into a typed table.

    Column dtypes follow the service's vocabulary: int64 (Int64 when values are missing),
    float64, bool (nullable `boolean` when missing), text (categorical) and datetime64.
    A CSV's dialect (delimiter, decimal mark, encoding, date formats) is detected unless
    `options` name it; `dtypes` then retypes columns (`errors` as in `retype_frame`).
    `limits` are checked while reading, before the whole table is in memory.
    """
    limits = limits or TableLimits()
    options = options or CsvOptions()
    suffix = Path(filename or "").suffix.lower()
    if suffix in SPREADSHEET_EXTENSIONS or (
        suffix not in PARQUET_EXTENSIONS and content[:8].startswith(SPREADSHEET_MAGIC)
    ):
        raise DatasetError(f"file {filename!r} is a spreadsheet, not a CSV or Parquet file; "
                           + HOW_TO_EXPORT)
    if suffix not in ACCEPTED_EXTENSIONS:
        shown = repr(suffix) if suffix else "no extension"
        raise DatasetError(
            f"file {filename!r} has {shown}; accepted: {', '.join(ACCEPTED_EXTENSIONS)}"
        )
    if not content or not content.strip():
        raise DatasetError(f"file {filename!r} is empty")
    if suffix in PARQUET_EXTENSIONS:
        df = read_parquet(filename, content, limits)
        reading = Reading()
        dialect = Dialect(format="parquet")
    else:
        if content[:4] == PARQUET_MAGIC:
            raise DatasetError(
                f"file {filename!r} is a Parquet file, not CSV; upload it with a .parquet name"
            )
        df, reading = read_csv(filename, content, limits, options, tab=suffix == ".tsv")
        dialect = Dialect(format="csv", delimiter=reading.delimiter, decimal=reading.decimal,
                          encoding=reading.encoding, date_formats=reading.date_formats)
    if len(df.columns) == 0:
        raise DatasetError(f"file {filename!r} has no columns")
    if len(df) == 0:
        raise DatasetError(f"file {filename!r} has a header but no data rows")
    warnings = reading.warnings
    if dtypes:
        df, warnings = retype_frame(df, dtypes, errors, dialect, options.date_format, warnings)
    return ReadResult(df, dialect, warnings)


def retype_frame(
    df: pd.DataFrame,
    dtypes: dict[str, Dtype],
    errors: str,
    dialect: Dialect | None,
    date_format: str | None,
    warnings: list[DataWarning],
) -> tuple[pd.DataFrame, list[DataWarning]]:
    """`df` with the named columns retyped. A value that does not convert is an error
    (`errors="raise"`, nothing changes) or becomes null (`"coerce"`, and a warning says
    which); the warnings about a retyped column are replaced by that."""
    unknown = [c for c in dtypes if c not in df.columns]
    if unknown:
        raise RetypeError(f"no column {unknown[0]!r}; columns: "
                           + ", ".join(repr(str(c)) for c in df.columns[:20]))
    decimal = (dialect.decimal if dialect is not None else None) or "."
    day_first = decimal == "," or (dialect is not None and dialect.delimiter == ";")
    out = df.copy()
    kept = [w for w in warnings if w.column not in dtypes]
    for column, dtype in dtypes.items():
        if infer_dtype(df[column]) == dtype:
            continue
        converted = retype(df[column], dtype, decimal, date_format, day_first)
        if converted.n_failed and errors != "coerce":
            shown = ", ".join(repr(v) for v in converted.failed)
            raise RetypeError(
                f"column {column!r}: {converted.n_failed:,} value(s) are not {dtype} "
                f"({shown}); nothing was changed. Send errors='coerce' to make them null")
        if converted.n_failed:
            kept.append(DataWarning(
                column=column, kind="coerced_values", chosen=dtype, values=converted.failed,
                message=f"column {column!r}: {converted.n_failed:,} value(s) that are not "
                f"{dtype} became null ({', '.join(map(repr, converted.failed))})"))
        out[column] = converted.values.set_axis(out.index)
    return out, kept

