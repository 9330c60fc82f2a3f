"""Gamma-Gamma spend model (Fader, Hardie & Lee 2005, "RFM and CLV"; Hardie's note 025).

A customer's spend per purchase day is Gamma(p, nu) with nu ~ Gamma(q, v)
across customers; it is fitted on repeat customers (x > 0) from x and the
mean day total over their repeat days. Money is in the input currency; `v`
has that unit, `p` and `q` none. Formulas follow lifetimes' `GammaGammaFitter`.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
import numpy.typing as npt
from scipy.special import digamma, gammaln

from scoring.valuemodel.arrays import FloatArray, as_float
from scoring.valuemodel.errors import ValueModelError
from scoring.valuemodel.mapping import positive_fields
from scoring.valuemodel.optimize import minimize_log_params


@dataclass(frozen=True)
class GammaGammaParams:
    """Shape p of spend per day, Gamma(q, v) prior of its rate; all > 0 (q > 1 for a finite mean)."""

    p: float
    q: float
    v: float

    def to_dict(self) -> dict[str, float]:
        """JSON-safe mapping of the three parameters."""
        return {"p": self.p, "q": self.q, "v": self.v}

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> GammaGammaParams:
        """Inverse of `to_dict`; raises ValueModelError on missing or non-positive values."""
        return cls(**positive_fields(data, ("p", "q", "v")))

    @property
    def population_mean(self) -> float:
        """Expected spend per purchase day of a customer about whom nothing is known."""
        return self.v * self.p / (self.q - 1.0)


def negative_log_likelihood(log_params: FloatArray, x: FloatArray, m: FloatArray) -> tuple[float, FloatArray]:
    """Mean negative log-likelihood of repeat customers and its gradient in (log p, q, v)."""
    p, q, v = np.exp(log_params)
    px, xm_v = p * x, x * m + v
    ll = (
        gammaln(px + q)
        - gammaln(px)
        - gammaln(q)
        + q * np.log(v)
        + (px - 1.0) * np.log(m)
        + px * np.log(x)
        - (px + q) * np.log(xm_v)
    )
    common = digamma(px + q) - np.log(xm_v)
    d_p = x * (common - digamma(px) + np.log(m) + np.log(x))
    d_q = common - digamma(q) + np.log(v)
    d_v = q / v - (px + q) / xm_v
    grad = np.array([d_p.sum() * p, d_q.sum() * q, d_v.sum() * v])
    return float(-ll.mean()), -grad / x.size


def fit_gamma_gamma(x: npt.ArrayLike, mean_repeat_value: npt.ArrayLike) -> GammaGammaParams:
    """Unpenalised maximum-likelihood fit on the customers with x > 0 (others are ignored).

    Money is divided by its mean while fitting, which leaves p and q unchanged
    and scales v, to condition the optimiser. Raises ValueModelError when no
    repeat customer has a positive mean value.
    """
    xs, ms = as_float(x), as_float(mean_repeat_value)
    if xs.size != ms.size:
        raise ValueModelError("Gamma-Gamma fit needs equally long x and mean_repeat_value")
    keep = (xs > 0) & (ms > 0)
    if not np.any(keep):
        raise ValueModelError("Gamma-Gamma fit needs repeat customers with positive spend")
    scale = float(ms[keep].mean())
    log_p = minimize_log_params(negative_log_likelihood, 3, (xs[keep], ms[keep] / scale), names=("p", "q", "v"))
    p, q, v = (float(e) for e in np.exp(log_p))
    return GammaGammaParams(p=p, q=q, v=v * scale)


def expected_average_value(params: GammaGammaParams, x: npt.ArrayLike, mean_repeat_value: npt.ArrayLike) -> FloatArray:
    """E[spend per purchase day | x, mean value]: a credibility blend of own mean and population mean.

    Equals the population mean when x == 0. Same as lifetimes'
    `conditional_expected_average_profit`.
    """
    xs, ms = as_float(x), as_float(mean_repeat_value)
    weight = params.p * xs / (params.p * xs + params.q - 1.0)
    result: FloatArray = (1.0 - weight) * params.population_mean + weight * ms
    return result


conditional_expected_average_profit = expected_average_value
