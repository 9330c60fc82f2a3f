"""When could the evaluation change with no new event? Time is an input.

Everything the evaluation reads changes at whole UTC days: an R cut point or
the lapse/at-risk limit passed, a day leaving the window or one of the two
trend periods, a complaint or enquiry weight halving, a tenure year completed, a
future-dated event's day arriving, a dwell period ending. `next_review_day`
is the earliest such day after the last evaluation; re-scoring then (or
later, since evaluations catch up) gives the same result as a clock that
ticked every day.
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import datetime
from typing import TYPE_CHECKING

from scoring.config import ScoringConfig
from scoring.events import day_start
from scoring.lifecycle import Risk, assess_risk
from scoring.rfm import score
from scoring.state import C_SEV, E_COUNT, P_CENTS, CustomerState

if TYPE_CHECKING:
    from scoring.valuemodel.model import ValueModel


def next_review_day(
    state: CustomerState,
    config: ScoringConfig,
    model: ValueModel | None = None,
    risk: Risk | None = None,
) -> int | None:
    """Earliest epoch day after `state.scored_day` on which the evaluation may change.

    `risk` is the assessment as of `scored_day` when the caller has it (it
    carries the day the at-risk flag would trip); otherwise it is computed.
    """
    after = state.scored_day
    if after is None:
        return None
    if risk is None:
        risk = assess_risk(state, score(state, after, config), state.tier, config, model)
    days = [d for d in _candidates(state, config, after) if d > after]
    if risk.due_day is not None and risk.due_day > after:
        days.append(risk.due_day)
    return min(days) if days else None


def next_review_at(state: CustomerState) -> datetime | None:
    """The UTC midnight opening the review day cached by the last step (None if none is due)."""
    return None if state.review_day is None else day_start(state.review_day)


def _next_step(start: int, period: int, after: int) -> int:
    """First day start + k*period (k >= 1) that is after `after`."""
    k = max(1, (after - start) // period + 1)
    return start + k * period


def _candidates(state: CustomerState, c: ScoringConfig, after: int) -> Iterator[int]:
    last, first = state.last_day, state.first_day
    if last is not None:
        yield from (last + cut + 1 for cut in c.recency_days)
        yield last + c.lapsed_days + 1
    if first is not None:
        yield first + c.new_customer_days + 1
        if c.tenure_points_per_year > 0:
            yield _next_step(first, 365, after)
    for day, bucket in state.buckets.items():
        yield day  # a future-dated day starts to count
        yield day + c.window_days
        if bucket[P_CENTS]:  # moves from the recent period to the previous one, then out of both
            yield day + c.trend_days
            yield day + 2 * c.trend_days
        if bucket[C_SEV]:
            yield _next_step(day, c.complaint_half_life_days, after)
        if bucket[E_COUNT]:
            yield _next_step(day, c.enquiry_half_life_days, after)
    if state.tier_since is not None and c.min_dwell_days:
        yield state.tier_since + c.min_dwell_days
