"""Generalized additive model: a cubic spline basis per numeric column, then ridge / logistic.

It is the linear family on a richer encoding, so each column's reason is an exact additive term
(its spline curve, centred on the training mean) and the shape curve is the term itself.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, ClassVar

from reasoning.encoding import NumericMode, TableEncoder
from reasoning.families.base import require_range
from reasoning.families.linear import LinearFamily


class GamFamily(LinearFamily):
    """Ridge / logistic on the "spline" encoding; ``n_knots`` sets how wiggly each curve may be."""

    name: ClassVar[str] = "gam"
    differentiable: ClassVar[bool] = True
    numeric_encoding: ClassVar[NumericMode] = "spline"
    defaults: ClassVar[Mapping[str, Any]] = {"alpha": 1.0, "n_knots": 6}

    def validate_params(self, params: Mapping[str, Any]) -> None:
        super().validate_params(params)
        require_range(params, "n_knots", 2, 100)

    def make_encoder(self, params: Mapping[str, Any]) -> TableEncoder:
        return TableEncoder(numeric=self.numeric_encoding, n_knots=int(params["n_knots"]))
