"""L2-regularised logistic regression fitted with scipy (no scikit-learn)."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
from scipy.optimize import minimize
from scipy.special import expit, log_expit

from scoring.valuemodel.arrays import FloatArray
from scoring.valuemodel.errors import ValueModelError


def _loss(w: FloatArray, X: FloatArray, y: FloatArray, l2: float) -> tuple[float, FloatArray]:
    """Mean log-loss + l2/2 |coefficients|^2 (intercept w[0] unpenalised) and its gradient."""
    z = w[0] + X @ w[1:]
    loss = -np.mean(y * log_expit(z) + (1.0 - y) * log_expit(-z)) + 0.5 * l2 * float(w[1:] @ w[1:])
    residual = (expit(z) - y) / y.size
    grad = np.concatenate(([residual.sum()], X.T @ residual + l2 * w[1:]))
    return float(loss), grad


def fit_logistic(X: FloatArray, y: FloatArray, l2: float, signs: Sequence[int] | None = None) -> FloatArray:
    """Weights [intercept, coefficients...] of P(y = 1 | X); X should be standardised.

    `signs`, one per column: +1 keeps the coefficient >= 0, -1 keeps it <= 0,
    0 leaves it free. Raises ValueModelError unless both labels occur or when
    the optimiser fails.
    """
    if y.size == 0 or y.min() == y.max():
        raise ValueModelError("logistic fit needs both labels in the training data")
    start = np.zeros(X.shape[1] + 1)
    start[0] = np.log(y.mean() / (1.0 - y.mean()))
    limits = {1: (0.0, None), -1: (None, 0.0), 0: (None, None)}
    bounds = [(None, None)] + [limits[int(np.sign(s))] for s in (signs or [0] * X.shape[1])]
    result = minimize(
        _loss,
        start,
        args=(X, y, l2),
        jac=True,
        method="L-BFGS-B",
        bounds=bounds,
        options={"maxiter": 2000, "gtol": 1e-9},
    )
    if not np.all(np.isfinite(result.x)):
        raise ValueModelError("logistic fit did not converge")
    return np.asarray(result.x, dtype=np.float64)


def predict_logistic(weights: FloatArray, X: FloatArray) -> FloatArray:
    """P(y = 1 | X) in [0, 1]."""
    result: FloatArray = expit(weights[0] + X @ weights[1:])
    return result
