"""The ReasoningModel: a scikit-learn estimator over DataFrames that explains every prediction.

It owns what is common to all families: input-column checks, labels and classes, the mapping from
design columns back to input columns, JSON-safe explanations and the global explanation. The
family (reasoning.families) owns the fitted core on the design matrix.
"""

from __future__ import annotations

import datetime as dt
import math
from collections.abc import Callable, Sequence
from typing import Any

import numpy as np
import pandas as pd
from sklearn.base import BaseEstimator

from reasoning.encoding import (
    Feature,
    TableEncoder,
    days_to_timestamp,
    infer_dtype,
    to_float,
)
from reasoning.families import FAMILIES, Family, FittedCore, Task, get_family
from reasoning.families.base import TASK_KINDS, mirror_binary
from reasoning.interactions import rank_pairs

_CHUNK_CELLS = 2_000_000  # design cells x outputs per batch in the global explanation
TEACHER_EPS = 1e-6
"""Teacher probabilities are clipped to [eps, 1 - eps] before logs: soft targets stay finite."""

CoreFit = Callable[[Family, dict[str, Any], TableEncoder, pd.DataFrame, np.ndarray], FittedCore]
"""(family, resolved params, fitted encoder, input frame, design matrix) -> fitted core."""
Residuals = Callable[[FittedCore, np.ndarray], tuple[np.ndarray, np.ndarray | None]]
"""(fitted core, design matrix) -> what the core left unexplained, (n,) or (n, outputs), and
the loss's curvature there (None: squared error), for ``rank_pairs``."""


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
        return mirror_binary(np.log(q[:, 1] / (1.0 - q[:, 1])))
    logs = np.log(q)
    return logs - logs.mean(axis=1, keepdims=True)


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


class ColumnMismatchError(ValueError):
    """Input columns differ from the training columns; the service answers 422 with both lists."""

    def __init__(self, missing: Sequence[str], unexpected: Sequence[str]) -> None:
        self.missing = list(missing)
        self.unexpected = list(unexpected)
        parts = []
        if self.missing:
            parts.append(f"missing columns: {self.missing}")
        if self.unexpected:
            parts.append(f"unexpected columns: {self.unexpected}")
        super().__init__("; ".join(parts))


def json_scalar(value: Any) -> Any:
    """A cell as JSON: None for any missing marker, ISO strings for times, Python scalars."""
    if value is None:
        return None
    if isinstance(value, np.generic) and not isinstance(value, np.datetime64 | np.timedelta64):
        value = value.item()
    if isinstance(value, str | bool):
        return value
    try:
        if pd.isna(value):
            return None
    except (TypeError, ValueError):
        pass
    if isinstance(value, np.datetime64):
        return pd.Timestamp(value).isoformat()
    if isinstance(value, dt.datetime | dt.date | dt.time):
        return value.isoformat()
    if isinstance(value, float):
        return value if math.isfinite(value) else None
    if isinstance(value, int):
        return value
    return str(value)


