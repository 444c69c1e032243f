"""What every upload is held to, whatever its format: the errors that say why it cannot be
read, the `TableLimits` checked while it is read, and the rules for its column names.

Uploads come from users, so every way a file can be unreadable is a `DatasetError` whose
message says what is wrong (quoting the parser) instead of a 500.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import pandas as pd

MAX_DETAIL = 300


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


def trim(text: object, limit: int = MAX_DETAIL) -> str:
    """One line of at most `limit` characters, so parser complaints stay readable."""
    # Not textwrap.shorten: it cuts at word boundaries, so a parser message that is one
    # long token (a path, a run of bytes) would shrink to the placeholder alone.
    one_line = " ".join(str(text).split())
    return one_line if len(one_line) <= limit else one_line[: limit - 3] + "..."


def clean_names(filename: str, names: list[Any]) -> list[str]:
    """Strip surrounding whitespace; blank and duplicate names are errors, not renames."""
    cleaned = [str(n).strip() for n in names]
    blank = [i + 1 for i, n in enumerate(cleaned) if not n]
    if blank:
        raise DatasetError(
            f"file {filename!r} has blank column names (column {', '.join(map(str, blank))})"
        )
    index = pd.Index(cleaned, dtype=object)
    dupes = index[index.duplicated()].unique()  # in the order of their second occurrence
    if len(dupes):
        raise DatasetError(
            f"file {filename!r} has duplicate column names: {trim(', '.join(map(repr, dupes)))}"
        )
    return cleaned
