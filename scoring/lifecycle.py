"""Lifecycle segment and the at-risk signal.

With a fitted value model (`scoring.valuemodel`), the at-risk score is the
model's probability that the customer makes no purchase in its horizon, and a
valuable customer is at risk once it reaches `at_risk_model_threshold`.
Without one, the first, rule-based version applies:

At-risk compares days since the last purchase with the customer's own
typical gap between purchase days (t_x / x, or `default_gap_days` with fewer
than two purchase days): `ratio = recency / gap`. The score rises linearly
from 0 at ratio 1 to 1 at ratio `2*multiple - 1` (0.5 at the multiple), and a
valuable customer is at risk once the ratio exceeds the multiple.
"""

from __future__ import annotations

import math
from functools import lru_cache
from typing import TYPE_CHECKING, NamedTuple

from scoring.btyd import btyd_summary
from scoring.config import ScoringConfig
from scoring.rfm import Score
from scoring.state import CustomerState

if TYPE_CHECKING:
    from scoring.valuemodel.model import ValueModel

MODEL_TRIP_HORIZON_DAYS = 3 * 365  # how far ahead the model's trip day is searched


class Risk(NamedTuple):
    """At-risk assessment; `gap_days` is the typical gap used, `due_day` when it first trips."""

    score: float
    is_at_risk: bool
    gap_days: float
    due_day: int | None


def typical_gap(state: CustomerState, config: ScoringConfig) -> float:
    """Mean days between distinct purchase days, all-time; a population default when unknown."""
    if state.purchase_days >= 2 and state.first_day is not None and state.last_day is not None:
        return max(1.0, (state.last_day - state.first_day) / (state.purchase_days - 1))
    return config.default_gap_days


def is_valuable(s: Score, tier: str | None, config: ScoringConfig) -> bool:
    return s.m >= config.at_risk_min_m or (tier is not None and tier in config.at_risk_tiers)


def assess_risk(
    state: CustomerState,
    s: Score,
    tier: str | None,
    config: ScoringConfig,
    model: ValueModel | None = None,
) -> Risk:
    """At-risk score in [0, 1] and flag, as of the score's day."""
    gap = typical_gap(state, config)
    if state.last_day is None or s.recency_days is None:
        return Risk(0.0, False, gap, None)
    if model is not None:
        return _model_risk(state, s, tier, config, model, gap)
    multiple = config.at_risk_gap_multiple
    ratio = s.recency_days / gap
    risk = min(1.0, max(0.0, (ratio - 1) / (2 * (multiple - 1))))
    flag = is_overdue(s.recency_days, gap, multiple) and is_valuable(s, tier, config)
    risk = round(risk, 4) if 0.0 < risk < 1.0 else risk  # 0 and 1 are already round (and most common)
    return Risk(risk, flag, gap, state.last_day + first_overdue_recency(gap, multiple))


def is_overdue(recency_days: int, gap: float, multiple: float) -> bool:
    """The rule-based trip condition: days since the last purchase exceed `multiple` x gap."""
    return recency_days / gap > multiple


@lru_cache(maxsize=4096)  # a pure function of two floats, on every step: customers share gaps
def first_overdue_recency(gap: float, multiple: float) -> int:
    """Smallest whole recency that `is_overdue`, decided by the same float expression."""
    recency = max(0, math.floor(multiple * gap) - 1)
    while not is_overdue(recency, gap, multiple):
        recency += 1
    return recency


def segment(state: CustomerState, s: Score, config: ScoringConfig) -> str:
    """One of new, active, rising, declining, lapsed, bad_business.

    bad_business: returns plus complaint cost eat `bad_business_share` of spend;
    new: tenure <= `new_customer_days` (or no purchase yet); lapsed: no purchase
    for `lapsed_days` or none in the window; declining / rising: spend in the
    last `trend_days` against the `trend_days` before, by the configured ratios.
    """
    eaten = s.returns_amount + s.complaint_weight * config.complaint_cost
    if eaten > 0 and eaten >= config.bad_business_share * s.monetary:
        return "bad_business"
    if s.recency_days is None or (s.tenure_days is not None and s.tenure_days <= config.new_customer_days):
        return "new"
    if s.recency_days > config.lapsed_days or s.frequency == 0:  # nothing bought in the window
        return "lapsed"
    # Trend: the last `trend_days` against the `trend_days` before them.
    previous = s.previous_spend
    if previous == 0 and s.recent_spend == 0:  # bought in the window, but not in the last two periods
        return "declining"
    if previous > 0 and s.recent_spend <= config.declining_ratio * previous:
        return "declining"
    if previous > 0 and s.recent_spend >= config.rising_ratio * previous:
        return "rising"
    return "active"


def model_risk_on(state: CustomerState, day: int, model: ValueModel) -> float:
    """The value model's at-risk score of `state` as of epoch day `day` (0 with no purchase)."""
    from scoring.valuemodel.scalar import at_risk_1, p_alive_1  # noqa: PLC0415 - keeps `import scoring` free of scipy

    summary = btyd_summary(state, day)
    if summary is None:
        return 0.0
    x, t_x, T, m = summary.x, summary.t_x, summary.T, summary.mean_repeat_value
    return at_risk_1(model, x, t_x, T, m, p_alive_1(model.bg, x, t_x, T))


def _model_risk(
    state: CustomerState,
    s: Score,
    tier: str | None,
    config: ScoringConfig,
    model: ValueModel,
    gap: float,
) -> Risk:
    risk = model_risk_on(state, s.day, model)
    threshold = config.at_risk_model_threshold
    valuable = is_valuable(s, tier, config)
    flag = valuable and risk >= threshold
    trip = None if flag or not valuable else _model_trip_day(state, s.day, model, threshold)
    return Risk(round(risk, 4), flag, gap, trip)


def _model_trip_day(state: CustomerState, today: int, model: ValueModel, threshold: float) -> int | None:
    """First day after `today` on which the model's risk reaches `threshold` (risk grows with time
    since the last purchase, so a binary search finds it); None within the search horizon."""
    low, high = today, today + MODEL_TRIP_HORIZON_DAYS
    if model_risk_on(state, high, model) < threshold:
        return None
    while high - low > 1:
        middle = (low + high) // 2
        if model_risk_on(state, middle, model) >= threshold:
            high = middle
        else:
            low = middle
    return high
