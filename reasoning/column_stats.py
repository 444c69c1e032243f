"""A stored column's values in brief (counts, bounds, distinct values, a text column's
levels): what submit-time checks need to know about a dataset without reading it.

Computed once when a dataset is stored, and kept as JSON in its catalog row.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime, time
from typing import Any

import pyarrow as pa
import pyarrow.compute as pc

from reasoning.parquet_reader import is_text

MAX_KNOWN_LEVELS = 1_000
"""Levels of a text column kept in its statistics, for submit-time filter checks (a column
with more is an identifier or free text: its filter values are not checked)."""


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
        if is_text(values.type) and n_distinct <= MAX_KNOWN_LEVELS:
            levels = sorted(str(v) for v in pc.unique(values).to_pylist() if v is not None)
        return cls(
            n_rows=len(values),
            n_present=present,
            minimum=_json_value(bounds["min"].as_py()) if bounds else None,
            maximum=_json_value(bounds["max"].as_py()) if bounds else None,
            n_distinct=n_distinct,
            levels=levels,
        )


def _json_value(value: Any) -> Any:
    # Not pydantic's to_jsonable_python: it writes UTC as "Z" where isoformat writes
    # "+00:00", and the bounds already in catalogs were written by isoformat.
    return value.isoformat() if isinstance(value, datetime | date | time) else value

