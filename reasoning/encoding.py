"""Turn a mixed-type DataFrame into a float64 design matrix, remembering each column's source.

Every family fits on the same kind of matrix, so reasons can always be summed back from design
columns to the input column they came from (``TableEncoder.groups_``). The encoder never fails on
what the service will see at predict time: unseen categories, missing values in a column that had
none, JSON-ish values (ISO strings for timestamps, "true" for booleans).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Literal

import numpy as np
import pandas as pd

from reasoning.codecs import _CategoricalCodec, _ColumnCodec, _NumericCodec
from reasoning.columns import (
    MISSING_LEVEL,
    DesignColumn,
    Feature,
    category_keys,
    days_to_timestamp,
    infer_dtype,
    to_float,
)
from reasoning.dtypes import DIFFERENTIABLE_DTYPES

# Stored models pickle Feature, DesignColumn and the codecs as reasoning.encoding's (they were
# first defined here), and callers import the column vocabulary from here: both keep working.
__all__ = [
    "MISSING_LEVEL",
    "NUMERIC_MODES",
    "PAIR_KNOTS",
    "PAIR_LEVELS",
    "PAIR_WIDTH",
    "DesignColumn",
    "Feature",
    "NumericMode",
    "PairBasis",
    "TableEncoder",
    "_CategoricalCodec",
    "_ColumnCodec",
    "_NumericCodec",
    "category_keys",
    "days_to_timestamp",
    "infer_dtype",
    "to_float",
]

NUMERIC_MODES: tuple[str, ...] = ("raw", "standard", "spline")
NumericMode = Literal["raw", "standard", "spline"]


class TableEncoder:
    """Fitted map from a DataFrame to a float64 design matrix Z.

    ``numeric`` picks how numeric columns look: "raw" (NaN kept, for trees), "standard"
    (median-impute, missing indicator if the training column had missing values, standardize) or
    "spline" (median-impute, indicator, cubic B-spline basis with ``n_knots`` knots, for GAMs).
    Categoricals are always one-hot with missing as its own level.
    """

    pairs_: tuple[tuple[int, int], ...] = ()
    """Interaction terms (input index, input index), added by ``add_pairs``; none by default
    (and in encoders pickled before pairs existed)."""

    def __init__(self, numeric: NumericMode = "standard", n_knots: int = 6, max_levels: int = 50):
        if numeric not in NUMERIC_MODES:
            raise ValueError(f"numeric must be one of {list(NUMERIC_MODES)}, got {numeric!r}")
        if int(n_knots) < 2:
            raise ValueError("n_knots must be at least 2")
        if int(max_levels) < 1:
            raise ValueError("max_levels must be at least 1")
        self.numeric = numeric
        self.n_knots = int(n_knots)
        self.max_levels = int(max_levels)

    def fit(self, X: pd.DataFrame, features: Sequence[Feature] | None = None) -> TableEncoder:
        """Learn per-column encodings; ``features`` defaults to ``infer_dtype`` of each column."""
        if features is None:
            features = [Feature(str(c), infer_dtype(X[c])) for c in X.columns]
        self.features_: list[Feature] = list(features)
        self.codecs_: list[_ColumnCodec] = []
        for i, feat in enumerate(self.features_):
            col = X[feat.name]
            codec: _ColumnCodec
            if feat.dtype == "categorical":
                codec = _CategoricalCodec(feat, i, self.max_levels, category_keys(col))
            else:
                values = to_float(col, feat.dtype)
                codec = _NumericCodec(feat, i, self.numeric, self.n_knots, values)
            self.codecs_.append(codec)
        self.design_: list[DesignColumn] = [c for codec in self.codecs_ for c in codec.columns]
        self.pairs_ = ()
        self._index_design()
        return self

    def _index_design(self) -> None:
        self.groups_: np.ndarray = np.array([c.source_index for c in self.design_], dtype=np.intp)
        self.column_names_: list[str] = [c.name for c in self.design_]

    def add_pairs(self, X: pd.DataFrame, pairs: Sequence[tuple[str, str]]) -> TableEncoder:
        """Append one interaction term per pair of input columns: the row-wise products of the
        two columns' pair bases, each basis centred on its training mean.

        A pair basis is coarser than the column's own encoding (a cubic spline on
        ``PAIR_KNOTS`` knots with its bias column, or one-hot over the ``PAIR_LEVELS`` most
        frequent levels, plus a missing indicator if the column had missing values). Centring
        makes a term's average over either column zero when the two are independent, so a
        pair holds interaction and the columns' own terms keep their main effects; with the
        bias column kept, products of centred bases still span x_a * x_b exactly.
        """
        names = [f.name for f in self.features_]
        chosen = tuple((self.feature_index(a), self.feature_index(b)) for a, b in pairs)
        for a, b in chosen:
            if a == b:
                raise ValueError(f"a pair needs two different columns, got {names[a]!r} twice")
        self.pair_bases_: dict[int, PairBasis] = {
            i: PairBasis(self.features_[i], i, X[names[i]])
            for i in sorted({i for pair in chosen for i in pair})
        }
        main = [c for c in self.design_ if c.kind != "pair"]
        self.pairs_ = chosen
        self.design_ = main + [
            DesignColumn(f"{names[a]}&{names[b]}__p{j}_{k}", names[a], a,
                         self.features_[a].dtype, "pair", None, names[b], b)
            for a, b in chosen
            for j in range(self.pair_bases_[a].width)
            for k in range(self.pair_bases_[b].width)
        ]
        self._index_design()
        return self

    @property
    def partners_(self) -> np.ndarray:
        """(n_design,) the second input of each pair column; -1 for every other column."""
        return np.array([c.partner_index for c in self.design_], dtype=np.intp)

    def pair_indices(self, k: int) -> np.ndarray:
        """Design-column positions of the k-th pair term."""
        a, b = self.pairs_[k]
        start = sum(1 for c in self.design_ if c.kind != "pair") + sum(
            self.pair_bases_[i].width * self.pair_bases_[j].width for i, j in self.pairs_[:k])
        return np.arange(start, start + self.pair_bases_[a].width * self.pair_bases_[b].width)

    def pair_design(self, k: int, X: pd.DataFrame) -> np.ndarray:
        """The k-th pair term's design columns for rows holding (at least) its two inputs."""
        a, b = self.pairs_[k]
        return _outer(*(self.pair_bases_[i].transform(
            X[self.features_[i].name].reset_index(drop=True)) for i in (a, b)))

    def pair_names(self) -> list[tuple[str, str]]:
        """The pair terms' two input columns, by name."""
        return [(self.features_[a].name, self.features_[b].name) for a, b in self.pairs_]

    def input_weights(self) -> np.ndarray:
        """(n_design, n_features): how a design column's contribution is shared among the
        input columns, the reasons' split. A column's own terms go to it whole; a pair term
        half to each of its two columns, the Shapley split of a pure pairwise term."""
        weights = np.zeros((self.n_design, len(self.features_)))
        rows = np.arange(self.n_design)
        partners = self.partners_
        paired = partners >= 0
        weights[rows, self.groups_] = np.where(paired, 0.5, 1.0)
        weights[rows[paired], partners[paired]] = 0.5
        return weights

    def _pair_blocks(
        self, X: pd.DataFrame, slopes: bool = False
    ) -> list[tuple[np.ndarray, np.ndarray, np.ndarray | None, np.ndarray | None]]:
        """Per pair term: the two centred bases (n, w_a), (n, w_b), and with ``slopes`` their
        derivatives in their own columns."""
        bases = {i: basis.transform(X[self.features_[i].name].reset_index(drop=True))
                 for i, basis in self.pair_bases_.items()} if self.pairs_ else {}
        grads = {i: basis.derivative(X[self.features_[i].name].reset_index(drop=True))
                 for i, basis in self.pair_bases_.items()} if slopes and self.pairs_ else {}
        return [(bases[a], bases[b], grads.get(a), grads.get(b)) for a, b in self.pairs_]

    @property
    def n_design(self) -> int:
        """Number of design columns."""
        return len(self.design_)

    def transform(self, X: pd.DataFrame) -> np.ndarray:
        """Design matrix (n, n_design); X must hold every fitted column (extra ones are ignored)."""
        n = len(X)
        if n == 0:  # sklearn transformers refuse empty input
            return np.zeros((0, self.n_design))
        parts = [
            codec.transform(X[feat.name])
            for feat, codec in zip(self.features_, self.codecs_, strict=True)
        ]
        parts += [_outer(base_a, base_b) for base_a, base_b, _, _ in self._pair_blocks(X)]
        if not parts:
            return np.zeros((n, 0))
        return np.ascontiguousarray(np.hstack(parts), dtype=np.float64)

    def fit_transform(
        self, X: pd.DataFrame, features: Sequence[Feature] | None = None
    ) -> np.ndarray:
        """``fit`` then ``transform``."""
        return self.fit(X, features).transform(X)

    def derivatives(self, X: pd.DataFrame) -> tuple[np.ndarray, np.ndarray]:
        """(own, partner), each (n, n_design): d(design column)/d(its ``source`` input) and,
        for a pair column, d/d(its ``partner`` input) (0 for every other column).

        In the input column's units (timestamps per day); at the imputed value where the input is
        missing; 0 for one-hot and missing-indicator columns. The chain rule from design to input
        columns (Jacobians, Sobolev rows) multiplies by these; ``differentiable_inputs`` says
        which input columns have a derivative at all.
        """
        n = len(X)
        partner = np.zeros((n, self.n_design))
        if n == 0 or not self.codecs_:
            return np.zeros((n, self.n_design)), partner
        parts = [
            codec.derivative(X[feat.name].reset_index(drop=True))
            for feat, codec in zip(self.features_, self.codecs_, strict=True)
        ]
        for k, (base_a, base_b, slope_a, slope_b) in enumerate(self._pair_blocks(X, slopes=True)):
            assert slope_a is not None and slope_b is not None  # asked for with slopes=True
            parts.append(_outer(slope_a, base_b))
            partner[:, self.pair_indices(k)] = _outer(base_a, slope_b)
        return np.ascontiguousarray(np.hstack(parts), dtype=np.float64), partner

    def differentiable_inputs(self) -> np.ndarray:
        """(n_features,) bool: integer, float and timestamp columns; not booleans, categoricals."""
        return np.array([f.dtype in DIFFERENTIABLE_DTYPES for f in self.features_], dtype=bool)

    def transform_column(self, name: str, series: pd.Series) -> np.ndarray:
        """Encode values of one input column alone: its design block, (len(series), width)."""
        index = self.feature_index(name)
        return self.codecs_[index].transform(pd.Series(series).reset_index(drop=True))

    def feature_index(self, name: str) -> int:
        """Position of an input column."""
        for i, feat in enumerate(self.features_):
            if feat.name == name:
                return i
        raise KeyError(name)

    def design_indices(self, name: str) -> np.ndarray:
        """Design-column positions that encode one input column alone (not its pair terms)."""
        own = np.array([c.kind != "pair" for c in self.design_], dtype=bool)
        return np.flatnonzero((self.groups_ == self.feature_index(name)) & own)

    def levels(self, name: str) -> list[str]:
        """Training levels (keys) of a categorical column, including ``MISSING_LEVEL`` if seen."""
        codec = self.codecs_[self.feature_index(name)]
        if not isinstance(codec, _CategoricalCodec):
            raise ValueError(f"column {name!r} is not categorical")
        return list(codec.levels)


