"""The ReasoningModel: a scikit-learn estimator over DataFrames that explains every prediction.

It owns what is common to all families: input-column checks, labels and classes, the mapping from
design columns back to input columns, and the three ways to fit (labels, a teacher's soft
targets, a DiffModel teacher's values and Jacobians). The family (reasoning.families) owns the
fitted core on the design matrix; ``reasoning.targets`` turns teacher outputs into what a core
fits; ``reasoning.explanations`` holds the explanations the estimator's methods give.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import numpy as np
import pandas as pd
from sklearn.base import BaseEstimator
from sklearn.utils.validation import check_is_fitted

from reasoning import explanations
from reasoning.encoding import Feature, TableEncoder, infer_dtype
from reasoning.explanations import by_terms
from reasoning.families import Family, FittedCore, Task, differentiable_families, get_family
from reasoning.families.base import TASK_KINDS, CoreFit
from reasoning.interactions import rank_pairs
from reasoning.labels import checked_labels, label_array
from reasoning.sobolev import check_sobolev, sobolev_core, sobolev_targets
from reasoning.targets import fitted_outputs, teacher_outputs

Residuals = Callable[[FittedCore, np.ndarray], tuple[np.ndarray, np.ndarray | None]]
"""(fitted core, design matrix) -> what the core left unexplained, (n,) or (n, outputs), and
the loss's curvature there (None: squared error), for ``rank_pairs``."""
NOT_FITTED = "this ReasoningModel is not fitted yet; call fit first"
"""``check_is_fitted``'s message; its NotFittedError is a ValueError, as callers expect."""


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


class ReasoningModel(BaseEstimator):
    """A tabular model whose outputs are ``base_value`` plus one contribution per input column.

    ``family`` is a registered family name (see ``reasoning.families``), ``task_kind`` is
    "regression" or "classification", ``params`` the family's hyperparameters (missing ones take
    the family's defaults). Same data, params and random_state give the same model.

    Three ways to fit, one fitted state: ``fit`` on labels, ``fit_soft`` on a classification
    teacher's per-class raw outputs (distillation), and ``fit_sobolev`` on a DiffModel
    teacher's values and Jacobians. Differentiable families add ``jacobian``.
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
        labels = checked_labels(y, len(X))
        classes: np.ndarray | None = None
        if self.task_kind == "regression":
            target = pd.to_numeric(labels, errors="coerce").to_numpy("float64", na_value=np.nan)
            if not np.isfinite(target).all():
                raise ValueError("regression labels must be finite numbers")
            task = Task("regression")
        else:
            values = label_array(labels)
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
        order of ``classes`` (the teacher's classes): ``reasoning.targets.teacher_logits(proba)``
        makes them from probabilities. Binary: (n,) class-1 log-odds m of ``classes[1]``, or the
        mirrored (n, 2) [-m, m]; multiclass: (n, K) logits, centred per row here (softmax ignores
        a row's shift).
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
            _left_of(outputs, task),
        )

    def fit_sobolev(
        self,
        X: pd.DataFrame,
        values: Any,
        jacobians: Any,
        classes: Sequence[Any] | None = None,
        *,
        grad_weight: float = 1.0,
        jacobian_columns: Sequence[str] | None = None,
    ) -> ReasoningModel:
        """Sobolev training: fit a DiffModel teacher's values and Jacobians (``linear``, ``gam``).

        ``values``: raw outputs, (n,) for regression; for classification per class in the order
        of ``classes`` (binary (n,) log-odds m of ``classes[1]`` or mirrored (n, 2) [-m, m];
        multiclass (n, K) logits, centred per row together with their Jacobians).
        ``jacobians``: (n, q[, K]) derivatives of those outputs w.r.t. the input columns
        ``jacobian_columns`` (default: all of X's columns, in order), in each column's own units
        (timestamps per day). NaN entries are ignored, as are boolean and categorical columns
        (no slope) and rows where the input is missing (the teacher's slope there is not the
        slope at our imputed value). A derivative row is used when it is given for every
        output. ``grad_weight`` is lambda. One least-squares solve (``reasoning.sobolev``); the
        result is an ordinary fitted model (explain, jacobian, pickle).
        """
        check_sobolev(self.family, grad_weight)
        classification = self.task_kind == "classification"
        if classification and classes is None:
            raise ValueError(
                "classification needs the teacher's classes, in the order of its outputs")
        X = self._checked_frame(X)
        ordered, f, jac, columns = sobolev_targets(
            X, values, jacobians, classes if classification else None, jacobian_columns)
        task = Task("regression") if ordered is None else Task("classification", len(ordered))
        return self._fit_with(X, task, ordered, sobolev_core(task, f, jac, columns, grad_weight),
                              _left_of(f, task))

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

        Shared by ``fit``, ``fit_soft`` and ``fit_sobolev`` so that every way of fitting
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
        check_is_fitted(self, msg=NOT_FITTED)
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
        return by_terms(design_contrib, self._group_matrix)

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
        check_is_fitted(self, msg=NOT_FITTED)
        if not self.family_.differentiable:
            valid = differentiable_families()
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

    def explain(
        self, X: pd.DataFrame, top_k: int | None = 5, pairs: bool = False
    ) -> list[dict[str, Any]]:
        """Per row: output, base_value and the top_k reasons by |contribution| (None = all);
        ``pairs=True`` gives pair terms as reasons of their own (``explanations.explain``)."""
        return explanations.explain(self, X, top_k, pairs)

    def global_explanation(
        self, X: pd.DataFrame, max_rows: int = 1000, grid: int = 20
    ) -> dict[str, Any]:
        """Importance and a shape curve per column, each pair's importance and surface, from
        up to ``max_rows`` sampled rows (``explanations.global_explanation``)."""
        return explanations.global_explanation(self, X, max_rows, grid)


def _left_of(outputs: np.ndarray, task: Task) -> Residuals:
    """What a core fitted to raw-output targets left unexplained (squared error: no curvature)."""
    return lambda core, Z: (outputs - fitted_outputs(core.decision(Z), task.n_outputs), None)


def _sum_by(values: np.ndarray, groups: np.ndarray, n_groups: int) -> np.ndarray:
    """(n, m) values summed over columns with the same group -> (n, n_groups)."""
    out = np.zeros((len(values), n_groups))
    np.add.at(out.T, groups, values.T)
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
