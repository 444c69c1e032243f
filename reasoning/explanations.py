"""Why a ReasoningModel answers as it does: reasons per row, and the model's global picture.

Functions of a fitted model, which ``ReasoningModel.explain`` and ``global_explanation`` call.
They work in the model's design space, through its own helpers (``_design``, ``_raw``,
``_design_contributions``, ``_to_inputs``, ``_predicted_index``): the explanations are part of
the estimator, kept in a module of their own to keep each module one idea.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd

from reasoning.encoding import Feature, days_to_timestamp, to_float
from reasoning.jsonable import column_json, grid_json, json_scalar, x_json

if TYPE_CHECKING:
    from reasoning.model import ReasoningModel


def explain(
    model: ReasoningModel, X: pd.DataFrame, top_k: int | None = 5, pairs: bool = False
) -> list[dict[str, Any]]:
    """Per row: output, base_value and the top_k reasons by |contribution| (None = all).

    For classification the output is the predicted class's raw output (and "class" names
    it); decision trees add "rule", the row's path as text. With pair terms, each column's
    reason holds half of each pair it is in; ``pairs=True`` gives the pair terms as reasons
    of their own instead ("columns" names both, "value" holds both values), beside each
    column's own term.
    """
    if top_k is not None and (isinstance(top_k, bool) or int(top_k) < 0):
        raise ValueError(f"top_k must be a non-negative integer or None, got {top_k!r}")
    frame, Z = model._design(X)
    base = np.asarray(model.core_.base_value, dtype=np.float64)
    design_contrib = model._design_contributions(Z)
    # The family convention makes this the raw output (to 1e-6) without a second pass.
    raw = base + design_contrib.sum(axis=1)
    pred = model._predicted_index(raw)
    names: list[Any] = [f.name for f in model.features_]
    values = [column_json(frame[f.name], f.dtype) for f in model.features_]
    if pairs and model.encoder_.pairs_:
        contrib = by_terms(design_contrib, _term_weights(model))
        position = {name: j for j, name in enumerate(names)}
        for a, b in model.encoder_.pair_names():
            names.append((a, b))
            values.append([[va, vb] for va, vb in zip(values[position[a]],
                                                       values[position[b]], strict=True)])
    else:
        contrib = model._to_inputs(design_contrib)
    rules = model.core_.rules(Z, model.encoder_.design_) if len(Z) else None
    limit = None if top_k is None else int(top_k)
    out: list[dict[str, Any]] = []
    for i in range(len(Z)):
        k = int(pred[i])
        row = contrib[i, :, k]
        order = np.argsort(-np.abs(row), kind="stable")[:limit]
        entry: dict[str, Any] = {
            "output": float(raw[i, k]),
            "base_value": float(base[k]),
            "reasons": [_reason(names[j], values[j][i], float(row[j])) for j in order],
        }
        if model.task_.kind == "classification":
            entry["class"] = json_scalar(model.classes_[k])
        if rules is not None:
            entry["rule"] = rules[i]
        out.append(entry)
    return out


def global_explanation(
    model: ReasoningModel, X: pd.DataFrame, max_rows: int = 1000, grid: int = 20
) -> dict[str, Any]:
    """Importance (mean |contribution| of the predicted class) and a shape curve per column.

    Both come from one contributions pass over up to ``max_rows`` sampled rows, so the cost
    is that of explaining those rows (TreeSHAP is not cheap enough for more). A shape is the
    mean contribution of the column among the rows at each x (a dependence curve): one point
    per level for categoricals and booleans, per distinct value when there are at most
    ``grid`` of them, else per quantile bin (x = the bin's mean). For additive families
    (linear, gam) a column's contribution depends on its own value only, so the curve is the
    model's exact shape function at those x. The curve is in the regression value, the
    log-odds of ``classes_[1]`` for binary, and the predicted class's score for multiclass
    (which also gets "classes" and "by_class": one curve per class).
    """
    frame, Z = model._design(X)
    if min(max_rows, grid) < 1:
        raise ValueError("max_rows and grid must be at least 1")
    if len(Z) > max_rows:
        rng = np.random.default_rng(0 if model.random_state is None else model.random_state)
        rows = np.sort(rng.choice(len(Z), size=max_rows, replace=False))
        frame, Z = frame.iloc[rows], Z[rows]
    raw = model._raw(Z)
    pred = model._predicted_index(raw)
    design_contrib = model._design_contributions(Z)
    contrib = model._to_inputs(design_contrib)
    picked = contrib[np.arange(len(Z)), :, pred]
    importance = {
        f.name: float(np.abs(picked[:, j]).mean()) if len(Z) else 0.0
        for j, f in enumerate(model.features_)
    }
    importance = dict(sorted(importance.items(), key=lambda kv: -kv[1]))
    if model.task_.kind == "regression":
        curve_values = contrib[:, :, 0]
    elif model.n_outputs_ == 2:
        curve_values = contrib[:, :, 1]
    else:
        curve_values = picked
    shapes = {
        f.name: _shape(model, f, frame[f.name], curve_values[:, j], contrib[:, j, :], grid)
        for j, f in enumerate(model.features_)
    }
    explanation: dict[str, Any] = {"importance": importance, "shapes": shapes}
    if model.encoder_.pairs_:
        terms = by_terms(design_contrib, _term_weights(model))
        strength = np.abs(terms[np.arange(len(Z)), model.n_features_in_:, pred]).mean(axis=0)
        shown = int(np.bincount(pred).argmax()) if len(pred) else 0
        explanation["pairs"] = sorted(
            ({"columns": list(names), "importance": float(strength[k]),
              "surface": _surface(model, k, frame, shown)}
             for k, names in enumerate(model.encoder_.pair_names())),
            key=lambda term: -term["importance"])
    return explanation


def by_terms(design_contrib: np.ndarray, weights: np.ndarray) -> np.ndarray:
    """(n, d, K) design-column contributions -> (n, terms, K) with a (d, terms) weighting."""
    return np.ascontiguousarray(
        np.matmul(design_contrib.transpose(0, 2, 1), weights).transpose(0, 2, 1))


def _term_weights(model: ReasoningModel) -> np.ndarray:
    """(n_design, n_features + n_pairs): each design column's contribution to one term,
    an input column's own (its pair terms left out) or a whole pair term."""
    encoder = model.encoder_
    weights = np.zeros((encoder.n_design, model.n_features_in_ + len(encoder.pairs_)))
    own = np.flatnonzero(encoder.partners_ < 0)
    weights[own, encoder.groups_[own]] = 1.0
    for k in range(len(encoder.pairs_)):
        weights[encoder.pair_indices(k), model.n_features_in_ + k] = 1.0
    return weights


def _surface(model: ReasoningModel, k: int, frame: pd.DataFrame, shown: int, size: int = 12
             ) -> dict[str, Any]:
    """The k-th pair term on a grid of its two columns' values: levels for categories
    and booleans, quantiles of the rows for numbers; other columns play no part."""
    encoder = model.encoder_
    first, second = (encoder.features_[i] for i in encoder.pairs_[k])
    axes = [_grid_values(f, frame[f.name], size) for f in (first, second)]
    grid = pd.DataFrame({first.name: np.repeat(axes[0], len(axes[1])),
                         second.name: np.tile(axes[1], len(axes[0]))})
    # An additive core's design columns contribute each on its own: the other columns'
    # values do not matter, and only the pair's own are summed.
    Z = np.zeros((len(grid), encoder.n_design))
    cols = encoder.pair_indices(k)
    Z[:, cols] = encoder.pair_design(k, grid)
    values = model._design_contributions(Z)[:, cols, :].sum(axis=1)  # (cells, K)
    shape = (len(axes[0]), len(axes[1]))
    out_k = 0 if model.task_.kind == "regression" else 1 if model.n_outputs_ == 2 else shown
    surface: dict[str, Any] = {
        "x": [grid_json(first, v) for v in axes[0]],
        "y": [grid_json(second, v) for v in axes[1]],
        "contribution": values[:, out_k].reshape(shape).tolist(),
    }
    if model.task_.kind == "classification" and model.n_outputs_ > 2:
        surface["class"] = json_scalar(model.classes_[shown])
        surface["classes"] = [json_scalar(c) for c in model.classes_]
        surface["by_class"] = [values[:, c].reshape(shape).tolist()
                               for c in range(model.n_outputs_)]
    return surface


def _shape(
    model: ReasoningModel,
    feature: Feature,
    series: pd.Series,
    curve: np.ndarray,
    per_class: np.ndarray,
    grid: int,
) -> dict[str, Any]:
    """Group the rows by the column's value (or value bin) and average contributions."""
    if feature.dtype in ("categorical", "boolean"):
        missing = series.isna().to_numpy(dtype=bool)
        keys = np.array([None if m else json_scalar(v) for v, m in
                         zip(series.astype(object), missing, strict=True)], dtype=object)
        order: list[Any] = sorted({k for k in keys if k is not None}, key=str)
        groups = [np.flatnonzero(~missing & (keys == k)) for k in order]
        if missing.any():
            order.append(None)
            groups.append(np.flatnonzero(missing))
        xs: list[Any] = order
    else:
        numbers = to_float(series, feature.dtype)
        present = np.flatnonzero(~np.isnan(numbers))
        values = numbers[present]
        distinct = np.unique(values)
        if distinct.size <= grid:
            centers = distinct
            groups = [present[values == v] for v in distinct]
        else:
            edges = np.unique(np.quantile(values, np.linspace(0.0, 1.0, grid + 1)))
            bins = np.clip(np.searchsorted(edges, values, side="right") - 1, 0,
                           len(edges) - 2)
            groups = [present[bins == b] for b in range(len(edges) - 1)]
            groups = [g for g in groups if g.size]
            centers = np.array([numbers[g].mean() for g in groups])
        xs = [x_json(feature, c) for c in centers]
    shape: dict[str, Any] = {
        "x": xs,
        "contribution": [float(curve[g].mean()) for g in groups],
        "count": [int(g.size) for g in groups],
    }
    if model.task_.kind == "classification" and model.n_outputs_ > 2:
        shape["classes"] = [json_scalar(c) for c in model.classes_]
        shape["by_class"] = [
            [float(per_class[g, k].mean()) for g in groups] for k in range(model.n_outputs_)
        ]
    return shape


def _grid_values(feature: Feature, series: pd.Series, size: int) -> np.ndarray:
    """Values to draw a surface at: a column's levels, or up to ``size`` quantiles."""
    if feature.dtype in ("categorical", "boolean"):
        present = series.dropna()
        levels = sorted({json_scalar(v) for v in present}, key=str)
        return np.array(levels, dtype=object)
    numbers = to_float(series, feature.dtype)
    numbers = numbers[~np.isnan(numbers)]
    if numbers.size == 0:
        return np.array([0.0])
    grid = np.unique(np.quantile(numbers, np.linspace(0.0, 1.0, size)))
    if feature.dtype == "timestamp":  # whole days: plenty for a surface, and short labels
        return np.array([days_to_timestamp(v) for v in np.unique(np.round(grid))],
                        dtype=object)
    return grid


def _reason(name: str | tuple[str, str], value: Any, contribution: float) -> dict[str, Any]:
    """One reason: an input column's, or a pair term's (named "a & b", both in "columns")."""
    if isinstance(name, tuple):
        return {"column": " & ".join(name), "columns": list(name), "value": value,
                "contribution": contribution}
    return {"column": name, "value": value, "contribution": contribution}
