"""Reading an uploaded CSV/TSV/TXT file in its dialect (detected, or named by the upload's
`CsvOptions`) into a typed table.

Every cell is read as text first, then each column is typed by what its values are:
integer, float, boolean, timestamp, else text; `reasoning.dialects` says how the file was
written (delimiter, decimal mark, encoding, date formats) and what was assumed.
"""

from __future__ import annotations

import csv
import io
import re

import numpy as np
import pandas as pd

from reasoning import booleans
from reasoning.dialects import (
    CsvOptions,
    DialectError,
    Reading,
    ambiguous_dates_warning,
    decode,
    detect_decimal,
    encoding_warning,
    numbers,
    parse_dates,
    sniff_delimiter,
    stray_warning,
    strays,
)
from reasoning.schemas import Dtype
from reasoning.upload_checks import DatasetError, TableLimits, clean_names, trim

CSV_CHUNK_ROWS = 50_000

# Text that means "missing" in a CSV cell: pandas' defaults, written out because pandas
# keeps that set private (`pandas._libs.parsers.STR_NA_VALUES`), and this one is ours to keep.
NA_TOKENS = frozenset(
    {"", "#N/A", "#N/A N/A", "#NA", "-1.#IND", "-1.#QNAN", "-NaN", "-nan", "1.#IND",
     "1.#QNAN", "<NA>", "N/A", "NA", "NULL", "NaN", "None", "n/a", "nan", "null"}
)
_INT_RE = re.compile(r"[+-]?\d+")


def read_csv(
    filename: str, content: bytes, limits: TableLimits, options: CsvOptions, tab: bool
) -> tuple[pd.DataFrame, Reading]:
    """The file's table, every column typed, and how it was read (`options` override every
    guess; `tab`: a .tsv, read with tabs when the text shows no delimiter of its own)."""
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
        raise DatasetError(f"file {filename!r} has no CSV content: {trim(exc)}") from exc
    except (pd.errors.ParserError, ValueError) as exc:
        raise DatasetError(f"file {filename!r} is not valid CSV: {trim(exc)}") from exc
    if raw.empty:
        raise DatasetError(f"file {filename!r} is empty")
    header = ["" if pd.isna(v) else v for v in raw.iloc[0].tolist()]
    names = clean_names(filename, header)
    body = raw.iloc[1:].reset_index(drop=True)
    cells = {name: _stripped(body[col]) for name, col in zip(names, body.columns, strict=True)}
    reading.decimal = options.decimal or detect_decimal(
        (present for present, _ in cells.values()), delimiter)
    day_first = reading.decimal == "," or delimiter == ";"
    typed = {}
    for name, col in zip(names, body.columns, strict=True):
        present, missing = cells[name]
        typed[name] = _infer_text_column(name, body[col], present, missing, reading,
                                         options.date_format, day_first)
    return pd.DataFrame(typed), reading


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
    if lowered.isin(booleans.WORDS).all():
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
        suggested: Dtype = "integer" if present[floats.notna()].str.fullmatch(
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
