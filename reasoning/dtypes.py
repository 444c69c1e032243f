"""The column types the service knows, named once for uploads, model cards, filters and
the encoder (a leaf module: everything may import it)."""

from __future__ import annotations

from typing import Literal, get_args

Dtype = Literal["integer", "float", "boolean", "categorical", "timestamp"]
"""A column's type in the project's vocabulary (what model cards and dataset infos show)."""

DTYPES: tuple[Dtype, ...] = get_args(Dtype)
"""Every `Dtype`, in the order messages list them."""
