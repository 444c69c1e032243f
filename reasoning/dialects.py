"""How a CSV file was written, and what its text cells mean, said out loud.

Spreadsheets export CSV in local dialects: `;` between fields and `3,14` for a number in
much of Europe, tabs in `.tsv`, `31/12/2023` or `12/31/2023` for a date. This module finds
the dialect from the data (`csv.Sniffer` for the delimiter, counts of number shapes for
the decimal mark, `charset_normalizer` for a file that is not UTF-8), types text cells with
it, and records every guess that could be wrong as a `DataWarning`, so an upload says what
it assumed instead of silently training on a misread table. Explicit `CsvOptions` (the
upload form's fields) override every guess.
"""

from __future__ import annotations

import codecs
import csv
import re
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd

from reasoning import booleans
from reasoning.dtypes import NUMERIC_DTYPES
from reasoning.schemas import DataWarning, Dtype

DELIMITERS = ",;\t|"
"""The field separators detected; another one must be named (`delimiter`)."""
DELIMITER_NAMES = {",": "comma", ";": "semicolon", "\t": "tab", "|": "pipe"}
SNIFF_CHARS = 64 * 1024
"""Text the delimiter is guessed from (whole lines of it)."""
STRAY_SHARE = 0.1
"""At most this share of a column's present values may be strays for it to look numeric
(or like dates) with a few odd values, rather than text."""
MAX_STRAY_VALUES = 10
"""Distinct odd values a column may have for a stray-values warning (more: it is text)."""
MIN_VALUES_FOR_STRAYS = 10
"""Present values a column needs before a few odd ones are told apart from a text column."""
SHOWN_VALUES = 5
"""Example values a warning quotes."""

_INT = re.compile(r"[+-]?\d+")
_COMMA_NUMBER = re.compile(r"[+-]?(\d{1,3}(\.\d{3})+|\d+)(,\d+)?([eE][+-]?\d+)?")
_COMMA_DECIMAL = re.compile(r"[+-]?(\d{1,3}(\.\d{3})+|\d+),\d+")
_POINT_DECIMAL = re.compile(r"[+-]?\d+\.(\d{1,2}|\d{4,})")
"""A number with a decimal point that cannot be a thousands group (`1.5`, `3.1416`)."""
_DATE = re.compile(
    r"(?P<a>\d{1,2})(?P<sep>[/.-])(?P<b>\d{1,2})(?P=sep)(?P<year>\d{4})"
    r"(?P<time>[ T]\d{1,2}:\d{2}(:\d{2})?)?"
)
_YEAR_FIRST = re.compile(
    r"\d{4}(?P<sep>[/.])\d{1,2}(?P=sep)\d{1,2}(?P<time>[ T]\d{1,2}:\d{2}(:\d{2})?)?")
LIKELY_ENCODINGS = ["cp1252", "cp1250", "cp1251", "cp1253", "cp1254", "iso8859_15",
                    "mac_roman", "koi8_r", "shift_jis", "euc_jp", "gb18030", "big5", "euc_kr"]
"""What spreadsheets and older systems export when not UTF-8: the candidates of a guess."""


class DialectError(ValueError):
    """The options or the file's dialect make no sense; the message is for the user."""


@dataclass(frozen=True)
class CsvOptions:
    """What the uploader says about the file; None: detect it from the data."""

    delimiter: str | None = None
    decimal: str | None = None
    date_format: str | None = None
    encoding: str | None = None

    def __post_init__(self) -> None:
        if self.delimiter is not None and (len(self.delimiter) != 1
                                           or self.delimiter in "\"\r\n0123456789"):
            raise DialectError(f"delimiter must be one character other than a quote, digit "
                               f"or line break, e.g. ';' or a tab; got {self.delimiter!r}")
        if self.decimal is not None and self.decimal not in (".", ","):
            raise DialectError(f"decimal must be '.' or ','; got {self.decimal!r}")
        if self.decimal is not None and self.decimal == self.delimiter:
            raise DialectError("decimal and delimiter cannot be the same character")
        if self.date_format is not None and "%" not in self.date_format:
            raise DialectError(f"date_format is a strftime pattern such as '%d/%m/%Y'; got "
                               f"{self.date_format!r}")
        if self.encoding is not None:
            try:
                codecs.lookup(self.encoding)
            except LookupError:
                raise DialectError(f"unknown encoding {self.encoding!r}; e.g. 'utf-8', "
                                   "'cp1252', 'latin-1'") from None


