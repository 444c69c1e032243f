"""A shallow CART tree, explained by path contributions (Saabas) and by its rule path as text.

Node values live in raw-output space (the mean for regression, clipped per-class log-odds for
classification), so the contributions along a row's path telescope exactly to its leaf value.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from functools import partial
from typing import Any, ClassVar

import numpy as np
from scipy import sparse
from scipy.special import logit
from sklearn.tree import DecisionTreeClassifier, DecisionTreeRegressor

from reasoning.booleans import as_text
from reasoning.encoding import DesignColumn, NumericMode, days_to_timestamp
from reasoning.families.base import (
    Family,
    FittedCore,
    Task,
    fit_for_task,
    mirror_binary,
    require_positive,
)

PROBA_CLIP = 1e-6


def clipped_log_odds(p: np.ndarray) -> np.ndarray:
    """log(p / (1 - p)) with p clipped to [1e-6, 1 - 1e-6], so pure leaves stay finite."""
    return logit(np.clip(p, PROBA_CLIP, 1.0 - PROBA_CLIP))


def node_parents(tree: Any) -> np.ndarray:
    """Parent of every node of a fitted sklearn ``tree_`` (-1 for the root)."""
    left, right = tree.children_left, tree.children_right
    parent = np.full(tree.node_count, -1, dtype=np.intp)
    internal = np.flatnonzero(left >= 0)
    parent[left[internal]] = internal
    parent[right[internal]] = internal
    return parent


def path_steps(tree: Any, node_value: np.ndarray, n_design: int) -> sparse.csr_matrix:
    """Saabas steps of one tree as a sparse (node, design column x output) map.

    Each non-root node adds value(node) - value(parent) to the feature its parent split on, so a
    row's decision path (a 0/1 node indicator) times this map gives its contributions
    (n, d * K), which telescope to leaf value - root value. ``node_value`` is (n_nodes, K) in
    whatever space the contributions should live in (forests stack one map per tree).
    """
    parent = node_parents(tree)
    nonroot = np.flatnonzero(parent >= 0)
    k = node_value.shape[1]
    delta = node_value[nonroot] - node_value[parent[nonroot]]
    split_feature = tree.feature[parent[nonroot]]
    rows = np.repeat(nonroot, k)
    cols = (split_feature[:, None] * k + np.arange(k)[None, :]).ravel()
    return sparse.csr_matrix(
        (delta.ravel(), (rows, cols)), shape=(tree.node_count, n_design * k)
    )


class TreeCore(FittedCore):
    """A fitted sklearn tree with per-node values in raw-output space."""

    def __init__(self, task: Task, estimator: DecisionTreeRegressor | DecisionTreeClassifier):
        self.task = task
        self.estimator = estimator
        tree = estimator.tree_
        if task.kind == "regression":
            node_value = tree.value[:, 0, :1].astype(np.float64)
        else:
            frac = tree.value[:, 0, :].astype(np.float64)
            frac = frac / frac.sum(axis=1, keepdims=True)
            node_value = (
                mirror_binary(clipped_log_odds(frac[:, 1]))
                if task.is_binary
                else clipped_log_odds(frac)
            )
        self.node_value = node_value
        self.base_value = node_value[0].copy()
        self.n_design = int(estimator.n_features_in_)
        self.parent = node_parents(tree)
        self.step_matrix = path_steps(tree, node_value, self.n_design)

    def decision(self, Z: np.ndarray) -> np.ndarray:
        return self.node_value[self.estimator.apply(Z)]

    def contributions(self, Z: np.ndarray) -> np.ndarray:
        path = self.estimator.decision_path(Z)
        k = self.node_value.shape[1]
        dense = (path @ self.step_matrix).toarray()
        return dense.reshape(len(Z), self.n_design, k)

    def proba(self, Z: np.ndarray) -> np.ndarray:
        """Leaf class fractions, as the tree itself predicts them."""
        return self.estimator.predict_proba(Z)

    def rules(self, Z: np.ndarray, design: Sequence[DesignColumn]) -> list[str]:
        """Each row's root-to-leaf conditions, merged per column ("30.5 < age <= 41.5")."""
        path = self.estimator.decision_path(Z).tocsr()
        tree = self.estimator.tree_
        out: list[str] = []
        for i in range(len(Z)):
            nodes = np.sort(path.indices[path.indptr[i] : path.indptr[i + 1]])
            out.append(_rule_text(Z[i], nodes, tree, design))
        return out