class ReasoningModel(BaseEstimator):
    """A tabular model whose outputs are ``base_value`` plus one contribution per input column.

    ``family`` is a registered family name (see ``reasoning.families``), ``task_kind`` is
    "regression" or "classification", ``params`` the family's hyperparameters (missing ones take
    the family's defaults). Same data, params and random_state give the same model.

    Three ways to fit, one fitted state: ``fit`` on labels, ``fit_soft`` on a classification
    teacher's per-class raw outputs (distillation), and ``reasoning.sobolev.fit_sobolev`` on a
    DiffModel teacher's values and Jacobians. Differentiable families add ``jacobian``.
    """

    def __init__(
        self,
        family: str = "gam",
        task_kind: str = "regression",
        params: dict[str, Any] | None = None,
        random_state: int | None = 42,
    ) -> None:
        self.family = family
        self.task_kind = task_kind
        self.params = params
        self.random_state = random_state

    # ----- fitting -------------------------------------------------------------------------

    def fit(self, X: pd.DataFrame, y: Any) -> ReasoningModel:
        """Infer column dtypes, encode, and fit the family's core on (X, y)."""
        X = self._checked_frame(X)
        labels = _label_series(y, len(X))
        classes: np.ndarray | None = None
        if self.task_kind == "regression":
            target = pd.to_numeric(labels, errors="coerce").to_numpy("float64", na_value=np.nan)
            if not np.isfinite(target).all():
                raise ValueError("regression labels must be finite numbers")
            task = Task("regression")
        else:
            values = _label_values(labels)
            try:
                classes = np.unique(values)
            except TypeError as exc:
                raise ValueError(f"class labels must be mutually comparable: {exc}") from None
            task = Task("classification", len(classes))
            target = np.searchsorted(classes, values)
        def residuals(core: FittedCore, Z: np.ndarray) -> tuple[np.ndarray, np.ndarray | None]:
            if task.kind == "regression":
                return target - core.decision(Z)[:, 0], None
            p = core.proba(Z)  # the log loss: gradient y - p, curvature p (1 - p)
            gap, curvature = np.eye(task.n_classes)[target] - p, p * (1 - p)
            return (gap[:, 1], curvature[:, 1]) if task.is_binary else (gap, curvature)

        return self._fit_with(
            X,
            task,
            classes,
            lambda family, params, _enc, _frame, Z: family.fit(
                Z, target, task, params, self.random_state
            ),
            residuals,
        )

    def fit_soft(self, X: pd.DataFrame, targets: Any, classes: Sequence[Any]) -> ReasoningModel:
        """Distillation: fit a teacher's raw outputs per class, then act as a classifier.

        ``targets`` are the teacher's raw outputs in this project's convention, columns in the
        order of ``classes`` (the teacher's classes): ``teacher_logits(proba)`` makes them from
        probabilities. Binary: (n,) class-1 log-odds m of ``classes[1]``, or the mirrored (n, 2)
        [-m, m]; multiclass: (n, K) logits, centred per row here (softmax ignores a row's shift).
        Each family fits them as regression targets (one multi-output Ridge for linear/gam, one
        network for mlp, one regressor per output otherwise); afterwards ``classes_`` are the
        teacher's classes (sorted, like ``fit``), ``decision_function`` gives the student's
        per-class raw outputs (binary [-m, m] with m its class-1 log-odds), ``predict_proba``
        their sigmoid / softmax, and the reasons sum to them as usual.
        """
        if self.task_kind != "classification":
            raise ValueError(
                "fit_soft fits classification students (task_kind='classification'); "
                "a regression teacher's values are plain labels for fit"
            )
        if classes is None:
            raise ValueError("fit_soft needs the teacher's classes, in the order of its outputs")
        X = self._checked_frame(X)
        ordered, outputs = teacher_outputs(targets, classes, len(X), lead=1, what="targets")
        assert ordered is not None
        if not np.isfinite(outputs).all():
            raise ValueError("soft targets must be finite (clip probabilities: teacher_logits)")
        task = Task("classification", len(ordered))
        return self._fit_with(
            X,
            task,
            ordered,
            lambda family, params, _enc, _frame, Z: family.fit_soft(
                Z, outputs, task, params, self.random_state
            ),
            lambda core, Z: (outputs - fitted_outputs(core.decision(Z), task.n_outputs), None),
        )

    def _checked_frame(self, X: Any) -> pd.DataFrame:
        """The checks every fit starts with: known family and task kind, a non-empty frame."""
        get_family(self.family)
        if self.task_kind not in TASK_KINDS:
            raise ValueError(f"task_kind must be one of {list(TASK_KINDS)}, got {self.task_kind!r}")
        X = _as_frame(X)
        if len(X) == 0 or X.shape[1] == 0:
            raise ValueError("cannot fit on an empty table (need at least one row and one column)")
        return X

    def _fit_with(
        self, X: pd.DataFrame, task: Task, classes: np.ndarray | None, fit_core: CoreFit,
        residuals: Residuals,
    ) -> ReasoningModel:
        """Resolve params, encode X, let ``fit_core`` fit the core, and store the fitted state.

        Shared by ``fit``, ``fit_soft`` and ``reasoning.sobolev`` so that every way of fitting
        leaves the same attributes behind. A family with pair terms (GA²M) is fitted twice:
        additive first, then with the pairs that best explain what that fit left over
        (``residuals``; ``reasoning.interactions``) added to the encoding.
        """
        family = get_family(self.family)
        params = family.resolve_params(self.params)
        features = [Feature(name, infer_dtype(X[name])) for name in X.columns]
        encoder = family.make_encoder(params).fit(X, features)
        Z = encoder.transform(X)
        core = fit_core(family, params, encoder, X, Z)
        if n_pairs := family.pair_terms(params):
            contrib = np.abs(core.contributions(Z)).sum(axis=2) @ encoder.input_weights()
            left, curvature = residuals(core, Z)
            pairs = rank_pairs(X, features, left, contrib.mean(axis=0), n_pairs, curvature)
            if pairs:
                Z = encoder.add_pairs(X, pairs).transform(X)
                core = fit_core(family, params, encoder, X, Z)
        if classes is None:
            if hasattr(self, "classes_"):
                del self.classes_
        else:
            self.classes_: np.ndarray = classes
        self.core_: FittedCore = core
        self.task_: Task = task
        self.params_: dict[str, Any] = params
        self.encoder_: TableEncoder = encoder
        self.features_: list[Feature] = features
        self.n_features_in_: int = len(features)
        self.feature_names_in_: np.ndarray = np.array([f.name for f in features], dtype=object)
        self._group_matrix = encoder.input_weights()
        return self

    def __sklearn_is_fitted__(self) -> bool:
        return hasattr(self, "core_")

    @property
    def family_(self) -> Family:
        """The family object (looked up by name, so pickles hold no registry state)."""
        return get_family(self.family)

    @property
    def n_outputs_(self) -> int:
        """K: 1 for regression, the number of classes for classification."""
        return self.task_.n_outputs

    # ----- inputs --------------------------------------------------------------------------

    def check_columns(self, X: pd.DataFrame) -> pd.DataFrame:
        """X with exactly the training columns, in training order; else ColumnMismatchError."""
        self._require_fitted()
        X = _as_frame(X)
        names = [f.name for f in self.features_]
        known = set(names)
        present = set(X.columns)
        missing = [n for n in names if n not in present]
        unexpected = [c for c in X.columns if c not in known]
        if missing or unexpected:
            raise ColumnMismatchError(missing, unexpected)
        return X[names]

    def _design(self, X: pd.DataFrame) -> tuple[pd.DataFrame, np.ndarray]:
        frame = self.check_columns(X)
        return frame, self.encoder_.transform(frame)

    def _require_fitted(self) -> None:
        if not self.__sklearn_is_fitted__():
            raise ValueError("this ReasoningModel is not fitted yet; call fit first")

    # ----- outputs -------------------------------------------------------------------------

    def _raw(self, Z: np.ndarray) -> np.ndarray:
        if len(Z) == 0:
            return np.zeros((0, self.n_outputs_))
        return np.asarray(self.core_.decision(Z), dtype=np.float64)

    def _design_contributions(self, Z: np.ndarray) -> np.ndarray:
        if len(Z) == 0:
            return np.zeros((0, Z.shape[1], self.n_outputs_))
        return np.asarray(self.core_.contributions(Z), dtype=np.float64)

    def _to_inputs(self, design_contrib: np.ndarray) -> np.ndarray:
        """Sum one-hot pieces, spline bases and missing indicators back to input columns, and
        half of each pair term to each of its two (``TableEncoder.input_weights``)."""
        return _by_terms(design_contrib, self._group_matrix)

    def _predicted_index(self, raw: np.ndarray) -> np.ndarray:
        if self.task_.kind == "regression":
            return np.zeros(len(raw), dtype=np.intp)
        return np.argmax(raw, axis=1)

    def decision_function(self, X: pd.DataFrame) -> np.ndarray:
        """Raw outputs: (n,) values for regression, (n, K) class log-odds / logits otherwise."""
        _, Z = self._design(X)
        raw = self._raw(Z)
        return raw[:, 0] if self.task_.kind == "regression" else raw

    def predict(self, X: pd.DataFrame) -> np.ndarray:
        """Predicted values, or the class label whose raw output is largest."""
        _, Z = self._design(X)
        raw = self._raw(Z)
        if self.task_.kind == "regression":
            return raw[:, 0]
        return self.classes_[self._predicted_index(raw)]

    def predict_proba(self, X: pd.DataFrame) -> np.ndarray:
        """Class probabilities (n, K), columns in ``classes_`` order."""
        if self.task_.kind != "classification":
            raise ValueError("predict_proba is only defined for classification models")
        _, Z = self._design(X)
        if len(Z) == 0:
            return np.zeros((0, self.n_outputs_))
        return np.asarray(self.core_.proba(Z), dtype=np.float64)

    def jacobian(self, X: pd.DataFrame) -> np.ndarray:
        """Analytic d raw output / d input column (n, n_features, K), for differentiable families.

        K as in ``decision_function`` (1 for regression; binary [-dm, dm]). Each derivative is in
        its column's own units (timestamps per day, as encoded); at the imputed value where the
        input is missing; NaN for boolean and categorical columns, which have no slope. The
        family gives d output / d design column, the encoder d design / d input (the
        standardizer's 1 / scale, or the spline basis' derivative): the chain rule joins them.
        """
        self._require_fitted()
        if not self.family_.differentiable:
            valid = [name for name, fam in FAMILIES.items() if fam.differentiable]
            raise ValueError(
                f"family {self.family!r} is not differentiable; Jacobians exist for: {valid}"
            )
        frame, Z = self._design(X)
        if len(Z) == 0:
            return np.zeros((0, self.n_features_in_, self.n_outputs_))
        design_grad = np.asarray(self.core_.design_jacobian(Z), dtype=np.float64)
        encoder = self.encoder_
        out = np.zeros((len(Z), self.n_features_in_, self.n_outputs_))
        own, partner = encoder.derivatives(frame)
        # Each design column moves with its source input; a pair column with its partner too.
        for inputs, slope in ((encoder.groups_, own), (encoder.partners_, partner)):
            touched = np.flatnonzero(inputs >= 0)
            chain = design_grad[:, touched, :] * slope[:, touched, None]
            for k in range(self.n_outputs_):
                out[:, :, k] += _sum_by(chain[:, :, k], inputs[touched], self.n_features_in_)
        out[:, ~encoder.differentiable_inputs(), :] = np.nan
        return out

    def contributions(self, X: pd.DataFrame) -> tuple[np.ndarray, np.ndarray]:
        """(base (K,), contributions (n, n_features, K)) per input column, in raw-output space."""
        _, Z = self._design(X)
        base = np.asarray(self.core_.base_value, dtype=np.float64).copy()
        return base, self._to_inputs(self._design_contributions(Z))

    # ----- explanations --------------------------------------------------------------------

    def _term_weights(self) -> np.ndarray:
        """(n_design, n_features + n_pairs): each design column's contribution to one term,
        an input column's own (its pair terms left out) or a whole pair term."""
        encoder = self.encoder_
        weights = np.zeros((encoder.n_design, self.n_features_in_ + len(encoder.pairs_)))
        own = np.flatnonzero(encoder.partners_ < 0)
        weights[own, encoder.groups_[own]] = 1.0
        for k in range(len(encoder.pairs_)):
            weights[encoder.pair_indices(k), self.n_features_in_ + k] = 1.0
        return weights

    def explain(
        self, X: pd.DataFrame, top_k: int | None = 5, pairs: bool = False
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
        frame, Z = self._design(X)
        base = np.asarray(self.core_.base_value, dtype=np.float64)
        design_contrib = self._design_contributions(Z)
        # The family convention makes this the raw output (to 1e-6) without a second pass.
        raw = base + design_contrib.sum(axis=1)
        pred = self._predicted_index(raw)
        names: list[Any] = [f.name for f in self.features_]
        values = [_column_json(frame[f.name], f.dtype) for f in self.features_]
        if pairs and self.encoder_.pairs_:
            contrib = _by_terms(design_contrib, self._term_weights())
            position = {name: j for j, name in enumerate(names)}
            for a, b in self.encoder_.pair_names():
                names.append((a, b))
                values.append([[va, vb] for va, vb in zip(values[position[a]],
                                                           values[position[b]], strict=True)])
        else:
            contrib = self._to_inputs(design_contrib)
        rules = self.core_.rules(Z, self.encoder_.design_) if len(Z) else None
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
            if self.task_.kind == "classification":
                entry["class"] = json_scalar(self.classes_[k])
            if rules is not None:
                entry["rule"] = rules[i]
            out.append(entry)
        return out

    def global_explanation(
        self, X: pd.DataFrame, max_rows: int = 1000, grid: int = 20
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
        frame, Z = self._design(X)
        if min(max_rows, grid) < 1:
            raise ValueError("max_rows and grid must be at least 1")
        if len(Z) > max_rows:
            rng = np.random.default_rng(0 if self.random_state is None else self.random_state)
            rows = np.sort(rng.choice(len(Z), size=max_rows, replace=False))
            frame, Z = frame.iloc[rows], Z[rows]
        raw = self._raw(Z)
        pred = self._predicted_index(raw)
        design_contrib = self._design_contributions(Z)
        contrib = self._to_inputs(design_contrib)
        picked = contrib[np.arange(len(Z)), :, pred]
        importance = {
            f.name: float(np.abs(picked[:, j]).mean()) if len(Z) else 0.0
            for j, f in enumerate(self.features_)
        }
        importance = dict(sorted(importance.items(), key=lambda kv: -kv[1]))
        if self.task_.kind == "regression":
            curve_values = contrib[:, :, 0]
        elif self.n_outputs_ == 2:
            curve_values = contrib[:, :, 1]
        else:
            curve_values = picked
        shapes = {
            f.name: self._shape(f, frame[f.name], curve_values[:, j], contrib[:, j, :], grid)
            for j, f in enumerate(self.features_)
        }
        explanation: dict[str, Any] = {"importance": importance, "shapes": shapes}
        if self.encoder_.pairs_:
            terms = _by_terms(design_contrib, self._term_weights())
            strength = np.abs(terms[np.arange(len(Z)), self.n_features_in_:, pred]).mean(axis=0)
            shown = int(np.bincount(pred).argmax()) if len(pred) else 0
            explanation["pairs"] = sorted(
                ({"columns": list(names), "importance": float(strength[k]),
                  "surface": self._surface(k, frame, shown)}
                 for k, names in enumerate(self.encoder_.pair_names())),
                key=lambda term: -term["importance"])
        return explanation

    def _surface(self, k: int, frame: pd.DataFrame, shown: int, size: int = 12
                 ) -> dict[str, Any]:
        """The k-th pair term on a grid of its two columns' values: levels for categories
        and booleans, quantiles of the rows for numbers; other columns play no part."""
        encoder = self.encoder_
        first, second = (encoder.features_[i] for i in encoder.pairs_[k])
        axes = [_grid_values(f, frame[f.name], size) for f in (first, second)]
        grid = pd.DataFrame({first.name: np.repeat(axes[0], len(axes[1])),
                             second.name: np.tile(axes[1], len(axes[0]))})
        # An additive core's design columns contribute each on its own: the other columns'
        # values do not matter, and only the pair's own are summed.
        Z = np.zeros((len(grid), encoder.n_design))
        cols = encoder.pair_indices(k)
        Z[:, cols] = encoder.pair_design(k, grid)
        values = self._design_contributions(Z)[:, cols, :].sum(axis=1)  # (cells, K)
        shape = (len(axes[0]), len(axes[1]))
        out_k = 0 if self.task_.kind == "regression" else 1 if self.n_outputs_ == 2 else shown
        surface: dict[str, Any] = {
            "x": [_grid_json(first, v) for v in axes[0]],
            "y": [_grid_json(second, v) for v in axes[1]],
            "contribution": values[:, out_k].reshape(shape).tolist(),
        }
        if self.task_.kind == "classification" and self.n_outputs_ > 2:
            surface["class"] = json_scalar(self.classes_[shown])
            surface["classes"] = [json_scalar(c) for c in self.classes_]
            surface["by_class"] = [values[:, c].reshape(shape).tolist()
                                   for c in range(self.n_outputs_)]
        return surface

    def _shape(
        self,
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
            xs = [self._x_json(feature, c) for c in centers]
        shape: dict[str, Any] = {
            "x": xs,
            "contribution": [float(curve[g].mean()) for g in groups],
            "count": [int(g.size) for g in groups],
        }
        if self.task_.kind == "classification" and self.n_outputs_ > 2:
            shape["classes"] = [json_scalar(c) for c in self.classes_]
            shape["by_class"] = [
                [float(per_class[g, k].mean()) for g in groups] for k in range(self.n_outputs_)
            ]
        return shape

    @staticmethod
    def _x_json(feature: Feature, center: float) -> Any:
        if feature.dtype == "timestamp":
            return days_to_timestamp(float(center)).isoformat()
        if feature.dtype == "integer" and float(center).is_integer():
            return int(center)
        return float(center)


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


def _grid_json(feature: Feature, value: Any) -> Any:
    if feature.dtype in ("categorical", "boolean", "timestamp"):
        return json_scalar(value)
    return ReasoningModel._x_json(feature, float(value))


def _by_terms(design_contrib: np.ndarray, weights: np.ndarray) -> np.ndarray:
    """(n, d, K) design-column contributions -> (n, terms, K) with a (d, terms) weighting."""
    return np.ascontiguousarray(
        np.matmul(design_contrib.transpose(0, 2, 1), weights).transpose(0, 2, 1))


def _reason(name: str | tuple[str, str], value: Any, contribution: float) -> dict[str, Any]:
    """One reason: an input column's, or a pair term's (named "a & b", both in "columns")."""
    if isinstance(name, tuple):
        return {"column": " & ".join(name), "columns": list(name), "value": value,
                "contribution": contribution}
    return {"column": name, "value": value, "contribution": contribution}


def _sum_by(values: np.ndarray, groups: np.ndarray, n_groups: int) -> np.ndarray:
    """(n, m) values summed over columns with the same group -> (n, n_groups)."""
    out = np.zeros((len(values), n_groups))
    np.add.at(out.T, groups, values.T)
    return out


def _column_json(series: pd.Series, dtype: str) -> list[Any]:
    """A column's cells as JSON; integer columns read back as floats (from JSON) stay ints."""
    out = [json_scalar(v) for v in series.astype(object)]
    if dtype == "integer":
        out = [int(v) if isinstance(v, float) and v.is_integer() else v for v in out]
    return out


def _as_frame(X: Any) -> pd.DataFrame:
    """A DataFrame with string column names, no duplicates."""
    if not isinstance(X, pd.DataFrame):
        raise TypeError(f"expected a pandas DataFrame, got {type(X).__name__}")
    names = [str(c) for c in X.columns]
    dupes = sorted({n for n in names if names.count(n) > 1})
    if dupes:
        raise ValueError(f"duplicate column names: {dupes}")
    if list(X.columns) != names:
        X = X.set_axis(names, axis=1)
    return X


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


def _teacher_classes(classes: Sequence[Any]) -> tuple[np.ndarray, np.ndarray]:
    """The teacher's classes sorted like ``fit`` sorts labels, and the permutation that did it."""
    values = _label_values(pd.Series(list(classes)))
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


def _label_series(y: Any, n_rows: int) -> pd.Series:
    labels = y.reset_index(drop=True) if isinstance(y, pd.Series) else pd.Series(np.asarray(y))
    if labels.ndim != 1 or len(labels) != n_rows:
        raise ValueError(f"y must be one label per row: got {len(labels)} labels for {n_rows} rows")
    if labels.isna().any():
        raise ValueError(f"y has {int(labels.isna().sum())} missing labels; drop those rows first")
    return labels


def _label_values(labels: pd.Series) -> np.ndarray:
    """Labels as a numpy array that keeps their type (bool, int, float or str)."""
    dtype = labels.dtype
    if pd.api.types.is_bool_dtype(dtype):
        return labels.to_numpy(dtype=bool)
    if pd.api.types.is_integer_dtype(dtype):
        return labels.to_numpy(dtype=np.int64)
    if pd.api.types.is_float_dtype(dtype):
        return labels.to_numpy(dtype=np.float64)
    return labels.astype(object).to_numpy(dtype=object)
