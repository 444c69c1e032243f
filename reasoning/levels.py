"""Categories as people type them: a level spelt with another case, or not quite.

A filter value or a scored value that is not one of a column's known levels matches
nothing (a filter keeps no row; a model scores it as its "unseen" case), so the service
says so and names the level that was probably meant.
"""

from __future__ import annotations

import difflib
from collections.abc import Sequence
from typing import Any

import numpy as np
import pandas as pd

from reasoning.encoding import MISSING_LEVEL, category_keys
from reasoning.schemas import ScoringWarning

MAX_LISTED_LEVELS = 10
"""Levels a message lists when it has no near match to offer."""


def near_level(value: str, levels: Sequence[str]) -> str | None:
    """The known level `value` was probably meant to be: the same but for case and
    surrounding space, else the closest spelling (difflib), else None."""
    folded = value.strip().casefold()
    for level in levels:
        if level.strip().casefold() == folded:
            return level
    close = difflib.get_close_matches(value, list(levels), n=1, cutoff=0.75)
    if close:
        return close[0]
    by_case = {level.casefold(): level for level in levels}
    close = difflib.get_close_matches(folded, list(by_case), n=1, cutoff=0.75)
    return by_case[close[0]] if close else None


def unknown_level(value: Any, column: str, levels: Sequence[str]) -> str:
    """Why a filter value matches no row of a categorical column, and what would."""
    hint = near_level(str(value), levels)
    if hint is not None:
        return (f"{value!r} is not a level of categorical column {column!r}; did you mean "
                f"{hint!r}? (levels are matched exactly, case included)")
    listed = ", ".join(repr(level) for level in levels[:MAX_LISTED_LEVELS])
    more = f" and {len(levels) - MAX_LISTED_LEVELS:,} more" if len(levels) > MAX_LISTED_LEVELS \
        else ""
    return (f"{value!r} is not a level of categorical column {column!r}, so it matches no row;"
            f" its levels: {listed}{more}")


def scoring_warnings(
    frame: pd.DataFrame, levels: dict[str, list[str]]
) -> list[ScoringWarning]:
    """Per row, each categorical value the model has no level for (scored as its unseen
    case: no level's contribution), with the near level; and each row that is all null."""
    out: list[ScoringWarning] = []
    if frame.shape[1]:
        empty = np.flatnonzero(frame.isna().all(axis=1).to_numpy(dtype=bool))
        out += [ScoringWarning(
            row=int(i), column=None, value=None, kind="all_null",
            message=f"row {int(i)} has no values: every column is null, so it was scored as "
                    "the model's typical row (each column at its missing-value case)")
            for i in empty]
    for column, known in levels.items():
        known_set = set(known)
        keys = category_keys(frame[column].reset_index(drop=True))
        for i in np.flatnonzero([k != MISSING_LEVEL and k not in known_set for k in keys]):
            value = frame[column].iloc[i]
            hint = near_level(str(value), [k for k in known if k != MISSING_LEVEL])
            said = f"; did you mean {hint!r}?" if hint is not None else ""
            out.append(ScoringWarning(
                row=int(i), column=column, value=value, kind="unseen_level",
                did_you_mean=hint,
                message=f"row {int(i)}, column {column!r}: {value!r} is a level the model "
                        f"never saw, scored as its unseen case{said}"))
    return sorted(out, key=lambda w: (w.row, w.column or ""))


def model_levels(model: Any) -> dict[str, list[str]]:
    """The levels a fitted ReasoningModel has a contribution for, per categorical input."""
    return {f.name: model.encoder_.levels(f.name) for f in model.features_
            if f.dtype == "categorical"}
