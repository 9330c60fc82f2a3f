"""BG/NBD purchase-count model (Fader, Hardie & Lee 2005, "Counting your customers").

Inputs per customer: x repeat purchase days, t_x days from first to last
purchase day, T days from first purchase day to the observation end
(0 <= t_x <= T). Rates are per day when the inputs are in days; `alpha` has
the time unit of the inputs. Formulas follow lifetimes' `BetaGeoFitter`.

`a == 0` is the model's limit as the drop-out probabilities' Beta(a, b)
collapses onto 0 (a -> 0, or b -> infinity): nobody drops out, and the
BG/NBD becomes the NBD (Ehrenberg 1959). P(alive) is then 1 and the
expected purchase days in the next t days are (r + x) t / (alpha + T);
`BgNbdParams.nbd` builds it and `b` is meaningless there (stored as 0).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import numpy as np
import numpy.typing as npt
from scipy.special import betaincc, betaln, digamma, expit, gammaln, hyp2f1, log_expit, xlog1py

from scoring.valuemodel.arrays import FloatArray, as_float
from scoring.valuemodel.errors import ValueModelError
from scoring.valuemodel.mapping import positive_fields
from scoring.valuemodel.optimize import AtBoundaryError, minimize_log_params


@dataclass(frozen=True)
class BgNbdParams:
    """Gamma(r, alpha) purchase rates and Beta(a, b) drop-out probabilities.

    All four > 0, except the no-drop-out limit (`nbd`): a == b == 0.
    """

    r: float
    alpha: float
    a: float
    b: float

    @classmethod
    def nbd(cls, r: float, alpha: float) -> BgNbdParams:
        """The limit with no drop-out (the NBD): P(alive) = 1."""
        return cls(r, alpha, 0.0, 0.0)

    @property
    def drops_out(self) -> bool:
        """False for the NBD limit (`a == 0`)."""
        return self.a > 0

    def to_dict(self) -> dict[str, Any]:
        """JSON-safe mapping of the four parameters and the kind ("bgnbd" or "nbd")."""
        kind = "bgnbd" if self.drops_out else "nbd"
        return {"kind": kind, "r": self.r, "alpha": self.alpha, "a": self.a, "b": self.b}

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> BgNbdParams:
        """Inverse of `to_dict` (a mapping without "kind" is a BG/NBD, as formats 1-3 wrote it);
        raises ValueModelError on missing or non-positive values or an unknown kind."""
        kind = data.get("kind", "bgnbd") if isinstance(data, dict) else None
        if kind == "nbd":
            return cls.nbd(**positive_fields(data, ("r", "alpha")))
        if kind != "bgnbd":
            raise ValueModelError(f"BG/NBD parameters: unknown kind {kind!r} (expected 'bgnbd' or 'nbd')")
        return cls(**positive_fields(data, ("r", "alpha", "a", "b")))


@dataclass(frozen=True)
class Distinct:
    """An array held as its distinct values and, per element, the index of its value: `values[index]` is the
    array. A function applied element by element to `values` and gathered by `index` gives the very floats it
    gives on the array (the same operation on the same double), at the cost of the distinct values only.

    A BTYD summary has few distinct values per column (x counts days; t_x and T are whole days, scaled by one
    factor), so the likelihood's special functions (log-gamma, digamma, log) are evaluated on hundreds of
    values instead of one per customer. The inputs hold no -0.0 and no NaN (`check_summary`).
    """

    values: FloatArray
    index: npt.NDArray[np.intp]

    @classmethod
    def of(cls, array: FloatArray) -> Distinct:
        values, index = np.unique(array, return_inverse=True)
        return cls(values, index.reshape(array.shape))


@dataclass(frozen=True)
class BgNbdData:
    """The arrays (x, t_x, T) of a BG/NBD likelihood, each with its distinct values (`Distinct`); built once
    per fit, read by every evaluation of the objective."""

    x: FloatArray
    t_x: FloatArray
    T: FloatArray
    dx: Distinct
    dt_x: Distinct
    dT: Distinct

    @classmethod
    def of(cls, x: FloatArray, t_x: FloatArray, T: FloatArray) -> BgNbdData:
        return cls(x, t_x, T, Distinct.of(x), Distinct.of(t_x), Distinct.of(T))


@dataclass(frozen=True)
class _Terms:
    """Per-customer log-likelihood, the shares w3, w4 of its two branches, and the pieces the gradient reuses."""

    ll: FloatArray
    w3: FloatArray
    w4: FloatArray
    log_alpha_T: FloatArray  # log(alpha + T)
    log_alpha_tx: FloatArray  # log(alpha + t_x)


def _loglik_terms(p: FloatArray, data: BgNbdData) -> _Terms:
    """Per-customer log-likelihood and the shares w3, w4 of its two branches.

    Each term is the per-customer formula (lifetimes' A1..A4) evaluated on the distinct values of the
    column(s) it depends on and gathered (`Distinct`): the same floats as on the full arrays.
    """
    r, alpha, a, b = p
    ux, ix = data.dx.values, data.dx.index
    a1 = gammaln(r + ux) - gammaln(r) + r * np.log(alpha)
    a2 = gammaln(a + b) + gammaln(b + ux) - gammaln(b) - gammaln(a + b + ux)
    log_alpha_T = np.log(alpha + data.dT.values)[data.dT.index]
    log_alpha_tx = np.log(alpha + data.dt_x.values)[data.dt_x.index]
    r_x = (r + ux)[ix]
    a3 = -r_x * log_alpha_T
    a4 = (np.log(a) - np.log(b + np.maximum(ux, 1.0) - 1.0))[ix] - r_x * log_alpha_tx
    a4 = np.where(data.x > 0, a4, -np.inf)
    tail = np.logaddexp(a3, a4)
    return _Terms((a1 + a2)[ix] + tail, np.exp(a3 - tail), np.exp(a4 - tail), log_alpha_T, log_alpha_tx)


def _gradient(p: FloatArray, data: BgNbdData, terms: _Terms) -> FloatArray:
    """d(per-customer log-likelihood)/d(r, alpha, a, b), summed over customers (terms on distinct values, as
    in `_loglik_terms`)."""
    r, alpha, a, b = p
    ux, ix = data.dx.values, data.dx.index
    w3, w4 = terms.w3, terms.w4
    d_r = (digamma(r + ux) - digamma(r) + np.log(alpha))[ix] - w3 * terms.log_alpha_T - w4 * terms.log_alpha_tx
    alpha_T = (alpha + data.dT.values)[data.dT.index]
    alpha_tx = (alpha + data.dt_x.values)[data.dt_x.index]
    d_alpha = r / alpha - (r + ux)[ix] * (w3 / alpha_T + w4 / alpha_tx)
    d_a = (digamma(a + b) - digamma(a + b + ux))[ix] + w4 / a
    d_b = (digamma(a + b) + digamma(b + ux) - digamma(b) - digamma(a + b + ux))[ix] - w4 / (
        b + np.maximum(ux, 1.0) - 1.0
    )[ix]
    return np.array([d_r.sum(), d_alpha.sum(), d_a.sum(), d_b.sum()])


def negative_log_likelihood(
    log_params: FloatArray, x: FloatArray, t_x: FloatArray, T: FloatArray
) -> tuple[float, FloatArray]:
    """Mean negative log-likelihood and its gradient in log-parameters (log r, alpha, a, b)."""
    return data_negative_log_likelihood(log_params, BgNbdData.of(x, t_x, T))


def data_negative_log_likelihood(log_params: FloatArray, data: BgNbdData) -> tuple[float, FloatArray]:
    """`negative_log_likelihood` of prepared arrays (what the fits minimise: the distinct values found once)."""
    p = np.exp(log_params)
    terms = _loglik_terms(p, data)
    grad = _gradient(p, data, terms) * p
    return float(-terms.ll.mean()), -grad / data.x.size


PARAM_NAMES = ("r", "alpha", "a", "b")
# An unpenalised fit whose total log-likelihood is less than this above the NBD's
# (its a -> 0 limit) stopped on the flat ridge towards that limit: not an interior maximum.
LIMIT_TOLERANCE = 1e-3


def fit_bgnbd(x: npt.ArrayLike, t_x: npt.ArrayLike, T: npt.ArrayLike) -> BgNbdParams:
    """Unpenalised maximum-likelihood BG/NBD fit: an interior maximum or an error.

    Time is rescaled so the largest T is 1 while fitting (as lifetimes does),
    which conditions the optimiser; `alpha` is returned in the input unit.
    Raises ValueModelError when there are no customers or no repeat purchases,
    `optimize.NotConvergedError` when the search fails, and `optimize.AtBoundaryError`
    when the likelihood has no interior maximum: a parameter ran off, or the
    search stopped on the flat ridge towards a -> 0 (the no-drop-out NBD,
    `fit_nbd`, reaches its likelihood to within `LIMIT_TOLERANCE`).
    `scoring.valuemodel.purchasefit` turns the last two into a result.
    """
    xs, txs, Ts = as_float(x), as_float(t_x), as_float(T)
    check_summary(xs, txs, Ts)
    scale = 1.0 / float(Ts.max())
    args = (BgNbdData.of(xs, txs * scale, Ts * scale),)
    log_p = minimize_log_params(data_negative_log_likelihood, 4, args, names=PARAM_NAMES)
    r, alpha, a, b = (float(v) for v in np.exp(log_p))
    params = BgNbdParams(r=r, alpha=alpha / scale, a=a, b=b)
    _check_beats_its_limit(params, xs, txs, Ts)
    return params


def _check_beats_its_limit(params: BgNbdParams, x: FloatArray, t_x: FloatArray, T: FloatArray) -> None:
    try:
        nbd = fit_nbd(x, t_x, T)
    except ValueModelError:
        return  # the NBD itself has no maximum: nothing to compare with
    gain = float(np.sum(log_likelihood(params, x, t_x, T)) - np.sum(log_likelihood(nbd, x, t_x, T)))
    if gain < LIMIT_TOLERANCE:
        log_p = np.log([params.r, params.alpha * float(T.max()) ** -1, params.a, params.b])
        raise AtBoundaryError(
            f"no interior maximum: a -> 0 (the fit stopped at a = {params.a:.3g}, b = {params.b:.3g}, where "
            f"drop-out adds {max(gain, 0.0):.1e} to the log-likelihood of the NBD without it)",
            log_p,
            ((2, -1),),
        )


def nbd_negative_log_likelihood(log_params: FloatArray, x: FloatArray, T: FloatArray) -> tuple[float, FloatArray]:
    """Mean negative log-likelihood of the NBD (the BG/NBD with a -> 0) and its gradient in (log r, alpha).

    Per customer: log Gamma(r + x) - log Gamma(r) + r log alpha - (r + x) log(alpha + T),
    the BG/NBD's A1 + A3 (its A2 -> 0 and its drop-out branch A4 -> -infinity).
    """
    r, alpha = np.exp(log_params)
    ll = _nbd_loglik(r, alpha, x, T)
    d_r = digamma(r + x) - digamma(r) + np.log(alpha) - np.log(alpha + T)
    d_alpha = r / alpha - (r + x) / (alpha + T)
    grad = np.array([d_r.sum() * r, d_alpha.sum() * alpha])
    return float(-ll.mean()), -grad / x.size


def fit_nbd(x: npt.ArrayLike, t_x: npt.ArrayLike, T: npt.ArrayLike) -> BgNbdParams:
    """Maximum-likelihood fit of the no-drop-out limit (`BgNbdParams.nbd`); t_x does not enter it.

    Raises ValueModelError (`optimize.AtBoundaryError`, `optimize.NotConvergedError`) as `fit_bgnbd`.
    """
    xs, txs, Ts = as_float(x), as_float(t_x), as_float(T)
    check_summary(xs, txs, Ts)
    scale = 1.0 / float(Ts.max())
    log_p = minimize_log_params(nbd_negative_log_likelihood, 2, (xs, Ts * scale), names=PARAM_NAMES[:2])
    r, alpha = (float(v) for v in np.exp(log_p))
    return BgNbdParams.nbd(r, alpha / scale)


def log_likelihood(params: BgNbdParams, x: npt.ArrayLike, t_x: npt.ArrayLike, T: npt.ArrayLike) -> FloatArray:
    """Per-customer log-likelihood of (x, t_x, T) in the input time unit (the NBD's for the limit)."""
    xs, txs, Ts = as_float(x), as_float(t_x), as_float(T)
    if not params.drops_out:
        return _nbd_loglik(params.r, params.alpha, xs, Ts)
    return _loglik_terms(np.array([params.r, params.alpha, params.a, params.b]), BgNbdData.of(xs, txs, Ts)).ll


def _nbd_loglik(r: float, alpha: float, x: FloatArray, T: FloatArray) -> FloatArray:
    result: FloatArray = gammaln(r + x) - gammaln(r) + r * np.log(alpha) - (r + x) * np.log(alpha + T)
    return result


def check_summary(x: FloatArray, t_x: FloatArray, T: FloatArray) -> None:
    """Raise ValueModelError unless the arrays are a fittable BTYD summary."""
    if not (x.size == t_x.size == T.size) or x.size == 0:
        raise ValueModelError("BG/NBD fit needs equally long, non-empty x, t_x and T")
    if np.any(x < 0) or np.any(t_x < 0) or np.any(t_x > T) or not np.any(x > 0):
        raise ValueModelError("BG/NBD fit needs x >= 0, 0 <= t_x <= T and some x > 0")
    if float(T.max()) <= 0:
        raise ValueModelError("BG/NBD fit needs some T > 0")


def p_alive(params: BgNbdParams, x: npt.ArrayLike, t_x: npt.ArrayLike, T: npt.ArrayLike) -> FloatArray:
    """P(customer still alive at T | x, t_x, T), in [0, 1]; 1 when x == 0 (lifetimes' convention)
    and for the NBD limit."""
    xs, txs, Ts = as_float(x), as_float(t_x), as_float(T)
    if not params.drops_out:
        return np.ones(np.broadcast(xs, txs, Ts).shape)
    return np.where(xs == 0, 1.0, expit(-_log_odds_dead(params, xs, txs, Ts)))


def _log_odds_dead(params: BgNbdParams, x: FloatArray, t_x: FloatArray, T: FloatArray) -> FloatArray:
    """log P(dead at T) / P(alive at T) of a repeat buyer (x > 0; a > 0)."""
    r, alpha, a, b = params.r, params.alpha, params.a, params.b
    result: FloatArray = (r + x) * np.log((alpha + T) / (alpha + t_x)) + np.log(a / (b + np.maximum(x, 1.0) - 1.0))
    return result


def expected_purchases(
    params: BgNbdParams, t: npt.ArrayLike, x: npt.ArrayLike, t_x: npt.ArrayLike, T: npt.ArrayLike
) -> FloatArray:
    """E[repeat purchase days in (T, T + t] | x, t_x, T], eq. (10) of Fader et al. 2005.

    `t` (same time unit as T, >= 0) broadcasts against the customer arrays; 0 at t == 0.
    """
    ts, xs, txs, Ts = as_float(t), as_float(x), as_float(t_x), as_float(T)
    r, alpha, a, b = params.r, params.alpha, params.a, params.b
    if not params.drops_out:  # alive for sure; the rate's posterior is Gamma(r + x, alpha + T)
        nbd: FloatArray = (r + xs) * ts / (alpha + Ts) + 0.0 * txs
        return nbd
    if abs(a - 1.0) < NEAR_ONE:  # 1 - survive would cancel to ~eps / |a - 1| relative: every entry summed below
        if_alive = np.full(np.broadcast_shapes(ts.shape, xs.shape, Ts.shape), np.nan)
    else:
        sign, log_hyp = _log_hyp2f1(r + xs, b + xs, a + b + xs - 1.0, ts / (alpha + Ts + ts))
        with np.errstate(invalid="ignore", over="ignore"):  # a non-finite entry is summed below
            survive = sign * np.exp(log_hyp + (r + xs) * np.log((alpha + Ts) / (alpha + Ts + ts)))
            if_alive = (a + b + xs - 1.0) / (a - 1.0) * (1.0 - survive)
    if not np.all(np.isfinite(if_alive)):  # scipy's 2F1 fails for very large r (nearly equal rates)
        if_alive = _patch_by_sum(params, if_alive, ts, xs, Ts)
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


def _patch_by_sum(params: BgNbdParams, if_alive: FloatArray, t: FloatArray, x: FloatArray, T: FloatArray) -> FloatArray:
    """`if_alive` with each non-finite entry summed directly (`expected_if_alive_by_sum`)."""
    shape = np.broadcast_shapes(if_alive.shape, t.shape, x.shape, T.shape)
    result = np.array(np.broadcast_to(if_alive, shape), dtype=np.float64)
    ts, xs, Ts = (np.broadcast_to(v, shape) for v in (t, x, T))
    for i in zip(*np.nonzero(~np.isfinite(result)), strict=True):
        result[i] = expected_if_alive_by_sum(params, float(ts[i]), float(xs[i]), float(Ts[i]))
    return result


def expected_if_alive_by_sum(params: BgNbdParams, t: float, x: float, T: float) -> float:
    """E[purchase days in (T, T + t] | alive at T] as a sum, for where 2F1 cannot be evaluated.

    An alive customer makes at least k purchases when the Poisson count
    reaches k and they stayed after each of the first k - 1: P(N >= k) =
    P(NB(r + x, (alpha + T) / (alpha + T + t)) >= k) E[(1 - p)^(k - 1)], with
    p ~ Beta(a, b + x), whose moment is B(a, b + x + k - 1) / B(a, b + x).
    E[N] sums P(N >= k) over k up to where the negative binomial tail is gone: from mean + 40 sd + 50 terms
    on, doubled while what is left (at most the tail's P(N >= end) / stay, the Beta moment being at most 1)
    is above 1e-16 of the sum (a small r + x has a long tail: 40 sd once left 1e-6 of the answer out).
    """
    if t <= 0:
        return 0.0
    rp, stay = params.r + x, (params.alpha + T) / (params.alpha + T + t)
    mean = rp * (1.0 - stay) / stay
    sd = math.sqrt(mean / stay)
    end = math.ceil(mean + 40.0 * sd + 50.0)
    while True:
        k = np.arange(1.0, end)
        kept = betaln(params.a, params.b + x + k - 1.0) - betaln(params.a, params.b + x)
        total = float(np.sum(np.exp(nbinom_logsf(k - 1.0, rp, stay) + kept)))
        left = math.exp(float(nbinom_logsf(np.array([end - 1.0]), rp, stay)[0])) / stay
        if left <= 1e-16 * total or end >= _MOST_TERMS:
            return total
        end *= 2


# `expected_purchases` sums instead of its closed form when |a - 1| is below this: the closed form's relative error
# is ~1e-16 / |a - 1| (a = 1 + 1.2e-10 was 4.7e-6 off), the sum's ~1e-15 (a ridge pulls log a towards 0: a to 1).
NEAR_ONE = 1e-6
_MOST_TERMS = 1 << 24  # terms `expected_if_alive_by_sum` stops at (a tail that long: a rate near 0 for years)


def log_p_purchase_days(
    params: BgNbdParams, n: npt.ArrayLike, t: npt.ArrayLike, x: npt.ArrayLike, t_x: npt.ArrayLike, T: npt.ArrayLike
) -> FloatArray:
    """log P(exactly n purchase days in (T, T + t] | x, t_x, T): the held-out likelihood of a fit.

    A customer dead at T makes none. One alive at T restarts the BG/NBD with
    the posterior Gamma(r + x, alpha + T) rate and Beta(a, b + x) drop-out
    (the history's likelihood given alive is (1 - p)^x lambda^x e^(-lambda T)),
    so eq. (8) of Fader et al. 2005 applies with those parameters: n purchases
    and still alive, or a drop-out right after the n-th, which needs at least
    n purchases by t. For the NBD limit it is the negative binomial pmf.
    """
    ns, ts, xs, txs, Ts = as_float(n), as_float(t), as_float(x), as_float(t_x), as_float(T)
    r, alpha, a, b = params.r, params.alpha, params.a, params.b
    rp, stay_share = r + xs, (alpha + Ts) / (alpha + Ts + ts)  # NB(r', q): purchases of one who stays
    counts: FloatArray = nbinom_logpmf(ns, rp, stay_share)
    if not params.drops_out:
        return counts
    bp = b + xs
    stay = betaln(a, bp + ns) - betaln(a, bp) + counts
    with np.errstate(divide="ignore", invalid="ignore"):  # the n == 0 rows are masked out
        leave = betaln(a + 1.0, bp + ns - 1.0) - betaln(a, bp) + nbinom_logsf(ns - 1.0, rp, stay_share)
    alive = np.logaddexp(stay, np.where(ns > 0, leave, -np.inf))
    repeat = xs > 0
    odds = np.where(repeat, _log_odds_dead(params, xs, txs, Ts), -np.inf)
    log_alive, log_dead = log_expit(-odds), log_expit(odds)
    result: FloatArray = np.where(ns == 0, np.logaddexp(log_dead, log_alive + alive), log_alive + alive)
    return result


# The negative binomial's log pmf and log survival function, as `scipy.stats.nbinom` computes them (the same
# formula, and the incomplete beta that Boost's survival function takes; tests/scoring/test_scipy_free.py holds
# them to it) for what the model passes: counts k (k >= -1 for the survival function), n > 0, 0 < p <= 1. Not
# through scipy.stats, whose import alone takes ~1 s, a good part of a `fit` or of loading a model file.
def nbinom_logpmf(k: npt.ArrayLike, n: npt.ArrayLike, p: npt.ArrayLike) -> FloatArray:
    """log P(K = k) for K ~ NB(n, p), the failures before the n-th success of chance p (-inf below 0)."""
    ks, ns, ps = as_float(k), as_float(n), as_float(p)
    with np.errstate(divide="ignore", invalid="ignore"):  # the k < 0 rows are masked out
        value = gammaln(ns + ks) - gammaln(ks + 1.0) - gammaln(ns) + ns * np.log(ps) + xlog1py(ks, -ps)
    out: FloatArray = np.where(ks >= 0, value, -np.inf)
    return out


def nbinom_logsf(k: npt.ArrayLike, n: npt.ArrayLike, p: npt.ArrayLike) -> FloatArray:
    """log P(K > k) for K ~ NB(n, p): log (1 - I_p(n, k + 1)) (0 below 0), as Boost's survival function takes
    it (1 - p is never formed: no precision lost for a small p; below ~1e-308, where scipy.stats gives 0, the
    subnormal is kept)."""
    ks, ns, ps = as_float(k), as_float(n), as_float(p)
    with np.errstate(divide="ignore", invalid="ignore"):
        value = np.log(betaincc(ns, np.floor(ks) + 1.0, ps))
    out: FloatArray = np.where(ks < 0, 0.0, value)
    return out


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