@dataclass
class Reading:
    """The dialect a CSV file was read in, and what was said about it on the way."""

    delimiter: str = ","
    decimal: str = "."
    encoding: str = "utf-8"
    guessed_encoding: bool = False
    date_formats: dict[str, str] = field(default_factory=dict)
    warnings: list[DataWarning] = field(default_factory=list)


# -------------------------------------------------------------------------------- text


def decode(content: bytes, given: str | None) -> tuple[str, str]:
    """The file's text and the encoding it was read in: `given`, else UTF-8 (a BOM
    allowed), else charset_normalizer's best guess (a Windows export in cp1252, say)."""
    if given is not None:
        try:
            return content.decode(given), given
        except UnicodeDecodeError as exc:
            raise DialectError(f"the file is not {given} text: {exc}") from None
    try:
        return content.decode("utf-8-sig"), "utf-8"
    except UnicodeDecodeError as exc:
        from charset_normalizer import from_bytes

        best = from_bytes(content[: 1 << 20], cp_isolation=LIKELY_ENCODINGS).best()
        if best is None or best.encoding in ("utf_8", "ascii"):
            raise DialectError(f"the file is not UTF-8 text ({exc}) and its encoding could "
                               "not be told; name it with the `encoding` field") from None
        try:
            return content.decode(best.encoding), best.encoding
        except UnicodeDecodeError:
            raise DialectError(f"the file is not UTF-8 text ({exc}); name its encoding with "
                               "the `encoding` field") from None


def sniff_delimiter(text: str, default: str = ",") -> str:
    """The field separator of the text's first lines (one of `DELIMITERS`), by csv.Sniffer;
    `default` for a file of one column."""
    sample = text[:SNIFF_CHARS]
    if len(text) > SNIFF_CHARS and "\n" in sample:
        sample = sample[: sample.rindex("\n")]
    try:
        found = csv.Sniffer().sniff(sample, delimiters=DELIMITERS).delimiter
    except csv.Error:
        found = None
    if found is not None and found in DELIMITERS and _consistent(sample, found):
        return found
    # The Sniffer gives up on short or irregular samples: take the candidate that splits
    # every line into the same number (more than one) of fields, the most first.
    best, best_fields = default, 1
    for candidate in DELIMITERS:
        fields = _consistent(sample, candidate)
        if fields > best_fields:
            best, best_fields = candidate, fields
    return best


def _consistent(sample: str, delimiter: str) -> int:
    """Fields per line when every non-blank line of the sample has as many (over 1), else 0."""
    try:
        counts = {len(row) for row in csv.reader(sample.splitlines()[:50], delimiter=delimiter)
                  if row}
    except csv.Error:
        return 0
    return counts.pop() if len(counts) == 1 and next(iter(counts)) > 1 else 0


def detect_decimal(cells: Iterable[pd.Series], delimiter: str) -> str:
    """`,` when numbers written with a decimal comma outnumber those with a decimal point
    (only possible unquoted when fields are not separated by commas), else `.`."""
    if delimiter == ",":
        return "."
    comma = point = 0
    for column in cells:
        values = column[column != ""].head(1000)
        comma += int(values.str.fullmatch(_COMMA_DECIMAL.pattern).sum())
        point += int(values.str.fullmatch(_POINT_DECIMAL.pattern).sum())
    return "," if comma > point else "."


# ------------------------------------------------------------------------------ typing


def numbers(text: pd.Series, decimal: str) -> pd.Series:
    """The cells as float64 (NaN where a cell is not a number in this decimal mark)."""
    if decimal == ",":
        ok = text.str.fullmatch(_COMMA_NUMBER.pattern).fillna(False).astype(bool)
        text = text.where(ok, "x").str.replace(".", "", regex=False).str.replace(
            ",", ".", regex=False)
    return pd.to_numeric(text, errors="coerce").astype("float64")


@dataclass
class Dates:
    """A column's dates, the format they were read with, and whether its day/month order
    was a guess."""

    values: pd.Series
    format: str
    ambiguous: bool = False


