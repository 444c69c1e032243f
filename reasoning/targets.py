"""What a core fits besides labels: a teacher's outputs as soft targets, in one convention.

A teacher gives probabilities or raw outputs in its own class order; a core fits raw outputs
with the classes sorted like ``ReasoningModel.fit`` sorts labels (one output for regression and
binary, the class-1 log-odds m; K centred outputs for multiclass). These functions turn the one
into the other, for values (``fit_soft``) and for Jacobians (``fit_sobolev``) alike.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
import pandas as pd
from scipy.special import logit

from reasoning.families.base import mirror_binary
from reasoning.labels import label_array

TEACHER_EPS = 1e-6
"""Teacher probabilities are clipped to [eps, 1 - eps] before logs: soft targets stay finite."""


def teacher_logits(proba: Any, eps: float = TEACHER_EPS) -> np.ndarray:
    """Teacher probabilities (n, K), or (n,) of class 1, as soft targets for ``fit_soft``.

    Binary: the mirrored class-1 log-odds [-m, m] with m = logit(p1), p1 clipped to
    [eps, 1 - eps] (sigmoid(m) gives p1 back). Multiclass: log(p) with p clipped the same way,
    centred per row (a row's shift changes no softmax, and centring makes the targets
    comparable across rows). Columns stay in the teacher's class order.
    """
    p = np.asarray(proba, dtype=np.float64)
    if p.ndim == 1:
        p = np.column_stack([1.0 - p, p])
    if p.ndim != 2 or p.shape[1] < 2:
        raise ValueError(f"proba must be (n, n_classes) with n_classes >= 2, got shape {p.shape}")
    if not (np.isfinite(p).all() and (p >= 0.0).all() and (p <= 1.0).all()):
        raise ValueError("teacher probabilities must be finite numbers in [0, 1]")
    if not 0.0 < eps < 0.5:
        raise ValueError(f"eps must be in (0, 0.5), got {eps!r}")
    q = np.clip(p, eps, 1.0 - eps)
    if p.shape[1] == 2:
        return mirror_binary(logit(q[:, 1]))
    logs = np.log(q)
    return logs - logs.mean(axis=1, keepdims=True)


def teacher_outputs(
    raw: Any, classes: Sequence[Any] | None, n_rows: int, lead: int = 1, what: str = "targets"
) -> tuple[np.ndarray | None, np.ndarray]:
    """(sorted classes, outputs a core fits) from raw outputs given in the teacher's class order.

    ``classes`` None means regression. The classes are sorted like ``fit`` sorts labels and the
    last axis is permuted to match (a binary m of ``classes[1]`` flips sign if the two swap);
    then ``fitted_outputs`` applies. Works for values (``lead=1``) and Jacobians (``lead=2``).
    """
    a = np.asarray(raw, dtype=np.float64)
    if a.ndim < lead or a.shape[0] != n_rows:
        raise ValueError(f"{what} must have one row per input row ({n_rows}), got {a.shape}")
    if classes is None:
        return None, fitted_outputs(a, 1, lead, what)
    ordered, order = _teacher_classes(classes)
    if a.ndim == lead + 1 and a.shape[-1] == len(ordered):
        a = a[..., order]
    elif a.ndim == lead and len(ordered) == 2 and order[0] == 1:
        a = -a  # m was the log-odds of classes[1], which sorts first
    return ordered, fitted_outputs(a, len(ordered), lead, what)


def fitted_outputs(raw: Any, n_outputs: int, lead: int = 1, what: str = "targets") -> np.ndarray:
    """Raw outputs per class, in this project's convention, -> what a core fits, on the last axis.

    ``lead`` is the number of leading axes (1 for values (n, ...), 2 for Jacobians
    (n, p, ...)); ``n_outputs`` is K (1 for regression). Regression and binary fit one output:
    the value, or the class-1 log-odds m, given alone (no last axis) or as (..., 1); binary also
    accepts the mirrored pair (..., 2) [-m, m] and takes m. Multiclass fits K outputs, centred
    over the classes (NaN stays NaN).
    """
    a = np.asarray(raw, dtype=np.float64)
    if a.ndim == lead:
        a = a[..., None]
    fits = 1 if n_outputs <= 2 else n_outputs
    width = a.shape[-1] if a.ndim == lead + 1 else -1
    if width not in (fits, n_outputs):
        raise ValueError(
            f"{what} must have shape (n, ...) with {lead} leading axes and then "
            f"{n_outputs} output(s); got {a.shape}"
        )
    if n_outputs == 2 and width == 2:
        mirrored = np.isclose(a[..., 0], -a[..., 1], rtol=1e-9, atol=1e-9, equal_nan=True)
        if not mirrored.all():
            raise ValueError(
                f"binary {what} must be the class-1 log-odds m (one per row) or the mirrored "
                "pair [-m, m] (as decision_function and teacher_logits give); for softmax "
                "logits (l0, l1) pass m = l1 - l0"
            )
        return a[..., 1:2]
    if n_outputs > 2:
        return a - a.mean(axis=-1, keepdims=True)
    return a


def _teacher_classes(classes: Sequence[Any]) -> tuple[np.ndarray, np.ndarray]:
    """The teacher's classes sorted like ``fit`` sorts labels, and the permutation that did it."""
    values = label_array(pd.Series(list(classes)))
    if len(values) < 2:
        raise ValueError("classification needs at least two classes")
    try:
        order = np.argsort(values, kind="stable")
    except TypeError as exc:
        raise ValueError(f"class labels must be mutually comparable: {exc}") from None
    ordered = values[order]
    if len(np.unique(ordered)) != len(ordered):
        raise ValueError(f"classes must be distinct, got {list(classes)}")
    return ordered, order
