"""Maximum-likelihood search over log-parameters, shared by the BTYD fits."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import numpy as np
from scipy.optimize import minimize

from scoring.valuemodel.arrays import FloatArray
from scoring.valuemodel.errors import ValueModelError

Objective = Callable[..., tuple[float, FloatArray]]

# Log-parameters stay inside exp(+-LOG_BOUND) so a wild line-search step cannot overflow.
LOG_BOUND = 30.0
# A fitted parameter outside exp(+-DEGENERATE) (on conditioned data: time in units
# of the longest T, money in units of its mean) means the likelihood is flat
# towards a boundary: its maximum is a limit of the model. exp(10) is 22,000: a
# Gamma or Beta shape that large leaves every customer with the same rate or
# drop-out probability to within 1 %; exp(-10) is 0.00005.
DEGENERATE = 10.0
# Largest gradient (of a mean log-likelihood per customer) accepted as a maximum.
GRADIENT_TOLERANCE = 1e-5


class NotConvergedError(ValueModelError):
    """The optimiser stopped where the gradient is not small, or at a non-finite point."""


class AtBoundaryError(ValueModelError):
    """The likelihood rises towards the edge of the parameter space: no interior maximum.

    `log_params` is where the search stopped (on the fit's conditioned scale);
    `directions` names each parameter that ran off: (index, +1 towards
    infinity or -1 towards 0).
    """

    def __init__(self, message: str, log_params: FloatArray, directions: tuple[tuple[int, int], ...]) -> None:
        super().__init__(message)
        self.log_params = log_params
        self.directions = directions


def minimize_log_params(
    objective: Objective, size: int, args: tuple[Any, ...], start: float = 0.1, names: Sequence[str] = ()
) -> FloatArray:
    """Minimise `objective(log_params, *args) -> (value, gradient)` from all-`start`.

    Starts where lifetimes does (every log-parameter 0.1). Runs L-BFGS-B with
    tight tolerances, then one more pass from its answer. Raises NotConvergedError
    when the result is not finite or the gradient is not small, and
    AtBoundaryError when a parameter ran off towards 0 or infinity (`names` name
    them in its message).
    """
    point = np.full(size, start)
    for _ in range(2):
        point = _run(objective, point, args)
    value, grad = objective(point, *args)
    if not (np.isfinite(value) and np.all(np.isfinite(point)) and np.all(np.isfinite(grad))):
        raise NotConvergedError("the likelihood is not finite where the search stopped")
    directions = tuple((i, int(np.sign(v))) for i, v in enumerate(point) if abs(float(v)) > DEGENERATE)
    if directions:
        raise AtBoundaryError(f"no interior maximum: {describe_directions(directions, names)}", point, directions)
    if float(np.abs(grad).max()) > GRADIENT_TOLERANCE:
        raise NotConvergedError("the maximum-likelihood search did not converge")
    return point


def describe_directions(directions: tuple[tuple[int, int], ...], names: Sequence[str] = ()) -> str:
    """'a -> 0, b -> infinity' for ((2, -1), (3, +1)) and names (r, alpha, a, b)."""
    parts = []
    for index, sign in directions:
        name = names[index] if index < len(names) else f"parameter {index}"
        parts.append(f"{name} -> {'infinity' if sign > 0 else '0'}")
    return ", ".join(parts)


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
