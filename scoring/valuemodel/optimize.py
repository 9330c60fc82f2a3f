"""Maximum-likelihood search over log-parameters, shared by the BTYD fits."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np
from scipy.optimize import minimize

from scoring.valuemodel.arrays import FloatArray
from scoring.valuemodel.errors import ValueModelError

Objective = Callable[..., tuple[float, FloatArray]]

# Log-parameters stay inside exp(+-LOG_BOUND) so a wild line-search step cannot overflow.
LOG_BOUND = 30.0
# A fitted parameter outside exp(+-DEGENERATE) (on conditioned data) means the
# likelihood is flat towards a boundary: too little history to identify the model.
DEGENERATE = 14.0


def minimize_log_params(objective: Objective, size: int, args: tuple[Any, ...], start: float = 0.1) -> FloatArray:
    """Minimise `objective(log_params, *args) -> (value, gradient)` from all-`start`.

    Starts where lifetimes does (every log-parameter 0.1). Runs L-BFGS-B with
    tight tolerances, then one more pass from its answer; raises
    ValueModelError when the result is not finite, the gradient is not small
    or a parameter ran off towards 0 or infinity (degenerate data).
    """
    point = np.full(size, start)
    for _ in range(2):
        point = _run(objective, point, args)
    value, grad = objective(point, *args)
    if not (np.isfinite(value) and np.all(np.isfinite(point))) or float(np.abs(grad).max()) > 1e-5:
        raise ValueModelError(f"maximum-likelihood fit did not converge (gradient {grad})")
    if float(np.abs(point).max()) > DEGENERATE:
        raise ValueModelError(f"degenerate maximum-likelihood fit (log-parameters {point}): too little history?")
    return point


def _run(objective: Objective, start: FloatArray, args: tuple[Any, ...]) -> FloatArray:
    bounds = [(-LOG_BOUND, LOG_BOUND)] * start.size
    result = minimize(
        objective,
        start,
        args=args,
        jac=True,
        method="L-BFGS-B",
        bounds=bounds,
        options={"maxiter": 5000, "ftol": 1e-15, "gtol": 1e-10},
    )
    return np.asarray(result.x, dtype=np.float64)
