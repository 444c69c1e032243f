"""What counts as a boolean, decided once for uploads, filters, predict rows and the encoder.

True and false are JSON's booleans, the words `true`/`false` (any case, spaces around
ignored), and 1/0 as numbers or as text ("1", "0", "1.0", "0.0"); anything else is not
a boolean. Typing a CSV column is stricter: only the words make a column boolean (a column
of 0s and 1s is more likely a count than a flag, so it stays integer).
"""

from __future__ import annotations

from typing import Any

import numpy as np

WORDS: dict[str, bool] = {"true": True, "false": False}
"""The text that makes an uploaded column boolean."""

TEXT: dict[str, bool] = WORDS | {"1": True, "0": False, "1.0": True, "0.0": False}
"""Every text a boolean value may be written as (lower case, stripped)."""


def as_bool(value: Any) -> bool | None:
    """The boolean `value` stands for, or None when it is not one."""
    if isinstance(value, bool | np.bool_):
        return bool(value)
    if isinstance(value, int | float | np.integer | np.floating):
        return bool(value) if value in (0, 1) else None
    if isinstance(value, str):
        return TEXT.get(value.strip().lower())
    return None


def as_text(flag: Any) -> str:
    """A boolean written the way JSON and uploads write it: `true` or `false`."""
    return "true" if flag else "false"
