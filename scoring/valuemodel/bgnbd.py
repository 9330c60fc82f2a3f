"""BG/NBD purchase-count model (Fader, Hardie & Lee 2005, "Counting your customers").

Inputs per customer: x repeat purchase days, t_x days from first to last
purchase day, T days from first purchase day to the observation end
(0 <= t_x <= T). Rates are per day when the inputs are in days; `alpha` has
the time unit of the inputs. Formulas follow lifetimes' `BetaGeoFitter`.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
import numpy.typing as npt
from scipy.special import digamma, expit, gammaln, hyp2f1

from scoring.valuemodel.arrays import FloatArray, as_float
from scoring.valuemodel.errors import ValueModelError
from scoring.valuemodel.mapping import positive_fields
from scoring.valuemodel.optimize import minimize_log_params


@dataclass(frozen=True)
class BgNbdParams:
    """Gamma(r, alpha) purchase rates and Beta(a, b) drop-out probabilities; all > 0."""

    r: float
    alpha: float
    a: float
    b: float

    def to_dict(self) -> dict[str, float]:
        """JSON-safe mapping of the four parameters."""
        return {"r": self.r, "alpha": self.alpha, "a": self.a, "b": self.b}

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> BgNbdParams:
        """Inverse of `to_dict`; raises ValueModelError on missing or non-positive values."""
        return cls(**positive_fields(data, ("r", "alpha", "a", "b")))


def _loglik_terms(p: FloatArray, x: FloatArray, t_x: FloatArray, T: FloatArray) -> tuple[FloatArray, ...]:
    """Per-customer log-likelihood and the shares w3, w4 of its two branches."""
    r, alpha, a, b = p
    repeat = x > 0
    a1 = gammaln(r + x) - gammaln(r) + r * np.log(alpha)
    a2 = gammaln(a + b) + gammaln(b + x) - gammaln(b) - gammaln(a + b + x)
    a3 = -(r + x) * np.log(alpha + T)
    a4 = np.log(a) - np.log(b + np.maximum(x, 1.0) - 1.0) - (r + x) * np.log(alpha + t_x)
    a4 = np.where(repeat, a4, -np.inf)
    tail = np.logaddexp(a3, a4)
    return a1 + a2 + tail, np.exp(a3 - tail), np.exp(a4 - tail)


def _gradient(
    p: FloatArray, x: FloatArray, t_x: FloatArray, T: FloatArray, w3: FloatArray, w4: FloatArray
) -> FloatArray:
    """d(per-customer log-likelihood)/d(r, alpha, a, b), summed over customers."""
    r, alpha, a, b = p
    d_r = digamma(r + x) - digamma(r) + np.log(alpha) - w3 * np.log(alpha + T) - w4 * np.log(alpha + t_x)
    d_alpha = r / alpha - (r + x) * (w3 / (alpha + T) + w4 / (alpha + t_x))
    d_a = digamma(a + b) - digamma(a + b + x) + w4 / a
    d_b = digamma(a + b) + digamma(b + x) - digamma(b) - digamma(a + b + x) - w4 / (b + np.maximum(x, 1.0) - 1.0)
    return np.array([d_r.sum(), d_alpha.sum(), d_a.sum(), d_b.sum()])


def negative_log_likelihood(
    log_params: FloatArray, x: FloatArray, t_x: FloatArray, T: FloatArray
) -> tuple[float, FloatArray]:
    """Mean negative log-likelihood and its gradient in log-parameters (log r, alpha, a, b)."""
    p = np.exp(log_params)
    ll, w3, w4 = _loglik_terms(p, x, t_x, T)
    grad = _gradient(p, x, t_x, T, w3, w4) * p
    return float(-ll.mean()), -grad / x.size


def fit_bgnbd(x: npt.ArrayLike, t_x: npt.ArrayLike, T: npt.ArrayLike) -> BgNbdParams:
    """Unpenalised maximum-likelihood BG/NBD fit.

    Time is rescaled so the largest T is 1 while fitting (as lifetimes does),
    which conditions the optimiser; `alpha` is returned in the input unit.
    Raises ValueModelError when there are no customers or no repeat purchases.
    """
    xs, txs, Ts = as_float(x), as_float(t_x), as_float(T)
    _check_summary(xs, txs, Ts)
    scale = 1.0 / float(Ts.max())
    log_p = minimize_log_params(negative_log_likelihood, 4, (xs, txs * scale, Ts * scale))
    r, alpha, a, b = (float(v) for v in np.exp(log_p))
    return BgNbdParams(r=r, alpha=alpha / scale, a=a, b=b)


def _check_summary(x: FloatArray, t_x: FloatArray, T: FloatArray) -> None:
    if not (x.size == t_x.size == T.size) or x.size == 0:
        raise ValueModelError("BG/NBD fit needs equally long, non-empty x, t_x and T")
    if np.any(x < 0) or np.any(t_x < 0) or np.any(t_x > T) or not np.any(x > 0):
        raise ValueModelError("BG/NBD fit needs x >= 0, 0 <= t_x <= T and some x > 0")
    if float(T.max()) <= 0:
        raise ValueModelError("BG/NBD fit needs some T > 0")


def p_alive(params: BgNbdParams, x: npt.ArrayLike, t_x: npt.ArrayLike, T: npt.ArrayLike) -> FloatArray:
    """P(customer still alive at T | x, t_x, T), in [0, 1]; 1 when x == 0 (lifetimes' convention)."""
    xs, txs, Ts = as_float(x), as_float(t_x), as_float(T)
    r, alpha, a, b = params.r, params.alpha, params.a, params.b
    log_odds_dead = (r + xs) * np.log((alpha + Ts) / (alpha + txs)) + np.log(a / (b + np.maximum(xs, 1.0) - 1.0))
    return np.where(xs == 0, 1.0, expit(-log_odds_dead))


def expected_purchases(
    params: BgNbdParams, t: npt.ArrayLike, x: npt.ArrayLike, t_x: npt.ArrayLike, T: npt.ArrayLike
) -> FloatArray:
    """E[repeat purchase days in (T, T + t] | x, t_x, T], eq. (10) of Fader et al. 2005.

    `t` (same time unit as T, >= 0) broadcasts against the customer arrays; 0 at t == 0.
    """
    ts, xs, txs, Ts = as_float(t), as_float(x), as_float(t_x), as_float(T)
    r, alpha, a, b = params.r, params.alpha, params.a, params.b
    sign, log_hyp = _log_hyp2f1(r + xs, b + xs, a + b + xs - 1.0, ts / (alpha + Ts + ts))
    survive = sign * np.exp(log_hyp + (r + xs) * np.log((alpha + Ts) / (alpha + Ts + ts)))
    if_alive = (a + b + xs - 1.0) / (a - 1.0) * (1.0 - survive)
    # lifetimes divides by 1 + a/(b+x-1) ((alpha+T)/(alpha+t_x))^(r+x), which is 1 / P(alive).
    result: FloatArray = np.maximum(if_alive * p_alive(params, xs, txs, Ts), 0.0)  # no -1e-17 from rounding
    return result


def p_no_purchase(
    params: BgNbdParams, t: npt.ArrayLike, x: npt.ArrayLike, t_x: npt.ArrayLike, T: npt.ArrayLike
) -> FloatArray:
    """P(no repeat purchase day in (T, T + t] | x, t_x, T), in [0, 1]; 1 at t == 0.

    A customer who is dead at T never buys again; one who is alive buys with
    Poisson rate lambda, whose posterior given alive is Gamma(r + x, alpha + T),
    and cannot drop out before the next purchase. So
    P = 1 - P(alive) (1 - ((alpha + T) / (alpha + T + t))^(r + x)).
    """
    ts, xs, txs, Ts = as_float(t), as_float(x), as_float(t_x), as_float(T)
    buys_if_alive = -np.expm1(-(params.r + xs) * np.log1p(ts / (params.alpha + Ts)))
    result: FloatArray = 1.0 - p_alive(params, xs, txs, Ts) * buys_if_alive
    return result


def _log_hyp2f1(a: FloatArray, b: FloatArray, c: FloatArray, z: FloatArray) -> tuple[FloatArray, FloatArray]:
    """Sign and log |2F1(a, b; c; z)| for 0 <= z < 1, via Euler's transformation where 2F1 overflows.

    2F1 is negative for some c < 0, which a fit with a + b < 1 gives one-time
    buyers (c = a + b - 1); the sign is kept apart so that no log of a
    negative number turns the expectation into NaN.
    """
    with np.errstate(divide="ignore", over="ignore", invalid="ignore"):
        direct = hyp2f1(a, b, c, z)
        euler = hyp2f1(c - a, c - b, c, z)
        overflow = ~np.isfinite(direct)
        value = np.where(overflow, euler, direct)
        log_abs = np.log(np.abs(value)) + np.where(overflow, (c - a - b) * np.log1p(-z), 0.0)
    return np.sign(value), log_abs
