"""A multi-layer perceptron (same-server black box) with an analytic gradient: a DiffModel.

The raw output is the network's last pre-activation: the value for regression (fitted on a
standardized target, mapped back), the class-1 log-odds m for binary (sklearn's single logistic
unit, mirrored to [-m, m]) and the pre-softmax logits for multiclass. The gradient is backprop
through ``coefs_`` / ``intercepts_`` by hand (sklearn exposes no gradient w.r.t. the inputs).

Reasons are integrated gradients (Sundararajan et al. 2017) from the training mean of the design
matrix: (z - z_mean) times the average gradient along the straight path, by a midpoint Riemann sum
with ``IG_STEPS`` points. The sum leaves a small completeness residual
(output - base - sum of attributions, from the quadrature and the network's kinks); it is spread
over the columns in proportion to |attribution| (evenly if all are 0), so the reasons sum to the
output exactly, as every family's do, and keep their signs whenever the residual is small.
"""

from __future__ import annotations

import warnings
from collections.abc import Callable, Mapping
from typing import Any, ClassVar

import numpy as np
from scipy.special import expit
from sklearn.compose import TransformedTargetRegressor
from sklearn.exceptions import ConvergenceWarning
from sklearn.neural_network import MLPClassifier, MLPRegressor
from sklearn.preprocessing import StandardScaler

from reasoning.encoding import NumericMode
from reasoning.families.base import (
    Family,
    FittedCore,
    Task,
    column_means,
    mirror_binary,
    require_positive,
)

IG_STEPS = 64
"""Midpoint Riemann steps of integrated gradients: the residual left is O(1 / steps^2) where
the network is smooth."""

_CHUNK_CELLS = 4_000_000  # path points x widest layer x outputs per integrated-gradients batch

_ACTIVATIONS: dict[str, Callable[[np.ndarray], np.ndarray]] = {
    "identity": lambda z: z,
    "logistic": expit,
    "tanh": np.tanh,
    "relu": lambda z: np.maximum(z, 0.0),
}
# Derivatives written in terms of the activation's output a, which the forward pass keeps.
_SLOPES: dict[str, Callable[[np.ndarray], np.ndarray]] = {
    "identity": np.ones_like,
    "logistic": lambda a: a * (1.0 - a),
    "tanh": lambda a: 1.0 - a * a,
    "relu": lambda a: (a > 0.0).astype(np.float64),
}