def parse_dates(present: pd.Series, date_format: str | None, day_first_default: bool,
                ) -> Dates | None:
    """The present cells as timestamps when every one is a date in one format; else None.

    ISO 8601 first; then `31/12/2023`-like dates (`/`, `.` or `-` between, four-digit
    years, an optional time) whose day/month order is read from the data: a first number
    over 12 means day first, a second one over 12 month first. When no value tells,
    `day_first_default` decides and the result says it was a guess.
    """
    if len(present) == 0 or not present.str.contains(r"\d", regex=True).all():
        return None
    if date_format is not None:
        parsed = pd.to_datetime(present, format=date_format, errors="coerce")
        return Dates(parsed, date_format) if parsed.notna().all() else None
    for utc in (False, True):
        try:
            parsed = pd.to_datetime(present, format="ISO8601", utc=utc)
        except (ValueError, TypeError, OverflowError):
            continue
        if pd.api.types.is_datetime64_any_dtype(parsed.dtype) and parsed.notna().all():
            return Dates(parsed, "ISO 8601")
    year_first = present.str.fullmatch(_YEAR_FIRST.pattern)
    if year_first.all():
        sep = present.iloc[0][4]
        return _with_format(present, f"%Y{sep}%m{sep}%d")
    parts = present.str.extract(_DATE.pattern)
    if parts["a"].isna().any():
        return None
    seps = parts["sep"].unique()
    if len(seps) != 1:
        return None
    a, b = parts["a"].astype(int), parts["b"].astype(int)
    if (a > 12).any() and (b > 12).any():
        return None
    ambiguous = not (a > 12).any() and not (b > 12).any()
    day_first = bool((a > 12).any()) or (ambiguous and day_first_default)
    sep = seps[0]
    fmt = f"%d{sep}%m{sep}%Y" if day_first else f"%m{sep}%d{sep}%Y"
    dates = _with_format(present, fmt)
    if dates is not None:
        dates.ambiguous = ambiguous
    return dates


def _with_format(present: pd.Series, date_format: str) -> Dates | None:
    """Parse with a date format, with the time of day the cells carry (if any)."""
    for suffix in ("", " %H:%M", " %H:%M:%S", "T%H:%M", "T%H:%M:%S"):
        parsed = pd.to_datetime(present, format=date_format + suffix, errors="coerce")
        if parsed.notna().all():
            return Dates(parsed, date_format + suffix)
    parsed = pd.to_datetime(present, format="mixed", dayfirst=date_format.startswith("%d"),
                            errors="coerce")
    return Dates(parsed, date_format + " (with times)") if parsed.notna().all() else None


def strays(present: pd.Series, parsed_ok: np.ndarray) -> list[str] | None:
    """The odd values of a column that is mostly of one type (numbers, dates), or None
    when it is not: too few values, too many odd ones, or none at all."""
    bad = present[~parsed_ok]
    if len(present) < MIN_VALUES_FOR_STRAYS or len(bad) == 0:
        return None
    distinct = bad.unique()
    if len(bad) > STRAY_SHARE * len(present) or len(distinct) > MAX_STRAY_VALUES:
        return None
    return [str(v) for v in distinct]


def stray_warning(column: str, values: list[str], count: int, n_present: int,
                  suggested: Dtype) -> DataWarning:
    """What an upload says about a column typed as text because of a few odd values."""
    shown = ", ".join(repr(v) for v in values[:SHOWN_VALUES])
    more = f" and {len(values) - SHOWN_VALUES} more" if len(values) > SHOWN_VALUES else ""
    return DataWarning(
        column=column, kind="stray_values", chosen="categorical", suggested=suggested,
        values=values[:SHOWN_VALUES],
        message=(f"column {column!r} looks {suggested} but {count:,} of its {n_present:,} "
                 f"values are not ({shown}{more}), so it was typed categorical; to use it as "
                 f"{suggested} (those values becoming null), retype it: PATCH "
                 f"/v1/datasets/{{id}} with {{\"dtypes\": {{\"{column}\": \"{suggested}\"}}, "
                 "\"errors\": \"coerce\"}, or the upload's `dtypes` field"),
    )


def encoding_warning(encoding: str, example: str) -> DataWarning:
    """What an upload says when its text was not UTF-8 and the encoding was guessed."""
    return DataWarning(
        kind="guessed_encoding", values=[example] if example else [],
        message=(f"the file is not UTF-8; its encoding was guessed as {encoding} from the "
                 "bytes; if letters look wrong, upload again naming it with the `encoding` "
                 "field (e.g. 'cp1252' for Windows in Western Europe, 'cp1251' for Cyrillic)"),
    )


