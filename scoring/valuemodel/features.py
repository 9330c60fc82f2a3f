"""Features of the at-risk model, built from a customer's BTYD summary (days) and BG/NBD.

Every feature is a function of (x, t_x, T, mean repeat value), the BG/NBD
parameters and the horizon only, so the stream can compute it per customer
(`scoring.valuemodel.scalar.at_risk_1`, kept in exact agreement with
`feature_columns`).

`SILENCE_DIRECTION` says how each feature moves while a customer stays silent
(T grows, x and t_x fixed): the fit constrains the coefficients to these
signs, so the at-risk score never falls while a customer does not buy.
"""

from __future__ import annotations

import math

import numpy as np
import numpy.typing as npt

from scoring.valuemodel.arrays import FloatArray, as_float
from scoring.valuemodel.bgnbd import BgNbdParams, expected_purchases, p_alive, p_no_purchase

# Probabilities are kept this far from 0 and 1 before taking log-odds.
LOGIT_EPS = 1e-12
# Repeat purchase days at which a customer counts fully as a frequent buyer
# in the split of linear recency (`frequent_share`).
FREQUENT_AT = 10
RECENCY_UNIT_DAYS = 100.0

FEATURES = {
    "log_recency": "log(1 + days since last purchase day)",
    "log_frequency": "log(1 + x)",
    "log_overdue": "log(1 + recency / own mean gap between purchase days); 0 when x == 0",
    "log_age": "log(1 + T)",
    "log_mean_value": "log(1 + mean repeat day total)",
    "p_alive": "BG/NBD P(alive), 1 when x == 0",
    "log_expected": "log of BG/NBD expected purchase days in the horizon (floored at 1e-12; format 1 only)",
    "log1p_expected": "log(1 + BG/NBD expected purchase days in the horizon)",
    "is_one_time": "1 when x == 0",
    "p_no_purchase": "BG/NBD P(no purchase day in the horizon)",
    "logit_no_purchase": "its log-odds, the probability kept within [1e-12, 1 - 1e-12]",
    "recency_occasional": "days since last purchase day / 100, times 1 - frequent_share(x)",
    "recency_frequent": "days since last purchase day / 100, times frequent_share(x)",
}

# +1: rises while the customer stays silent; -1: falls; 0: constant.
SILENCE_DIRECTION = {
    "log_recency": 1,
    "log_frequency": 0,
    "log_overdue": 1,
    "log_age": 1,
    "log_mean_value": 0,
    "p_alive": -1,
    "log_expected": -1,
    "log1p_expected": -1,
    "is_one_time": 0,
    "p_no_purchase": 1,
    "logit_no_purchase": 1,
    "recency_occasional": 1,
    "recency_frequent": 1,
}

# Model format 1 (tierstream.valuemodel/1).
FEATURE_NAMES_V1 = (
    "log_recency",
    "log_frequency",
    "log_overdue",
    "log_age",
    "log_mean_value",
    "p_alive",
    "log_expected",
    "is_one_time",
)

# Model format 2: BG/NBD's own answer to the question (P(no purchase in the
# horizon), as a probability and as log-odds) and a bounded transform of the
# expected purchases, so that a customer the BG/NBD calls certainly dead does
# not get an unbounded feature value.
FEATURE_NAMES_V2 = (
    "log_recency",
    "log_frequency",
    "log_overdue",
    "log_age",
    "log_mean_value",
    "p_alive",
    "log1p_expected",
    "is_one_time",
    "p_no_purchase",
    "logit_no_purchase",
)

# Model format 3: days since the last purchase also enter linearly, with one
# slope for occasional and one for frequent buyers. On CDNOW the odds of not
# buying keep rising linearly with recency long after log(recency) flattens,
# and less steeply for frequent buyers; log(recency) alone let other features
# outrank the longest-silent customers.
FEATURE_NAMES = (*FEATURE_NAMES_V2, "recency_occasional", "recency_frequent")

KNOWN_FEATURE_SETS = (FEATURE_NAMES, FEATURE_NAMES_V2, FEATURE_NAMES_V1)


def frequent_share(x: float) -> float:
    """0 for a one-time buyer, rising with log(1 + x) to 1 at `FREQUENT_AT` repeat days and beyond."""
    return min(math.log1p(x), math.log1p(FREQUENT_AT)) / math.log1p(FREQUENT_AT)


def feature_columns(
    bg: BgNbdParams,
    x: npt.ArrayLike,
    t_x: npt.ArrayLike,
    T: npt.ArrayLike,
    mean_value: npt.ArrayLike,
    horizon_days: float,
) -> dict[str, FloatArray]:
    """Every feature in `FEATURES`, one array per name; recency is T - t_x, all in days."""
    xs, txs, Ts, ms = as_float(x), as_float(t_x), as_float(T), as_float(mean_value)
    recency = Ts - txs
    repeat = xs > 0
    gap = np.where(repeat, txs / np.maximum(xs, 1.0), 1.0)
    overdue = np.where(repeat, recency / np.maximum(gap, 1.0), 0.0)
    expected = expected_purchases(bg, horizon_days, xs, txs, Ts)
    none = np.clip(p_no_purchase(bg, horizon_days, xs, txs, Ts), LOGIT_EPS, 1.0 - LOGIT_EPS)
    share = np.minimum(np.log1p(xs), math.log1p(FREQUENT_AT)) / math.log1p(FREQUENT_AT)
    linear = recency / RECENCY_UNIT_DAYS
    return {
        "log_recency": np.log1p(recency),
        "log_frequency": np.log1p(xs),
        "log_overdue": np.log1p(overdue),
        "log_age": np.log1p(Ts),
        "log_mean_value": np.log1p(ms),
        "p_alive": p_alive(bg, xs, txs, Ts),
        "log_expected": np.log(np.maximum(expected, 1e-12)),
        "log1p_expected": np.log1p(expected),
        "is_one_time": (~repeat).astype(np.float64),
        "p_no_purchase": none,
        "logit_no_purchase": np.log(none) - np.log1p(-none),
        "recency_occasional": linear * (1.0 - share),
        "recency_frequent": linear * share,
    }


def at_risk_features(
    bg: BgNbdParams,
    x: npt.ArrayLike,
    t_x: npt.ArrayLike,
    T: npt.ArrayLike,
    mean_value: npt.ArrayLike,
    horizon_days: float,
    names: tuple[str, ...] = FEATURE_NAMES,
) -> FloatArray:
    """Feature matrix (customers x `names`)."""
    columns = feature_columns(bg, x, t_x, T, mean_value, horizon_days)
    return np.column_stack([columns[n] for n in names])
