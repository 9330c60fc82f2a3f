"""Features of the at-risk model, built from a customer's BTYD summary (days) and BG/NBD."""

from __future__ import annotations

import numpy as np
import numpy.typing as npt

from scoring.valuemodel.arrays import FloatArray, as_float
from scoring.valuemodel.bgnbd import BgNbdParams, expected_purchases, p_alive

FEATURE_NAMES = (
    "log_recency",  # log(1 + days since last purchase day)
    "log_frequency",  # log(1 + x)
    "log_overdue",  # log(1 + recency / own mean gap between purchase days); 0 when x == 0
    "log_age",  # log(1 + T)
    "log_mean_value",  # log(1 + mean repeat day total)
    "p_alive",  # BG/NBD P(alive), 1 when x == 0
    "log_expected",  # log of BG/NBD expected purchase days in the horizon
    "is_one_time",  # 1 when x == 0
)


def at_risk_features(
    bg: BgNbdParams,
    x: npt.ArrayLike,
    t_x: npt.ArrayLike,
    T: npt.ArrayLike,
    mean_value: npt.ArrayLike,
    horizon_days: float,
) -> FloatArray:
    """Feature matrix (customers x FEATURE_NAMES); recency is T - t_x, all in days."""
    xs, txs, Ts, ms = as_float(x), as_float(t_x), as_float(T), as_float(mean_value)
    recency = Ts - txs
    repeat = xs > 0
    gap = np.where(repeat, txs / np.maximum(xs, 1.0), 1.0)
    overdue = np.where(repeat, recency / np.maximum(gap, 1.0), 0.0)
    expected = expected_purchases(bg, horizon_days, xs, txs, Ts)
    columns = (
        np.log1p(recency),
        np.log1p(xs),
        np.log1p(overdue),
        np.log1p(Ts),
        np.log1p(ms),
        p_alive(bg, xs, txs, Ts),
        np.log(np.maximum(expected, 1e-12)),
        (~repeat).astype(np.float64),
    )
    return np.column_stack(columns)
