"""Fitted encodings of one input column into its design columns: numbers (raw, standardized or a
cubic B-spline basis, with a missing indicator) and categories (one-hot over the training levels).

``TableEncoder`` (reasoning/encoding.py) holds one codec per input column and ``PairBasis`` one
per column in a pair term. Stored models pickle these classes under ``reasoning.encoding`` (where
they were first) or here: ``reasoning.encoding`` re-exports them, so either name loads.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
from sklearn.impute import SimpleImputer
from sklearn.pipeline import Pipeline, make_pipeline
from sklearn.preprocessing import OneHotEncoder, SplineTransformer, StandardScaler

from reasoning.columns import DesignColumn, Feature, category_keys, to_float


class _ColumnCodec:
    """Fitted encoding of one input column into one or more design columns."""

    columns: list[DesignColumn]

    def transform(self, series: pd.Series) -> np.ndarray:
        raise NotImplementedError

    def derivative(self, series: pd.Series) -> np.ndarray:
        """d(design column)/d(input value) per row (n, width); levels have no slope: zeros."""
        return np.zeros((len(series), len(self.columns)))


class _NumericCodec(_ColumnCodec):
    """Integer, float, boolean and timestamp columns, in one of the three numeric modes."""

    def __init__(
        self, feature: Feature, index: int, mode: str, n_knots: int, values: np.ndarray,
        include_bias: bool = False,
    ) -> None:
        self.feature = feature
        self.mode = mode
        observed = values[~np.isnan(values)]
        if mode == "spline" and (feature.dtype == "boolean" or np.unique(observed).size < 3):
            # A spline needs a range to spread its knots over; few levels get a straight line.
            self.mode = "standard"
        self.add_indicator = self.mode != "raw" and bool(np.isnan(values).any())
        self.pipeline: Pipeline | None = None
        name = feature.name
        if self.mode == "raw":
            self.columns = [DesignColumn(name, name, index, feature.dtype, "value")]
            return
        imputer = SimpleImputer(strategy="median", keep_empty_features=True)
        if self.mode == "standard":
            self.pipeline = make_pipeline(imputer, StandardScaler())
        else:
            spline = SplineTransformer(
                n_knots=n_knots,
                degree=3,
                knots="uniform",
                extrapolation="constant",
                include_bias=include_bias,
            )
            self.pipeline = make_pipeline(imputer, spline)
        self.pipeline.fit(values.reshape(-1, 1))
        if self.mode == "standard":
            self.columns = [DesignColumn(name, name, index, feature.dtype, "value")]
        else:
            self.columns = [
                DesignColumn(f"{name}__s{j}", name, index, feature.dtype, "spline")
                for j in range(self.pipeline[-1].n_features_out_)
            ]
        if self.add_indicator:
            self.columns.append(
                DesignColumn(f"{name}__missing", name, index, feature.dtype, "missing")
            )

    def transform(self, series: pd.Series) -> np.ndarray:
        values = to_float(series, self.feature.dtype)
        if self.pipeline is None:
            return values.reshape(-1, 1)
        parts = [self.pipeline.transform(values.reshape(-1, 1))]
        if self.add_indicator:
            parts.append(np.isnan(values).astype("float64").reshape(-1, 1))
        return np.hstack(parts)

    def derivative(self, series: pd.Series) -> np.ndarray:
        """Slope of each design column at the (imputed, for missing) value; indicators: 0.

        Raw: 1. Standard: 1 / scale. Spline: the B-spline basis derivative (scipy's, from the
        fitted ``bsplines_``), 0 outside the knot range where the basis is held constant and
        the slope from inside at the range's two ends (training rows sit there).
        """
        values = to_float(series, self.feature.dtype)
        n = len(values)
        if self.pipeline is None:
            slope = np.ones((n, 1))
        elif self.mode == "standard":
            slope = np.full((n, 1), 1.0 / float(self.pipeline[-1].scale_[0]))
        else:
            imputed = self.pipeline[0].transform(values.reshape(-1, 1))[:, 0]
            slope = _spline_slope(self.pipeline[-1], imputed)
        if self.add_indicator:
            slope = np.hstack([slope, np.zeros((n, 1))])
        return slope


def _spline_slope(spline: SplineTransformer, x: np.ndarray) -> np.ndarray:
    """Derivative of a fitted one-feature SplineTransformer's output columns at x (n,)."""
    basis = spline.bsplines_[0]
    lo, hi = basis.t[spline.degree], basis.t[-spline.degree - 1]
    inside = (x >= lo) & (x <= hi)  # "constant" extrapolation: flat outside the knots
    slope = np.zeros((len(x), basis.c.shape[1]))
    if inside.any():
        slope[inside] = basis(x[inside], nu=1)
    # include_bias=False drops the last basis function of each feature, as transform does.
    return slope if spline.include_bias else slope[:, :-1]


class _CategoricalCodec(_ColumnCodec):
    """One-hot over the training levels; unseen (or rare, past ``max_levels``) levels are zeros."""

    def __init__(self, feature: Feature, index: int, max_levels: int, keys: np.ndarray) -> None:
        self.feature = feature
        counts = pd.Series(keys, dtype=object).value_counts(sort=False)
        # Most frequent first, ties by key, so the kept set does not depend on row order.
        ranked = sorted(counts.items(), key=lambda kv: (-int(kv[1]), str(kv[0])))
        self.levels: list[str] = sorted(str(k) for k, _ in ranked[:max_levels])
        self.onehot = OneHotEncoder(
            categories=[np.array(self.levels, dtype=object)],
            handle_unknown="ignore",
            sparse_output=False,
            dtype=np.float64,
        )
        self.onehot.fit(keys.reshape(-1, 1))
        name = feature.name
        self.columns = [
            DesignColumn(f"{name}={level}", name, index, feature.dtype, "onehot", level)
            for level in self.levels
        ]

    def transform(self, series: pd.Series) -> np.ndarray:
        if not self.levels:
            return np.zeros((len(series), 0))
        return self.onehot.transform(category_keys(series).reshape(-1, 1))