def _fmt_number(x: float) -> str:
    """The shortest text of the threshold as a float32. The tree splits float32 features
    at midpoints computed in float64 (between 0.1 and 0.2: 0.1500000022), and the data
    cannot tell the two apart, so a person is shown 0.15."""
    value = np.float32(x)
    if value == 0 or 1e-4 <= abs(value) < 1e16:
        return np.format_float_positional(value, trim="-")
    return np.format_float_scientific(value, trim="-")


def _fmt_bound(x: float, dtype: str) -> str:
    return days_to_timestamp(x).isoformat() if dtype == "timestamp" else _fmt_number(x)


def _rule_text(z: np.ndarray, nodes: np.ndarray, tree: Any, design: Sequence[DesignColumn]) -> str:
    """Merge the conditions on one path: tightest numeric bounds, one-hot equalities, missing."""
    bounds: dict[int, list[float]] = {}  # design column -> [lower (exclusive), upper (inclusive)]
    order: list[int] = []
    for parent, child in zip(nodes[:-1], nodes[1:], strict=True):
        f = int(tree.feature[parent])
        if f not in bounds:
            bounds[f] = [-np.inf, np.inf]
            order.append(f)
        t = float(tree.threshold[parent])
        if child == tree.children_left[parent]:
            bounds[f][1] = min(bounds[f][1], t)
        else:
            bounds[f][0] = max(bounds[f][0], t)
    equal_sources = {
        design[f].source
        for f in order
        if design[f].kind == "onehot" and not np.isnan(z[f]) and bounds[f][0] > -np.inf
    }
    parts: list[str] = []
    for f in order:
        col = design[f]
        lo, hi = bounds[f]
        if np.isnan(z[f]):
            parts.append(f"{col.source} is missing")
        elif col.kind == "onehot":
            if lo > -np.inf:
                parts.append(f"{col.source} = {col.level}")
            elif col.source not in equal_sources:
                parts.append(f"{col.source} != {col.level}")
        elif col.dtype == "boolean":
            parts.append(f"{col.source} = {as_text(lo > -np.inf)}")
        elif lo > -np.inf and hi < np.inf:
            parts.append(
                f"{_fmt_bound(lo, col.dtype)} < {col.source} <= {_fmt_bound(hi, col.dtype)}"
            )
        elif hi < np.inf:
            parts.append(f"{col.source} <= {_fmt_bound(hi, col.dtype)}")
        else:
            parts.append(f"{col.source} > {_fmt_bound(lo, col.dtype)}")
    return " and ".join(dict.fromkeys(parts)) if parts else "all rows"


class DecisionTreeFamily(Family):
    """sklearn CART on the "raw" encoding (it routes NaN itself), kept shallow to stay readable."""

    name: ClassVar[str] = "decision_tree"
    numeric_encoding: ClassVar[NumericMode] = "raw"
    defaults: ClassVar[Mapping[str, Any]] = {"max_depth": 4, "min_samples_leaf": 5}

    def validate_params(self, params: Mapping[str, Any]) -> None:
        require_positive(params, "max_depth", "min_samples_leaf")

    def fit(
        self,
        Z: np.ndarray,
        y: np.ndarray,
        task: Task,
        params: Mapping[str, Any],
        random_state: int | None,
    ) -> TreeCore:
        common = {
            "max_depth": int(params["max_depth"]),
            "min_samples_leaf": int(params["min_samples_leaf"]),
            "random_state": random_state,
        }
        estimator = fit_for_task(
            task, partial(DecisionTreeRegressor, **common),
            partial(DecisionTreeClassifier, **common), Z, y,
        )
        return TreeCore(task, estimator)
