"""Generalized additive model: a cubic spline basis per numeric column, then ridge / logistic;
with ``n_pairs`` > 0, also that many pairwise interaction terms (a GA²M).

It is the linear family on a richer encoding, so each column's reason is an exact additive term
(its spline curve, centred on the training mean) and the shape curve is the term itself. Pair
terms are tensor products of two columns' coarser bases (``TableEncoder.add_pairs``), chosen
after an additive fit by ``reasoning.interactions``; each one's contribution is split evenly
between its two columns' reasons, so the reasons still add up to the output.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from functools import partial
from typing import Any, ClassVar

from sklearn.linear_model import LogisticRegressionCV, RidgeCV
from sklearn.model_selection import ShuffleSplit

from reasoning.encoding import NumericMode, TableEncoder
from reasoning.families.base import require_range
from reasoning.families.linear import LinearFamily

MAX_PAIRS = 32
"""Pair terms a model may hold (each at most ``PAIR_WIDTH`` squared design columns)."""
ALPHA_SPAN = (0.1, 1.0, 10.0)
"""The penalties a fit tries around its ``alpha``: the search's few trials land far apart
on a log scale, and the best penalty differs by decades from table to table."""
SEARCHED_PAIRS = (0, 5, 10, 15)
"""The numbers of pair terms the search tries (tune_configs.gam), the largest counted in
the design matrix's bound at submit."""


class GamFamily(LinearFamily):
    """Ridge / logistic on the "spline" encoding; ``n_knots`` sets how wiggly each curve may be,
    ``n_pairs`` how many interaction terms may be added (0: purely additive)."""

    name: ClassVar[str] = "gam"
    numeric_encoding: ClassVar[NumericMode] = "spline"
    defaults: ClassVar[Mapping[str, Any]] = {"alpha": 1.0, "n_knots": 6, "n_pairs": 0}

    def validate_params(self, params: Mapping[str, Any]) -> None:
        super().validate_params(params)
        require_range(params, "n_knots", 2, 100)
        require_range(params, "n_pairs", 0, MAX_PAIRS)

    def pair_terms(self, params: Mapping[str, Any]) -> int:
        return int(params["n_pairs"])

    def make_encoder(self, params: Mapping[str, Any]) -> TableEncoder:
        return TableEncoder(numeric=self.numeric_encoding, n_knots=int(params["n_knots"]))

    def estimators(
        self, params: Mapping[str, Any], random_state: int | None
    ) -> tuple[Callable[[], Any], Callable[[], Any]]:
        """Ridge / logistic at the best of ``ALPHA_SPAN`` × alpha: ridge by its exact
        leave-one-out error (generalized cross-validation, one decomposition), logistic by
        the log loss on a fifth of the rows held out, then refitted on them all."""
        alphas = [float(params["alpha"]) * k for k in ALPHA_SPAN]
        return (partial(RidgeCV, alphas=alphas),
                partial(LogisticRegressionCV, Cs=[1.0 / a for a in alphas], max_iter=2000,
                        cv=ShuffleSplit(1, test_size=0.2, random_state=random_state),
                        scoring="neg_log_loss", random_state=random_state, l1_ratios=(0.0,),
                        use_legacy_attributes=False))
