"""The column types the service knows, named once for uploads, model cards, filters and
the encoder (a leaf module: everything may import it)."""

from __future__ import annotations

from typing import Literal, get_args

Dtype = Literal["integer", "float", "boolean", "categorical", "timestamp"]
"""A column's type in the project's vocabulary (what model cards and dataset infos show)."""

DTYPES: tuple[Dtype, ...] = get_args(Dtype)
"""Every `Dtype`, in the order messages list them."""

NUMERIC_DTYPES: tuple[Dtype, ...] = ("integer", "float")
"""Columns whose values are numbers as they are (a regression's label, a compared value)."""

DIFFERENTIABLE_DTYPES: tuple[Dtype, ...] = ("integer", "float", "timestamp")
"""Columns that are numbers on a line: a model's output has a slope in them."""