def ambiguous_dates_warning(column: str, dates: Dates, example: str) -> DataWarning:
    """What an upload says about dates whose day/month order no value told."""
    other = (dates.format.replace("%d", "%X").replace("%m", "%d").replace("%X", "%m"))
    order = "day first" if dates.format.startswith("%d") else "month first"
    return DataWarning(
        column=column, kind="ambiguous_dates", chosen="timestamp", values=[example],
        message=(f"column {column!r}: no date tells whether day or month comes first (e.g. "
                 f"{example!r}); they were read {order} ({dates.format}); if that is wrong, "
                 f"upload again with date_format={other!r}"),
    )


# ----------------------------------------------------------------------------- retyping


@dataclass
class Retyped:
    """A column converted to another dtype, and the values that did not convert."""

    values: pd.Series
    failed: list[str]
    n_failed: int


def retype(series: pd.Series, dtype: Dtype, decimal: str = ".",
           date_format: str | None = None, day_first: bool = False) -> Retyped:
    """`series` as `dtype` (the service's vocabulary); values that do not convert become
    null and are listed (at most `SHOWN_VALUES`, with their count)."""
    present_mask = series.notna().to_numpy(dtype=bool)
    text = series.astype(object).map(_as_text).astype("str")
    text = text.where(present_mask, "").str.strip()
    present = text[present_mask]
    out: pd.Series
    if dtype in NUMERIC_DTYPES:
        values = numbers(present, decimal) if not pd.api.types.is_numeric_dtype(series.dtype) \
            else pd.to_numeric(series[present_mask], errors="coerce").astype("float64")
        ok = values.notna().to_numpy(dtype=bool)
        if dtype == "integer":
            whole = values.where(values == np.round(values))
            ok &= whole.notna().to_numpy(dtype=bool)
            full = pd.array([pd.NA] * len(series), dtype="Int64")
            full[present_mask] = pd.array(whole.where(ok).round(), dtype="Int64")
            out = pd.Series(full)
            if not out.isna().any():
                out = out.astype("int64")
        else:
            full_f = np.full(len(series), np.nan)
            full_f[present_mask] = values.to_numpy()
            out = pd.Series(full_f)
    elif dtype == "boolean":
        lowered = present.str.lower().map(booleans.TEXT)
        ok = lowered.notna().to_numpy(dtype=bool)
        full_b = pd.array([pd.NA] * len(series), dtype="boolean")
        full_b[present_mask] = pd.array(lowered.where(ok), dtype="boolean")
        out = pd.Series(full_b)
        if not out.isna().any():
            out = out.astype(bool)
    elif dtype == "timestamp":
        if pd.api.types.is_datetime64_any_dtype(series.dtype):
            return Retyped(series.reset_index(drop=True), [], 0)
        if date_format is not None:
            parsed = pd.to_datetime(present, format=date_format, errors="coerce")
        else:
            parsed = pd.to_datetime(present, format="ISO8601", errors="coerce")
            retry = parsed.isna()
            if retry.any():
                parsed[retry] = pd.to_datetime(present[retry], format="mixed",
                                               dayfirst=day_first, errors="coerce")
        ok = parsed.notna().to_numpy(dtype=bool)
        full_t = pd.Series(pd.NaT, index=range(len(series)), dtype="datetime64[ns]")
        full_t[present_mask] = parsed.to_numpy(dtype="datetime64[ns]")
        out = full_t
    else:
        ok = np.ones(len(present), dtype=bool)
        full_s = pd.Series([None] * len(series), dtype=object)
        full_s[present_mask] = present.to_numpy()
        out = full_s.astype("str")
    bad = present[~ok]
    return Retyped(out.reset_index(drop=True), [str(v) for v in bad.unique()[:SHOWN_VALUES]],
                   int(len(bad)))


def _as_text(value: Any) -> Any:
    """A stored value as the text it was (a whole float without its `.0`)."""
    if value is None or value is pd.NA or (isinstance(value, float) and np.isnan(value)):
        return None
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    if isinstance(value, pd.Timestamp):
        return value.isoformat()
    if isinstance(value, bool | np.bool_):
        return booleans.as_text(value)
    return str(value)
