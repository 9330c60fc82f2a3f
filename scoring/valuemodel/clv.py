"""Discounted customer lifetime value from BG/NBD counts and Gamma-Gamma spend."""

from __future__ import annotations

import numpy as np
import numpy.typing as npt

from scoring.valuemodel.arrays import FloatArray
from scoring.valuemodel.bgnbd import BgNbdParams, expected_purchases
from scoring.valuemodel.gammagamma import GammaGammaParams, expected_average_value

DAYS_PER_MONTH = 30.0  # lifetimes' factor for freq="D"


def clv(
    bg: BgNbdParams,
    gg: GammaGammaParams,
    x: npt.ArrayLike,
    t_x: npt.ArrayLike,
    T: npt.ArrayLike,
    mean_value: npt.ArrayLike,
    horizon_months: int = 12,
    monthly_discount: float = 0.01,
) -> FloatArray:
    """Expected discounted spend over the next `horizon_months` months of 30 days.

    Sum over months i = 1..horizon of (E[purchases by 30 i days] - E[purchases
    by 30 (i - 1) days]) x E[spend per purchase day] / (1 + monthly_discount)^i,
    as lifetimes' `customer_lifetime_value(freq="D")`; x, t_x, T are in days and
    the result is in the currency of `mean_value`. Always >= 0.
    """
    if horizon_months < 0 or monthly_discount <= -1:
        raise ValueError("horizon_months must be >= 0 and monthly_discount > -1")
    months = np.arange(horizon_months + 1, dtype=np.float64)[:, np.newaxis]
    cumulative = expected_purchases(bg, months * DAYS_PER_MONTH, x, t_x, T)
    per_month = np.diff(cumulative, axis=0)
    discount = (1.0 + monthly_discount) ** -months[1:]
    spend = expected_average_value(gg, x, mean_value)
    result: FloatArray = spend * (per_month * discount).sum(axis=0)
    return result
