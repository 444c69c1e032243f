"""Dataset I/O: read an uploaded CSV or Parquet file into a typed table, and store it.

Uploads come from users, so every way a file can be unreadable is a `DatasetError` whose
message says what is wrong (quoting the parser) instead of a 500. Stored datasets are
immutable: `datasets/<id>/data.parquet` in the artifact store, and a `DatasetInfo` in
the metadata store's catalog.
"""

from __future__ import annotations

import csv
import io
import json
import logging
import re
import uuid
from dataclasses import asdict, dataclass
from datetime import UTC, date, datetime, time
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq
from sqlalchemy import Engine, insert, update

from reasoning.dialects import (
    BOOL_WORDS,
    CsvOptions,
    DialectError,
    Reading,
    ambiguous_dates_warning,
    decode,
    detect_decimal,
    encoding_warning,
    numbers,
    parse_dates,
    retype,
    sniff_delimiter,
    stray_warning,
    strays,
)
from reasoning.encoding import infer_dtype
from reasoning.schemas import (
    DEFAULT_TENANT,
    Column,
    DatasetInfo,
    DatasetPatch,
    DataWarning,
    Dialect,
    Dtype,
)
from reasoning.service.artifacts import ArtifactStore
from reasoning.service.database import catalog_entries, catalog_entry, catalog_id, writing
from reasoning.service.database import datasets as catalog

log = logging.getLogger(__name__)

