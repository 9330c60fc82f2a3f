"""The Gamma-Gamma fit the value model uses, and the check of its independence assumption.

The fit: the unpenalised maximum when it is an interior one (equal to
lifetimes'); else the Gamma-Gamma penalised by a ridge on its log-parameters
(on money divided by its mean), its strength chosen as for the BG/NBD
(`scoring.valuemodel.purchasefit`): fitted on the history up to
`end_day - heldout_days`, scored by the predictive log-density of each
customer's mean spend per purchase day in the remaining days, the best
refitted on the whole history; without room for that check, the weakest
strength that fits.

The check: the Gamma-Gamma assumes a customer's spend per purchase day is
independent of how often they buy (Fader, Hardie & Lee 2005, "RFM and CLV";
Hardie's note 025 checks it by the correlation of the two among repeat
buyers, 0.11 on CDNOW). `SpendCheck` reports that Pearson correlation and
flags it as material from |r| >= `MATERIAL_CORRELATION`; CLV is then biased
(spend that rises with frequency is under-predicted for frequent buyers).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import numpy as np
import numpy.typing as npt
from scipy.special import gammaln

from scoring.valuemodel.arrays import FloatArray, as_float
from scoring.valuemodel.choice import MLE, FitChoice
from scoring.valuemodel.errors import ValueModelError
from scoring.valuemodel.gammagamma import GammaGammaParams, fit_gamma_gamma, negative_log_likelihood
from scoring.valuemodel.optimize import AtBoundaryError, minimize_log_params
from scoring.valuemodel.summary import PurchaseLog, Summary, summarise

RIDGE_STRENGTHS = (1e-4, 1e-3, 1e-2, 1e-1)
SELECTION_DAYS = 90
MATERIAL_CORRELATION = 0.3  # |Pearson r| from which the independence assumption is flagged
MIN_SPEND_CUSTOMERS = 10  # repeat buyers with a positive spend the fit needs


@dataclass(frozen=True)
class SpendCheck:
    """Pearson correlation of repeat purchase days and mean spend per repeat day over `customers`
    repeat buyers with a positive spend; `material` when |correlation| >= MATERIAL_CORRELATION."""

    correlation: float
    customers: int

    @property
    def material(self) -> bool:
        return abs(self.correlation) >= MATERIAL_CORRELATION

    def warning(self) -> str:
        """One line for `fit` when the correlation is material, else ""."""
        if not self.material:
            return ""
        return (
            f"spend per purchase day and purchase frequency correlate (Pearson r = {self.correlation:+.2f} over "
            f"{self.customers:,} repeat buyers); the Gamma-Gamma assumes they are independent, so CLV is biased"
        )

    def to_dict(self) -> dict[str, Any]:
        return {"pearson_r": self.correlation, "customers": self.customers, "material": self.material}

    @classmethod
    def from_dict(cls, data: Any) -> SpendCheck:
        try:
            check = cls(float(data["pearson_r"]), int(data["customers"]))
        except (KeyError, TypeError, ValueError) as exc:
            raise ValueModelError(f"spend check: malformed mapping: {exc!r}") from None
        if not -1.0 <= check.correlation <= 1.0 or check.customers < 0:
            raise ValueModelError("spend check: pearson_r must be in [-1, 1] and customers >= 0")
        return check


def spend_check(x: npt.ArrayLike, mean_repeat_value: npt.ArrayLike) -> SpendCheck:
    """The correlation check over the repeat buyers with a positive mean spend (0 when it is undefined)."""
    xs, ms = as_float(x), as_float(mean_repeat_value)
    keep = (xs > 0) & (ms > 0)
    n = int(keep.sum())
    if n < 3 or np.ptp(xs[keep]) == 0 or np.ptp(ms[keep]) == 0:
        return SpendCheck(0.0, n)
    return SpendCheck(float(np.clip(np.corrcoef(xs[keep], ms[keep])[0, 1], -1.0, 1.0)), n)


def fit_spend(log: PurchaseLog, end_day: int, heldout_days: int = SELECTION_DAYS) -> tuple[GammaGammaParams, FitChoice]:
    """The Gamma-Gamma for purchase days up to `end_day`, and how it was chosen.

    Raises ValueModelError (saying how many are needed) when fewer than
    `MIN_SPEND_CUSTOMERS` repeat buyers have a positive spend, or when no candidate fits.
    """
    s = summarise(log, end_day)
    spenders = int(np.count_nonzero((s.x > 0) & (s.mean_repeat_value > 0)))
    if spenders < MIN_SPEND_CUSTOMERS:
        raise ValueModelError(
            f"the spend model needs at least {MIN_SPEND_CUSTOMERS} customers with a repeat purchase of a "
            f"positive amount; this history has {spenders} (a log without amounts cannot give CLV)"
        )
    try:
        mle = fit_gamma_gamma(s.x, s.mean_repeat_value)
        if mle.q > 1.0:
            return mle, MLE
        boundary = f"q = {mle.q:.3g} <= 1: no finite mean spend"
    except AtBoundaryError as exc:
        boundary = str(exc).removeprefix("no interior maximum: ")
    except ValueModelError:
        boundary = "the unpenalised search did not converge"
    scores, days = _heldout_scores(log, end_day, heldout_days)
    order = sorted(scores, key=lambda k: -scores[k]) if scores else list(RIDGE_STRENGTHS)
    for strength in order:
        try:
            params = fit_gamma_gamma_ridge(s.x, s.mean_repeat_value, strength)
        except ValueModelError:
            continue
        if params.q <= 1.0:
            continue
        how = (
            f"predicted the mean spend of the last {days} days best (held-out log-density {scores[strength]:.4f} "
            f"per customer)"
            if scores
            else "(the history is too short to compare strengths on held-out days)"
        )
        reason = (
            f"the Gamma-Gamma likelihood has no interior maximum ({boundary}); the fit with a ridge of "
            f"{strength:g} on its log-parameters {how}"
        )
        heldout = tuple((f"penalised {k:g}", v) for k, v in sorted(scores.items(), key=lambda kv: -kv[1]))
        return params, FitChoice("penalised", reason, strength, boundary, days, heldout)
    raise ValueModelError(f"the spend model cannot be fitted: no interior maximum ({boundary}) and no penalty helps")


def _ridge(log_params: FloatArray, x: FloatArray, m: FloatArray, strength: float) -> tuple[float, FloatArray]:
    value, grad = negative_log_likelihood(log_params, x, m)
    return value + strength * float(log_params @ log_params), grad + 2.0 * strength * log_params


def fit_gamma_gamma_ridge(x: npt.ArrayLike, mean_repeat_value: npt.ArrayLike, strength: float) -> GammaGammaParams:
    """Gamma-Gamma maximising the likelihood less `strength` x |log(p, q, v / mean spend)|^2."""
    xs, ms = as_float(x), as_float(mean_repeat_value)
    keep = (xs > 0) & (ms > 0)
    if not np.any(keep) or strength <= 0:
        raise ValueModelError("a penalised Gamma-Gamma fit needs repeat customers with positive spend and strength > 0")
    scale = float(ms[keep].mean())
    log_p = minimize_log_params(_ridge, 3, (xs[keep], ms[keep] / scale, strength), names=("p", "q", "v"))
    p, q, v = (float(e) for e in np.exp(log_p))
    return GammaGammaParams(p=p, q=q, v=v * scale)


def log_density_of_mean_spend(
    params: GammaGammaParams, n: FloatArray, z: FloatArray, x: FloatArray, m: FloatArray
) -> FloatArray:
    """log density of the mean spend z over n new purchase days of a customer with history (x, m).

    The customer's rate nu has posterior Gamma(q + p x, v + x m); n z given nu
    is Gamma(p n, nu); so z has the Gamma-Gamma density with q, v replaced by
    those posterior values (n > 0, z > 0).
    """
    p = params.p
    q, v, pn = params.q + p * x, params.v + x * m, p * n
    result: FloatArray = (
        gammaln(pn + q)
        - gammaln(pn)
        - gammaln(q)
        + q * np.log(v)
        + (pn - 1.0) * np.log(z)
        + pn * np.log(n)
        - (pn + q) * np.log(v + n * z)
    )
    return result


def _heldout_scores(log: PurchaseLog, end_day: int, heldout_days: int) -> tuple[dict[float, float], int]:
    days = min(heldout_days, (end_day - int(log.day.min())) // 2)
    if days < 1:
        return {}, 0
    cut = end_day - days
    s = summarise(log, cut)
    n, z = _spend_between(log, cut, end_day, s)
    use = n > 0
    if not np.any(use) or np.count_nonzero((s.x > 0) & (s.mean_repeat_value > 0)) < MIN_SPEND_CUSTOMERS:
        return {}, 0
    scores = {}
    for strength in RIDGE_STRENGTHS:
        try:
            params = fit_gamma_gamma_ridge(s.x, s.mean_repeat_value, strength)
        except ValueModelError:
            continue
        if params.q <= 1.0:
            continue
        score = float(np.mean(log_density_of_mean_spend(params, n[use], z[use], s.x[use], s.mean_repeat_value[use])))
        if math.isfinite(score):
            scores[strength] = score
    return scores, days


def _spend_between(log: PurchaseLog, start_day: int, end_day: int, s: Summary) -> tuple[FloatArray, FloatArray]:
    """Per customer of `s`: purchase days with a positive amount in (start_day, end_day] and their mean amount."""
    inside = (log.day > start_day) & (log.day <= end_day) & (log.amount > 0)
    n = np.bincount(log.customer[inside], minlength=log.n_customers).astype(np.float64)
    total = np.bincount(log.customer[inside], weights=log.amount[inside], minlength=log.n_customers)
    mean = np.where(n > 0, total / np.maximum(n, 1.0), 0.0)
    return n[s.customer], mean[s.customer]