PAIR_KNOTS = 3
"""Knots of a numeric column's pair basis: 5 cubic B-splines, so a pair of numbers is 25
design columns (bilinear and smoother surfaces; the column's own term keeps the detail)."""
PAIR_LEVELS = 6
"""Levels of a categorical column's pair basis: the most frequent ones, the rest share zero."""
PAIR_WIDTH = max(PAIR_KNOTS + 2, PAIR_LEVELS) + 1
"""The widest pair basis (with a missing-value indicator): a pair term is at most its square."""


class PairBasis:
    """One input column's basis inside its pair terms, centred on its training mean."""

    def __init__(self, feature: Feature, index: int, series: pd.Series) -> None:
        series = series.reset_index(drop=True)
        if feature.dtype == "categorical":
            self.codec: _ColumnCodec = _CategoricalCodec(feature, index, PAIR_LEVELS,
                                                         category_keys(series))
        else:
            self.codec = _NumericCodec(feature, index, "spline", PAIR_KNOTS,
                                       to_float(series, feature.dtype), include_bias=True)
        self.mean = self.codec.transform(series).mean(axis=0)
        self.width = len(self.mean)

    def transform(self, series: pd.Series) -> np.ndarray:
        return self.codec.transform(series) - self.mean

    def derivative(self, series: pd.Series) -> np.ndarray:
        return self.codec.derivative(series)


def _outer(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Row-wise outer products (n, w_a), (n, w_b) -> (n, w_a * w_b), a's index outer."""
    return (a[:, :, None] * b[:, None, :]).reshape(len(a), -1)