class MlpCore(FittedCore):
    """A fitted network as plain float64 weights: forward pass, backprop, integrated gradients."""

    def __init__(
        self,
        task: Task,
        estimator: TransformedTargetRegressor | MLPClassifier,
        network: MLPRegressor | MLPClassifier,
        z_mean: np.ndarray,
        y_mean: np.ndarray,
        y_scale: np.ndarray,
    ) -> None:
        self.task = task
        self.estimator = estimator
        self.activation = str(network.activation)
        self.coefs = [np.asarray(w, dtype=np.float64) for w in network.coefs_]
        self.intercepts = [np.asarray(b, dtype=np.float64) for b in network.intercepts_]
        self.y_mean = np.asarray(y_mean, dtype=np.float64).reshape(-1)
        self.y_scale = np.asarray(y_scale, dtype=np.float64).reshape(-1)
        self.z_mean = z_mean
        self.steps = IG_STEPS
        self.base_value = self._finish(self._output(z_mean[None, :]))[0]

    def _finish(self, out: np.ndarray) -> np.ndarray:
        return mirror_binary(out[..., 0]) if self.task.is_binary else out

    def _hidden(self, Z: np.ndarray) -> list[np.ndarray]:
        """Activations of every hidden layer."""
        act = _ACTIVATIONS[self.activation]
        layers, a = [], Z
        for w, b in zip(self.coefs[:-1], self.intercepts[:-1], strict=True):
            a = act(a @ w + b)
            layers.append(a)
        return layers

    def _output(self, Z: np.ndarray) -> np.ndarray:
        """Fitted outputs (n, K'): the last pre-activation, in the target's units."""
        hidden = self._hidden(Z)
        last = hidden[-1] if hidden else Z
        return (last @ self.coefs[-1] + self.intercepts[-1]) * self.y_scale + self.y_mean

    def _gradient(self, Z: np.ndarray) -> np.ndarray:
        """d fitted output / d design column (n, d, K'), by backprop."""
        hidden = self._hidden(Z)
        slope = _SLOPES[self.activation]
        grad = np.broadcast_to(self.coefs[-1] * self.y_scale, (len(Z), *self.coefs[-1].shape))
        for w, a in zip(reversed(self.coefs[:-1]), reversed(hidden), strict=True):
            grad = np.matmul(w, slope(a)[:, :, None] * grad)
        return np.ascontiguousarray(grad)

    def decision(self, Z: np.ndarray) -> np.ndarray:
        return self._finish(self._output(Z))

    def design_jacobian(self, Z: np.ndarray) -> np.ndarray:
        return self._finish(self._gradient(Z))

    def integrated_gradients(self, Z: np.ndarray) -> np.ndarray:
        """Plain integrated gradients (n, d, K') from ``z_mean``, before the completeness fix."""
        n, d = Z.shape
        diff = Z - self.z_mean
        alphas = (np.arange(self.steps) + 0.5) / self.steps
        widest = max([d, *(w.shape[1] for w in self.coefs)])
        k = self.coefs[-1].shape[1]
        chunk = max(1, _CHUNK_CELLS // (self.steps * widest * k))
        out = np.empty((n, d, k))
        for start in range(0, n, chunk):  # row blocks bound the memory; each block is one batch
            block = diff[start : start + chunk]
            path = self.z_mean + alphas[:, None, None] * block[None, :, :]
            grad = self._gradient(path.reshape(-1, d)).reshape(self.steps, len(block), d, k)
            out[start : start + chunk] = block[:, :, None] * grad.mean(axis=0)
        return out

    def contributions(self, Z: np.ndarray) -> np.ndarray:
        ig = self.integrated_gradients(Z)
        base = self._output(self.z_mean[None, :])
        residual = self._output(Z) - base - ig.sum(axis=1)  # (n, K')
        size = np.abs(ig)
        total = size.sum(axis=1, keepdims=True)
        share = np.where(total > 0.0, size / np.where(total > 0.0, total, 1.0), 1.0 / Z.shape[1])
        return self._finish(ig + residual[:, None, :] * share)


def hidden_layers(value: Any) -> tuple[int, ...]:
    """``hidden_layer_sizes`` as a tuple of positive ints (JSON and Tune hand over lists, ints)."""
    if isinstance(value, str):
        value = [v for v in value.replace("-", ",").split(",") if v.strip()]
    try:
        sizes = [value] if isinstance(value, int | float | np.number) else list(value)
        out = tuple(int(float(s)) for s in sizes)
        whole = all(float(s) == n for s, n in zip(sizes, out, strict=True))
    except (TypeError, ValueError):
        out, whole = (), False
    if not out or not whole or min(out) < 1:
        raise ValueError(
            f"hyperparameter 'hidden_layer_sizes' must be one or more positive integers, "
            f"got {value!r}"
        )
    return out


class MlpFamily(Family):
    """sklearn MLP (adam, no early stopping, seeded) on the "standard" encoding."""

    name: ClassVar[str] = "mlp"
    numeric_encoding: ClassVar[NumericMode] = "standard"
    defaults: ClassVar[Mapping[str, Any]] = {
        "hidden_layer_sizes": (32,),
        "activation": "relu",
        "alpha": 1e-3,
        "learning_rate_init": 3e-3,
        "max_iter": 500,
    }

    def resolve_params(self, params: Mapping[str, Any] | None) -> dict[str, Any]:
        resolved = super().resolve_params(params)
        resolved["hidden_layer_sizes"] = hidden_layers(resolved["hidden_layer_sizes"])
        return resolved

    def validate_params(self, params: Mapping[str, Any]) -> None:
        require_positive(params, "alpha", "learning_rate_init", "max_iter")
        if params["activation"] not in _ACTIVATIONS:
            raise ValueError(
                f"hyperparameter 'activation' must be one of {sorted(_ACTIVATIONS)}, "
                f"got {params['activation']!r}"
            )

    def _network(self, cls: type, params: Mapping[str, Any], random_state: int | None) -> Any:
        return cls(
            hidden_layer_sizes=hidden_layers(params["hidden_layer_sizes"]),
            activation=str(params["activation"]),
            alpha=float(params["alpha"]),
            learning_rate_init=float(params["learning_rate_init"]),
            max_iter=int(params["max_iter"]),
            early_stopping=False,  # a validation split would make the fit depend on row order
            random_state=random_state,
        )

    def _fit_values(
        self,
        Z: np.ndarray,
        y: np.ndarray,
        task: Task,
        params: Mapping[str, Any],
        random_state: int | None,
    ) -> MlpCore:
        """A regression network on (n,) or (n, K') targets, standardized so scale does not matter.

        One network with K' outputs serves soft targets (sklearn's MLP is multi-output).
        """
        estimator = TransformedTargetRegressor(
            regressor=self._network(MLPRegressor, params, random_state),
            transformer=StandardScaler(),
        )
        target = np.asarray(y, dtype=np.float64)
        if target.ndim == 2 and target.shape[1] == 1:
            target = target[:, 0]  # one output: sklearn wants a 1-D target
        with warnings.catch_warnings():
            # max_iter caps the work on purpose; the validation loss judges the result.
            warnings.simplefilter("ignore", ConvergenceWarning)
            estimator.fit(Z, target)
        scaler = estimator.transformer_
        z_mean = column_means(Z)
        return MlpCore(task, estimator, estimator.regressor_, z_mean, scaler.mean_, scaler.scale_)

    def fit(
        self,
        Z: np.ndarray,
        y: np.ndarray,
        task: Task,
        params: Mapping[str, Any],
        random_state: int | None,
    ) -> MlpCore:
        if task.kind == "regression":
            return self._fit_values(Z, y, task, params, random_state)
        network = self._network(MLPClassifier, params, random_state)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", ConvergenceWarning)
            network.fit(Z, np.asarray(y, dtype=np.intp))
        z_mean = column_means(Z)
        return MlpCore(task, network, network, z_mean, np.zeros(1), np.ones(1))

    def fit_soft(
        self,
        Z: np.ndarray,
        targets: np.ndarray,
        task: Task,
        params: Mapping[str, Any],
        random_state: int | None,
    ) -> MlpCore:
        """One multi-output regression network on the teacher's log-odds / logits."""
        return self._fit_values(Z, targets, task, params, random_state)