CSV_EXTENSIONS = (".csv", ".tsv", ".txt")
PARQUET_EXTENSIONS = (".parquet", ".pq")
ACCEPTED_EXTENSIONS = CSV_EXTENSIONS + PARQUET_EXTENSIONS
SPREADSHEET_EXTENSIONS = (".xlsx", ".xlsm", ".xls", ".ods", ".numbers")
PARQUET_MAGIC = b"PAR1"
SPREADSHEET_MAGIC = (b"PK\x03\x04", b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1")
"""A zip (xlsx, ods) or an OLE2 compound file (xls): a spreadsheet, whatever its name."""
HOW_TO_EXPORT = ("save it as CSV first (Excel: File > Save As > 'CSV UTF-8'; LibreOffice: "
                 "File > Save As > 'Text CSV'; Google Sheets: File > Download > CSV) and "
                 "upload that")
MAX_KNOWN_LEVELS = 1_000
"""Levels of a text column kept in its statistics, for submit-time filter checks (a column
with more is an identifier or free text: its filter values are not checked)."""
MAX_DETAIL = 300
MAX_PARQUET_CELLS = 50_000_000
"""Rows × columns a Parquet upload may declare: a few KB of run-length encoding can claim
billions of rows, which would exhaust memory on reading (a 100 MiB CSV holds about this
many cells at most)."""

# Text that means "missing" in a CSV cell (pandas' defaults, minus nothing surprising).
NA_TOKENS = frozenset(
    {"", "#N/A", "#N/A N/A", "#NA", "-1.#IND", "-1.#QNAN", "-NaN", "-nan", "1.#IND",
     "1.#QNAN", "<NA>", "N/A", "NA", "NULL", "NaN", "None", "n/a", "nan", "null"}
)
_INT_RE = re.compile(r"[+-]?\d+")


class DatasetError(ValueError):
    """The upload cannot be read; the message is meant for the user."""


class RetypeError(DatasetError):
    """A column cannot take the type asked for (a value does not convert, or no column)."""


class DatasetTooLarge(DatasetError):
    """The upload would unpack into more than the service takes (a 413, not a 422)."""


@dataclass(frozen=True)
class TableLimits:
    """How much one upload may unpack into, checked while it is read: a small file (a
    compressed or dictionary-encoded Parquet, a CSV of one huge cell) must not become an
    unbounded table in memory."""

    decoded_bytes: int = 1 << 30
    """Bytes of the values once decompressed and dictionary-decoded."""
    columns: int = 1_000
    cell_chars: int = 65_536
    """Characters (bytes, for Parquet) of one text cell."""

    def too_many_columns(self, filename: str, n: int) -> DatasetError:
        return DatasetError(f"file {filename!r} has {n:,} columns; at most {self.columns:,} "
                            "are accepted (REASONING_MAX_UPLOAD_COLUMNS)")

    def too_long_cell(self, filename: str, column: str, n: int) -> DatasetError:
        return DatasetError(f"file {filename!r}: a cell of column {column!r} holds {n:,} "
                            f"characters; at most {self.cell_chars:,} are accepted "
                            "(REASONING_MAX_UPLOAD_CELL_CHARS)")

    def too_large(self, filename: str, n: int, how: str) -> DatasetTooLarge:
        return DatasetTooLarge(
            f"file {filename!r} unpacks into {how}{n:,} bytes of values; at most "
            f"{self.decoded_bytes:,} are accepted (REASONING_MAX_UPLOAD_DECODED_BYTES)")


CSV_CHUNK_ROWS = 50_000
PARQUET_BATCH_ROWS = 65_536


def _trim(text: object, limit: int = MAX_DETAIL) -> str:
    """One line of at most `limit` characters, so parser complaints stay readable."""
    one_line = " ".join(str(text).split())
    return one_line if len(one_line) <= limit else one_line[: limit - 3] + "..."


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
        df = _read_parquet(filename, content, limits)
        reading = Reading()
        dialect = Dialect(format="parquet")
    else:
        df, reading = _read_csv(filename, content, limits, options, tab=suffix == ".tsv")
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


def _clean_names(filename: str, names: list[Any]) -> list[str]:
    """Strip surrounding whitespace; blank and duplicate names are errors, not renames."""
    cleaned = [str(n).strip() for n in names]
    blank = [i + 1 for i, n in enumerate(cleaned) if not n]
    if blank:
        raise DatasetError(
            f"file {filename!r} has blank column names (column {', '.join(map(str, blank))})"
        )
    seen: set[str] = set()
    dupes: list[str] = []
    for n in cleaned:
        if n in seen and n not in dupes:
            dupes.append(n)
        seen.add(n)
    if dupes:
        raise DatasetError(
            f"file {filename!r} has duplicate column names: {_trim(', '.join(map(repr, dupes)))}"
        )
    return cleaned


# ---------------------------------------------------------------------------------- CSV


def _read_csv(
    filename: str, content: bytes, limits: TableLimits, options: CsvOptions, tab: bool
) -> tuple[pd.DataFrame, Reading]:
    if content[:4] == PARQUET_MAGIC:
        raise DatasetError(
            f"file {filename!r} is a Parquet file, not CSV; upload it with a .parquet name"
        )
    utf16 = content[:2] in (b"\xff\xfe", b"\xfe\xff") or (options.encoding or "").lower(
    ).replace("-", "").startswith("utf16")
    if b"\x00" in content and not utf16:
        raise DatasetError(f"file {filename!r} is not CSV text: it contains NUL bytes (binary?)")
    if len(content) > limits.decoded_bytes:  # CSV's values are its text
        raise limits.too_large(filename, len(content), "")
    try:
        text, encoding = decode(content, options.encoding or ("utf-16" if utf16 else None))
    except DialectError as exc:
        raise DatasetError(f"file {filename!r}: {exc}") from None
    delimiter = options.delimiter or sniff_delimiter(text, "\t" if tab else ",")
    reading = Reading(delimiter=delimiter, encoding=encoding)
    if options.encoding is None and encoding not in ("utf-8", "utf-16"):
        line = next((ln for ln in text.splitlines()[1:] if any(ord(c) > 127 for c in ln)), "")
        reading.warnings.append(encoding_warning(encoding, line[:80]))
    header_fields = next(csv.reader(io.StringIO(text[: 1 << 20]), delimiter=delimiter), [])
    if len(header_fields) > limits.columns:
        raise limits.too_many_columns(filename, len(header_fields))
    try:
        # Every cell as text: the header row is read as data so that pandas cannot rename
        # duplicates ("a.1"), and inference below can tell "1" from "1.0". In chunks, so a
        # cell past the limit stops the reading early.
        chunks = []
        for chunk in pd.read_csv(
            io.StringIO(text),
            header=None,
            sep=delimiter,
            dtype=str,
            keep_default_na=False,
            na_filter=False,
            skip_blank_lines=True,
            chunksize=CSV_CHUNK_ROWS,
        ):
            if len(chunk.columns) > limits.columns:
                raise limits.too_many_columns(filename, len(chunk.columns))
            for position, cells in chunk.items():
                longest = cells.str.len().max()
                if longest > limits.cell_chars:
                    name = header_fields[position] if position < len(header_fields) else ""
                    raise limits.too_long_cell(filename, str(name).strip(), int(longest))
            chunks.append(chunk)
        raw = pd.concat(chunks) if chunks else pd.DataFrame()
    except pd.errors.EmptyDataError as exc:
        raise DatasetError(f"file {filename!r} has no CSV content: {_trim(exc)}") from exc
    except (pd.errors.ParserError, ValueError) as exc:
        raise DatasetError(f"file {filename!r} is not valid CSV: {_trim(exc)}") from exc
    if raw.empty:
        raise DatasetError(f"file {filename!r} is empty")
    header = ["" if pd.isna(v) else v for v in raw.iloc[0].tolist()]
    names = _clean_names(filename, header)
    body = raw.iloc[1:].reset_index(drop=True)
    cells = {name: _stripped(body[col]) for name, col in zip(names, body.columns, strict=True)}
    reading.decimal = options.decimal or detect_decimal(
        (present for present, _ in cells.values()), delimiter)
    day_first = reading.decimal == "," or delimiter == ";"
    return pd.DataFrame({
        name: _infer_text_column(name, body[col], *cells[name], reading, options.date_format,
                                 day_first)
        for name, col in zip(names, body.columns, strict=True)
    }), reading


def _stripped(cells: pd.Series) -> tuple[pd.Series, np.ndarray]:
    """A column's present cells, stripped, and where its missing ones are."""
    raw = cells.astype(object)
    stripped = raw.where(raw.notna(), "").astype(str).str.strip()
    missing = stripped.isin(NA_TOKENS).to_numpy(dtype=bool)
    return stripped[~missing].astype("str"), missing


def _infer_text_column(
    name: str, cells: pd.Series, present: pd.Series, missing: np.ndarray, reading: Reading,
    date_format: str | None, day_first: bool,
) -> pd.Series:
    """Type one column of CSV text: integer, float, boolean, timestamp, else text (with a
    warning when a few stray values are all that kept it from being numbers or dates)."""
    raw = cells.astype(object)
    n = len(raw)
    if len(present) == 0:
        return pd.Series(np.full(n, np.nan), dtype="float64")
    if present.str.fullmatch(_INT_RE.pattern).all():
        parsed = pd.to_numeric(present, errors="coerce")
        if pd.api.types.is_integer_dtype(parsed.dtype):
            if not missing.any():
                return pd.Series(parsed.to_numpy(), dtype=parsed.dtype)
            if parsed.dtype == np.int64:
                out = pd.array(np.zeros(n, dtype=np.int64), dtype="Int64")
                out[~missing] = parsed.to_numpy()
                out[missing] = pd.NA
                return pd.Series(out)
        # beyond int64 (or mixed with nulls beyond it): fall through to float
    floats = numbers(present, reading.decimal)
    if floats.notna().all():
        out_f = np.full(n, np.nan)
        out_f[~missing] = floats.to_numpy(dtype="float64")
        return pd.Series(out_f, dtype="float64")
    lowered = present.str.lower()
    if lowered.isin(BOOL_WORDS).all():
        flags = (lowered == "true").to_numpy(dtype=bool)
        if not missing.any():
            return pd.Series(flags, dtype=bool)
        out_b = pd.array(np.zeros(n, dtype=bool), dtype="boolean")
        out_b[~missing] = flags
        out_b[missing] = pd.NA
        return pd.Series(out_b)
    dates = parse_dates(present.reset_index(drop=True), date_format, day_first)
    if dates is not None:
        stamps = dates.values
        full = pd.Series(pd.NaT, index=range(n), dtype=stamps.dtype)
        full[~missing] = stamps.to_numpy()
        reading.date_formats[name] = dates.format
        if dates.ambiguous:
            reading.warnings.append(ambiguous_dates_warning(name, dates, str(present.iloc[0])))
        return full
    odd = strays(present, floats.notna().to_numpy(dtype=bool))
    if odd is not None:
        count = int(floats.isna().sum())
        suggested = "integer" if present[floats.notna()].str.fullmatch(
            _INT_RE.pattern).all() else "float"
        reading.warnings.append(stray_warning(name, odd, count, len(present), suggested))
    elif len(present) >= 10 and present.str.contains(r"\d", regex=True).mean() > 0.9:
        looks_dated = pd.to_datetime(present, format="ISO8601", errors="coerce").notna()
        odd = strays(present, looks_dated.to_numpy(dtype=bool))
        if odd is not None:
            reading.warnings.append(stray_warning(name, odd, int((~looks_dated).sum()),
                                                  len(present), "timestamp"))
    text = raw.reset_index(drop=True)
    text[missing] = None
    return text.astype("str")


# ------------------------------------------------------------------------------ Parquet


def _read_parquet(filename: str, content: bytes, limits: TableLimits) -> pd.DataFrame:
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
        raise DatasetError(f"file {filename!r} is not readable Parquet: {_trim(exc)}") from exc
    names = _clean_names(filename, list(df.columns))
    return pd.DataFrame(
        {name: _numpy_when_complete(df.iloc[:, i]) for i, name in enumerate(names)}
    )


def _bounded_parquet(filename: str, content: bytes, limits: TableLimits) -> pa.Table:
    """The file's table, read batch by batch with text columns kept dictionary-encoded, so
    the decoded size (and the longest cell) is known from the dictionaries' lengths before
    anything is expanded. Decompression is bounded first by the sizes the file declares,
    which Arrow holds each page to."""
    meta = pq.ParquetFile(pa.BufferReader(content)).metadata
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
    schema = pq.ParquetFile(pa.BufferReader(content)).schema_arrow
    text = [f.name for f in schema if _is_text(f.type)]
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
    if _is_text(column.type):
        return column.nbytes, int(pc.max(pc.binary_length(column)).as_py() or 0)
    return column.nbytes, 0


def _is_text(t: pa.DataType) -> bool:
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


# -------------------------------------------------------------------------------- store


@dataclass(frozen=True)
class ColumnSummary:
    """A stored column's values in brief: what submit-time checks of a label need."""

    n_rows: int
    n_present: int
    minimum: Any
    maximum: Any
    n_distinct: int | None = None
    """Distinct present values (None in statistics stored before it was kept)."""
    levels: list[str] | None = None
    """A text column's distinct values, sorted, when it has at most `MAX_KNOWN_LEVELS` (None
    for other columns, more levels, or statistics stored before they were kept)."""

    @property
    def constant(self) -> bool:
        """Every present value is the same (nothing to learn from it as a label)."""
        return self.n_present > 0 and self.minimum == self.maximum

    @classmethod
    def of(cls, values: pa.Array | pa.ChunkedArray) -> ColumnSummary:
        """The summary of one column; bounds as JSON values (times as ISO text), so a
        summary read back from the catalog equals one computed from the file."""
        present = len(values) - values.null_count
        bounds = pc.min_max(values) if present else None
        n_distinct = pc.count_distinct(values).as_py() if present else 0
        levels = None
        if _is_text(values.type) and n_distinct <= MAX_KNOWN_LEVELS:
            levels = sorted(str(v) for v in pc.unique(values).to_pylist() if v is not None)
        return cls(
            n_rows=len(values),
            n_present=present,
            minimum=_json_value(bounds["min"].as_py()) if bounds else None,
            maximum=_json_value(bounds["max"].as_py()) if bounds else None,
            n_distinct=n_distinct,
            levels=levels,
        )


class DatasetStore:
    """Immutable datasets: the Parquet file in the artifact store, the `DatasetInfo` in
    the metadata store's catalog. A dataset exists once its catalog row commits, and the
    row is written after the file, so nobody ever reads half a dataset."""

    def __init__(self, engine: Engine, artifacts: ArtifactStore) -> None:
        self._engine, self.artifacts = engine, artifacts

    @staticmethod
    def key(dataset_id: str | uuid.UUID) -> str:
        """The dataset's Parquet object."""
        return f"datasets/{catalog_id(dataset_id)}/data.parquet"

    def add(
        self,
        df: pd.DataFrame,
        name: str,
        tenant: str = DEFAULT_TENANT,
        dialect: Dialect | None = None,
        warnings: list[DataWarning] | None = None,
    ) -> DatasetInfo:
        """Store `df` and return its description (with how its file was read, and what
        the reading assumed)."""
        dataset_id = uuid.uuid4()
        info = DatasetInfo(
            dataset_id=dataset_id,
            name=name,
            n_rows=len(df),
            columns=_columns(df),
            created_at=datetime.now(UTC),
            tenant=tenant,
            dialect=dialect,
            warnings=warnings or [],
        )
        data, stats = _encoded(df)
        self.artifacts.put(self.key(dataset_id), data)
        with writing(self._engine) as db:
            db.execute(insert(catalog).values(
                dataset_id=str(dataset_id), tenant=tenant,
                created_at=info.created_at.isoformat(), info=info.model_dump_json(),
                stats=json.dumps(stats), bytes=len(data),
            ))
        return info

    def retype(
        self, dataset_id: str | uuid.UUID, tenant: str, patch: DatasetPatch
    ) -> DatasetInfo:
        """Change the types of some columns in place (KeyError: no such dataset; a
        `DatasetError` when a value does not convert and `patch.errors` is "raise", and
        then nothing changes). The new Parquet replaces the old one whole (the artifact
        store writes atomically), then the catalog row changes in one UPDATE."""
        info = self.get(dataset_id, tenant)
        df = self.load(dataset_id)
        df, warnings = retype_frame(df, dict(patch.dtypes), patch.errors, info.dialect,
                                    patch.date_format, info.warnings)
        info = info.model_copy(update={"columns": _columns(df), "warnings": warnings})
        if info.dialect is not None and patch.date_format is not None:
            formats = {**info.dialect.date_formats, **{
                c: patch.date_format for c, t in patch.dtypes.items() if t == "timestamp"}}
            info.dialect = info.dialect.model_copy(update={"date_formats": formats})
        data, stats = _encoded(df)
        self.artifacts.put(self.key(dataset_id), data)
        with writing(self._engine) as db:
            db.execute(update(catalog).where(catalog.c.dataset_id == catalog_id(dataset_id))
                       .values(info=info.model_dump_json(), stats=json.dumps(stats),
                               bytes=len(data)))
        return info

    def get(self, dataset_id: str | uuid.UUID, tenant: str | None = None) -> DatasetInfo:
        """The dataset's description; KeyError when there is no such dataset (for `tenant`)."""
        info = catalog_entry(self._engine, catalog.c.info, dataset_id, tenant)
        if info is None:
            raise KeyError(f"unknown dataset {dataset_id}")
        return DatasetInfo.model_validate_json(info)

    def list(self, tenant: str | None = None) -> list[DatasetInfo]:
        """Every dataset (of `tenant`), newest first."""
        return [DatasetInfo.model_validate_json(info)
                for info in catalog_entries(self._engine, catalog.c.info, tenant)]

    def column_summary(self, dataset_id: str | uuid.UUID, column: str) -> ColumnSummary:
        """Counts and range of one column (see `column_summaries`)."""
        return self.column_summaries(dataset_id, [column])[column]

    def column_summaries(
        self, dataset_id: str | uuid.UUID, columns: list[str]
    ) -> dict[str, ColumnSummary]:
        """Counts, range and distinct values of these columns: from the catalog, where the
        upload put them. Columns it has none for (a dataset imported from release 0.1, or
        stored before distinct counts were kept) are read from the file once, and their
        statistics stored, so the next submit reads the catalog only."""
        stats = catalog_entry(self._engine, catalog.c.stats, dataset_id, None)
        known = json.loads(stats) if stats is not None else {}
        missing = [c for c in columns
                   if "n_distinct" not in known.get(c, {}) or "levels" not in known[c]]
        if missing:
            with self.artifacts.reader(self.key(dataset_id)) as source:
                table = pq.read_table(source, columns=missing)
            known |= {c: asdict(ColumnSummary.of(table.column(c))) for c in missing}
            with writing(self._engine) as db:
                db.execute(update(catalog).where(catalog.c.dataset_id == catalog_id(dataset_id))
                           .values(stats=json.dumps(known)))
        return {c: ColumnSummary(**known[c]) for c in columns}

    def load(self, dataset_id: str | uuid.UUID) -> pd.DataFrame:
        """The stored table with the dtypes it had when added (Int64, boolean, str, tz)."""
        self.get(dataset_id)  # only a catalogued dataset: an object alone is not one
        with self.artifacts.reader(self.key(dataset_id)) as source:
            return pq.read_table(source).to_pandas()


def _columns(df: pd.DataFrame) -> list[Column]:
    return [Column(name=str(c), dtype=infer_dtype(df[c])) for c in df.columns]


def _encoded(df: pd.DataFrame) -> tuple[bytes, dict[str, Any]]:
    """The table as Parquet bytes, and each column's statistics (computed once here, so a
    submit's checks read the catalog, not the file)."""
    table = pa.Table.from_pandas(df, preserve_index=False)
    stats = {name: asdict(ColumnSummary.of(table.column(name))) for name in table.column_names}
    buffer = io.BytesIO()
    pq.write_table(table, buffer)
    return buffer.getvalue(), stats


def _json_value(value: Any) -> Any:
    return value.isoformat() if isinstance(value, datetime | date | time) else value

