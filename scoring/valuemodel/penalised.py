"""Penalised BG/NBD fits: ours (ridge on the log-parameters) and lifetimes' (`penalizer_coef`).

Both work on the conditioned scale the unpenalised fit uses (time divided by
the largest T, so alpha is in units of the observation span), add the
penalty to the mean negative log-likelihood per customer, and return alpha
in the input unit.

- `fit_bgnbd_ridge`: strength x sum(log-parameters^2), a log-normal prior
  centred on r = alpha = a = b = 1 (alpha: one observation span). It pulls
  each parameter back from 0 *and* from infinity, so a likelihood that runs
  to the edge of the parameter space gets an interior answer.
- `fit_bgnbd_as_lifetimes`: what a lifetimes user gets: `BetaGeoFitter(
  penalizer_coef=c)`, whose penalty is c x sum(parameters^2), fitted with
  scipy's BFGS from every log-parameter at 0.1 and tolerance 1e-7, with c
  raised tenfold from 0.001 until the optimiser reports success. That penalty
  pulls every parameter towards 0, so where the drop-out has no interior
  maximum it does not make one (a and b still run towards 0); it is the
  baseline `evaluate` compares with, not a fit the value model uses.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import numpy.typing as npt
from scipy.optimize import minimize

from scoring.valuemodel.arrays import FloatArray, as_float
from scoring.valuemodel.bgnbd import (
    PARAM_NAMES,
    BgNbdData,
    BgNbdParams,
    check_summary,
    data_negative_log_likelihood,
    fit_bgnbd,
    negative_log_likelihood,
)
from scoring.valuemodel.errors import ValueModelError
from scoring.valuemodel.optimize import minimize_log_params

LIFETIMES_PENALIZERS = (0.001, 0.01, 0.1, 1.0, 10.0)
LIFETIMES_TOLERANCE = 1e-7  # BaseFitter._fit's default `tol`
LIFETIMES_START = 0.1  # every log-parameter


def ridge_objective(
    log_params: FloatArray, x: FloatArray, t_x: FloatArray, T: FloatArray, strength: float
) -> tuple[float, FloatArray]:
    """Mean negative log-likelihood + strength x |log-parameters|^2, and its gradient."""
    return data_ridge_objective(log_params, BgNbdData.of(x, t_x, T), strength)


def data_ridge_objective(log_params: FloatArray, data: BgNbdData, strength: float) -> tuple[float, FloatArray]:
    """`ridge_objective` of prepared arrays (what `fit_bgnbd_ridge` minimises)."""
    value, grad = data_negative_log_likelihood(log_params, data)
    return value + strength * float(log_params @ log_params), grad + 2.0 * strength * log_params


def lifetimes_objective(
    log_params: FloatArray, x: FloatArray, t_x: FloatArray, T: FloatArray, penalizer: float
) -> tuple[float, FloatArray]:
    """lifetimes' penalised objective: mean negative log-likelihood + penalizer x |parameters|^2."""
    value, grad = negative_log_likelihood(log_params, x, t_x, T)
    with np.errstate(over="ignore"):  # BFGS may try a wild step; an infinite value just rejects it
        params = np.exp(log_params)
        penalty = penalizer * float(params @ params)
    return value + penalty, grad + 2.0 * penalizer * params**2


def fit_bgnbd_ridge(x: npt.ArrayLike, t_x: npt.ArrayLike, T: npt.ArrayLike, strength: float) -> BgNbdParams:
    """The BG/NBD maximising the likelihood less `strength` x |log-parameters|^2 (conditioned scale).

    Raises ValueModelError as `fit_bgnbd` (a weak penalty may still leave a
    parameter beyond `optimize.DEGENERATE`).
    """
    if strength <= 0:
        raise ValueModelError("the ridge strength must be > 0")
    xs, txs, Ts = as_float(x), as_float(t_x), as_float(T)
    check_summary(xs, txs, Ts)
    scale = 1.0 / float(Ts.max())
    args = (BgNbdData.of(xs, txs * scale, Ts * scale), strength)
    log_p = minimize_log_params(data_ridge_objective, 4, args, names=PARAM_NAMES)
    r, alpha, a, b = (float(v) for v in np.exp(log_p))
    return BgNbdParams(r, alpha / scale, a, b)


def fit_bgnbd_as_lifetimes(
    x: npt.ArrayLike, t_x: npt.ArrayLike, T: npt.ArrayLike, penalizers: Sequence[float] = LIFETIMES_PENALIZERS
) -> tuple[BgNbdParams, float]:
    """The BG/NBD as lifetimes would need to fit it, and the penalizer_coef that took (0: none).

    The unpenalised fit when it has an interior maximum (`fit_bgnbd`, equal to
    lifetimes' own there); else the first of `penalizers` with which lifetimes'
    optimiser reports success. Raises ValueModelError when none does.
    """
    xs, txs, Ts = as_float(x), as_float(t_x), as_float(T)
    try:
        return fit_bgnbd(xs, txs, Ts), 0.0
    except ValueModelError:
        check_summary(xs, txs, Ts)  # bad input is not a convergence problem
    scale = 1.0 / float(Ts.max())
    for penalizer in penalizers:
        with np.errstate(all="ignore"):
            result = minimize(
                lifetimes_objective,
                np.full(4, LIFETIMES_START),
                args=(xs, txs * scale, Ts * scale, penalizer),
                jac=True,
                method="BFGS",
                tol=LIFETIMES_TOLERANCE,
            )
        if result.success and np.all(np.isfinite(result.x)):
            r, alpha, a, b = (float(v) for v in np.exp(result.x))
            if min(r, alpha, a, b) > 0:  # exp() of a log-parameter far below -745 underflows to 0
                return BgNbdParams(r, alpha / scale, a, b), penalizer
    raise ValueModelError(
        f"lifetimes' penalised BG/NBD fit does not converge with penalizer_coef up to {penalizers[-1]:g}"
    )
