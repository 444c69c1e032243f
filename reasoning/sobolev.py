"""Sobolev training (Czarnecki et al. 2017) in closed form, for families linear in their parameters.

A DiffModel teacher gives values f(x) and Jacobians J(x) at the dataset's rows. A ``linear`` or
``gam`` student is g(x) = b + w . z(x), with z the design row, so dg/dx_c = w . dz/dx_c where
dz/dx_c is the encoder's ``derivatives`` (nonzero only in column c's own design columns
and in the pair terms c is one side of: the "own" slope when c is a pair's first column, the
"partner" slope when it is the second). Pair terms are products of two bases, still linear
in w: chosen after an additive fit like the label fit chooses them, they leave the fit one
least-squares solve.
Value and derivative conditions are both linear in w, so one least-squares problem fits them:

    min_(w, b)  sum_i (b + w . z_i - f_i)^2  +  lambda sum_(i, c) (w . dz_i/dx_c - J_ic)^2
                + alpha ||w||^2

Value rows and derivative rows are stacked (derivative rows sparse: they touch one input column's
design columns) and solved by sklearn's Ridge (Cholesky, with lambda as the derivative rows'
sample weight). The intercept appears in value rows only, so it is profiled out: value rows are
centred (z and f), the stacked system is solved without an intercept, and
b = mean(f) - mean(z) . w. That is the exact minimiser and leaves b unpenalized, as Ridge's own
intercept is. There is no hyperparameter search: ``params`` (alpha, n_knots) and ``grad_weight``
are taken as given.

``ReasoningModel.fit_sobolev`` is the way in; this module holds its checks and its core fit.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
import pandas as pd
from scipy import sparse
from sklearn.linear_model import Ridge

from reasoning.encoding import TableEncoder, to_float
from reasoning.families import Family, Task
from reasoning.families.base import CoreFit
from reasoning.families.linear import LinearCore
from reasoning.targets import teacher_outputs

SOBOLEV_FAMILIES: tuple[str, ...] = ("linear", "gam")
"""Families linear in their parameters: their Sobolev fit is one least-squares solve."""



def check_sobolev(family: str, grad_weight: float) -> None:
    """Refuse a family whose fit is not one least-squares solve, and a negative lambda."""
    if family not in SOBOLEV_FAMILIES:
        raise ValueError(
            f"Sobolev fitting needs a family linear in its parameters: {list(SOBOLEV_FAMILIES)}; "
            f"got {family!r}"
        )
    if not (np.isfinite(grad_weight) and grad_weight >= 0):
        raise ValueError(f"grad_weight must be a finite number >= 0, got {grad_weight!r}")


def sobolev_targets(
    X: pd.DataFrame,
    values: Any,
    jacobians: Any,
    classes: Sequence[Any] | None,
    jacobian_columns: Sequence[str] | None,
) -> tuple[np.ndarray | None, np.ndarray, np.ndarray, list[str]]:
    """(sorted classes, values f, Jacobians, their columns) as the fit uses them, checked.

    ``classes`` None means regression; otherwise the teacher's classes in the order of its
    outputs, sorted here with the outputs permuted to match (``teacher_outputs``).
    """
    classes_arr, f = teacher_outputs(values, classes, len(X), 1, "values")
    _, jac = teacher_outputs(jacobians, classes, len(X), 2, "jacobians")
    if not np.isfinite(f).all():
        raise ValueError("teacher values must be finite numbers")
    columns = list(X.columns) if jacobian_columns is None else [str(c) for c in
                                                                 jacobian_columns]
    if jac.shape[1] != len(columns):
        raise ValueError(
            f"jacobians have {jac.shape[1]} columns but {len(columns)} jacobian_columns"
        )
    unknown = sorted(set(columns) - set(X.columns))
    if unknown:
        raise ValueError(f"jacobian_columns not in X: {unknown}")
    return classes_arr, f, jac, columns


def sobolev_core(
    task: Task, f: np.ndarray, jac: np.ndarray, columns: Sequence[str], grad_weight: float
) -> CoreFit:
    """The core fit ``ReasoningModel.fit_sobolev`` hands to its fit: the stacked value and
    derivative rows on the encoder it is given, solved by one Ridge."""

    def fit_core(
        fam: Family, resolved: dict[str, Any], encoder: TableEncoder, data: pd.DataFrame,
        Z: np.ndarray,
    ) -> LinearCore:
        rows, targets, weights = stack_rows(Z, f, jac, encoder, data, columns, grad_weight)
        ridge = Ridge(alpha=float(resolved["alpha"]), fit_intercept=False, solver="cholesky")
        squeeze = targets.shape[1] == 1  # one output: 1-D like the label fit, for predict()
        ridge.fit(rows, targets[:, 0] if squeeze else targets, sample_weight=weights)
        z_mean = Z.mean(axis=0)
        coef = np.atleast_2d(ridge.coef_)
        intercept = f.mean(axis=0) - coef @ z_mean
        # Put the profiled intercept back so that ridge.predict(Z) is the model's output.
        ridge.intercept_ = float(intercept[0]) if squeeze else intercept
        return LinearCore(task, ridge, z_mean)

    return fit_core


def stack_rows(
    Z: np.ndarray,
    f: np.ndarray,
    jac: np.ndarray,
    encoder: TableEncoder,
    X: pd.DataFrame,
    columns: Sequence[str],
    grad_weight: float,
) -> tuple[sparse.csr_matrix, np.ndarray, np.ndarray]:
    """The stacked system (rows, targets (m, K'), sample weights) without the intercept.

    Value rows: Z and f centred over the rows, weight 1. Derivative rows: for each usable
    (row, column), d(design)/d(column) in that column's design columns, target J, weight lambda.
    """
    n, d = Z.shape
    # A column's slope reaches its own design columns and its pair terms, from either side.
    own, second = encoder.derivatives(X)
    differentiable = encoder.differentiable_inputs()
    groups, partners = encoder.groups_, encoder.partners_
    blocks = [sparse.csr_matrix(Z - Z.mean(axis=0))]
    targets = [f - f.mean(axis=0)]
    weights = [np.ones(n)]
    for pos, name in enumerate(columns):  # one block per input column, vectorised over rows
        index = encoder.feature_index(name)
        if not differentiable[index] or grad_weight == 0:
            continue
        design = np.flatnonzero((groups == index) | (partners == index))
        slope = np.where(groups[design] == index, own[:, design], second[:, design])
        present = ~np.isnan(to_float(X[name], encoder.features_[index].dtype))
        rows = np.flatnonzero(np.isfinite(jac[:, pos, :]).all(axis=1) & present)
        if rows.size == 0:
            continue
        data = slope[rows].ravel()
        row_ids = np.repeat(np.arange(rows.size), design.size)
        col_ids = np.tile(design, rows.size)
        blocks.append(sparse.csr_matrix((data, (row_ids, col_ids)), shape=(rows.size, d)))
        targets.append(jac[rows, pos, :])
        weights.append(np.full(rows.size, float(grad_weight)))
    return (
        sparse.vstack(blocks, format="csr"),
        np.concatenate(targets, axis=0),
        np.concatenate(weights),
    )
