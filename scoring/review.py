"""When could the evaluation change with no new event? Time is an input.

Everything the evaluation reads changes at whole UTC days: an R cut point or
the lapse/at-risk limit passed, a day leaving the window or one of the two
trend periods, a complaint or enquiry weight halving, a tenure year completed, a
future-dated event's day arriving, a dwell period ending. `next_review_day`
is the earliest such day after the last evaluation; re-scoring then (or
later, since evaluations catch up) gives the same result as a clock that
ticked every day.

With a calibration in force, R points follow the customer's percentile
position, which moves on most days as recency grows; the composite is then
published as of the last evaluation, and the review days are those on which
the tier or the R rank (1-5) changes. Between two of the day-based change
points above only recency moves and the composite can only fall, so the first
such day is found by bisection (`_recency_change`): the tier, segment, ranks
and flags evaluated on any day before it equal those of the last evaluation.
"""

from __future__ import annotations

from bisect import bisect_right
from collections.abc import Iterator, Mapping
from datetime import datetime
from operator import itemgetter
from typing import TYPE_CHECKING

from scoring.calibration import Calibration, quintile_rank
from scoring.config import ScoringConfig
from scoring.events import day_start
from scoring.lifecycle import Risk, assess_risk
from scoring.rfm import Score, composite_of, recency_position, score
from scoring.state import C_SEV, E_COUNT, P_E4, Bucket, CustomerState
from scoring.tiers import assign_tier

if TYPE_CHECKING:
    from scoring.valuemodel.model import ValueModel


def next_review_day(
    state: CustomerState,
    config: ScoringConfig,
    model: ValueModel | None = None,
    risk: Risk | None = None,
    current: Score | None = None,
) -> int | None:
    """Earliest epoch day after `state.scored_day` on which the evaluation may change.

    `risk` is the assessment as of `scored_day` when the caller has it (it
    carries the day the at-risk flag would trip), and `current` the score of
    that day; otherwise they are computed.
    """
    after = state.scored_day
    if after is None:
        return None
    if current is None and (risk is None or config.calibration is not None):
        current = score(state, after, config)
    if risk is None:
        risk = assess_risk(state, current or score(state, after, config), state.tier, config, model)
    return review_day_after(state, after, state.tier, state.tier_since, config, risk, current)


def review_day_after(
    state: CustomerState,
    after: int,
    tier: str | None,
    tier_since: int | None,
    config: ScoringConfig,
    risk: Risk,
    current: Score | None,
) -> int | None:
    """`next_review_day` of `state` once scored on `after` into `tier` (entered on `tier_since`), with that
    day's `risk` and score (`current`, needed under a calibration): what the step caches, computed before
    it builds the scored state (only those fields of it are read)."""
    nearest = _earliest_candidate(state, config, after, tier_since)
    if risk.due_day is not None and after < risk.due_day and (nearest is None or risk.due_day < nearest):
        nearest = risk.due_day
    calibration = config.calibration
    if calibration is not None and current is not None:
        moved = _recency_change(state, config, calibration, current, nearest, after, tier, tier_since)
        if moved is not None:
            return moved
    return nearest


def next_review_at(state: CustomerState) -> datetime | None:
    """The UTC midnight opening the review day cached by the last step (None if none is due)."""
    return None if state.review_day is None else day_start(state.review_day)


def _recency_change(
    state: CustomerState,
    config: ScoringConfig,
    calibration: Calibration,
    current: Score,
    before: int | None,
    after: int,
    tier: str | None,
    tier_since: int | None,
) -> int | None:
    """First day after `after` (the scored day) and before `before` on which recency alone changes the tier
    (`tier`, entered on `tier_since`) or the R rank; None when it does not. `current` is the score as of
    `after`.

    Until `before` every other term of the composite is constant and R points only fall as recency grows,
    so the composite only falls: once the tier (after hysteresis and dwell) or the rank has changed it stays
    changed, and bisection finds the first such day. From recency max + 1 on (beyond every active
    customer's) the R points are 0 and nothing moves.
    """
    last = state.last_day
    if last is None:
        return None
    end = last + calibration.recency_days[-1] + 1
    if before is not None:
        end = min(end, before - 1)
    if end <= after:
        return None
    weight, rest = config.weights[0], current.points[1:]

    def changed(day: int) -> bool:
        share = recency_position(calibration, max(0, day - last))
        if quintile_rank(share) != current.r:
            return True
        composite = composite_of((weight * share, *rest))  # the same sum, in the same order, as `score`
        return assign_tier(composite, tier, tier_since, day, config) != tier

    if not changed(end):
        return None
    low, high = after, end  # changed(high) holds, changed(low) does not
    while high - low > 1:
        middle = (low + high) // 2
        if changed(middle):
            high = middle
        else:
            low = middle
    return high


def _next_step(start: int, period: int, after: int) -> int:
    """First day start + k*period (k >= 1) that is after `after`."""
    k = max(1, (after - start) // period + 1)
    return start + k * period


def _earliest_candidate(state: CustomerState, c: ScoringConfig, after: int, tier_since: int | None) -> int | None:
    """`min(d for d in _candidates(state, c, after) if d > after)` for the state with `tier_since`, None
    when there is none: the same days, without a generator (this runs on every step)."""
    best = _earliest_of_days(state.buckets, c, after, _earliest_all_time(state, c, after, tier_since))
    return None if best == _NEVER else best


def _earliest_all_time(state: CustomerState, c: ScoringConfig, after: int, tier_since: int | None) -> int:
    """The earliest change day after `after` from the all-time figures and the tier's dwell (or _NEVER)."""
    best = _NEVER
    last, first = state.last_day, state.first_day
    if last is not None:
        if c.calibration is None:
            for cut in c.recency_days:
                if after < (day := last + cut + 1) < best:
                    best = day
        if after < (day := last + c.lapsed_days + 1) < best:
            best = day
    if first is not None:
        if after < (day := first + c.new_customer_days + 1) < best:
            best = day
        if c.tenure_points_per_year > 0 and after < (day := _next_step(first, 365, after)) < best:
            best = day
    if tier_since is not None and c.min_dwell_days and after < (day := tier_since + c.min_dwell_days) < best:
        best = day
    return best


def _earliest_of_days(buckets: Mapping[int, Bucket], c: ScoringConfig, after: int, best: int) -> int:
    """The earliest change day after `after` from the days in the window, if before `best`."""
    if not buckets:
        return best
    window, trend = c.window_days, c.trend_days
    # Each family of candidates (a day, its day + window, a purchase day + trend or + 2 trends) is increasing
    # in the day, so its least one after `after` is that of the first day past a threshold: found by bisection
    # in the sorted days (this runs on every step, over every day in the window).
    days = sorted(buckets)
    bought = days
    counts = buckets.values()
    if not all(map(_PURCHASES, counts)) or any(map(_COMPLAINTS, counts)) or any(map(_ENQUIRIES, counts)):
        bought = [d for d in days if buckets[d][P_E4]]  # (most histories have only purchase days: not this)
        for d in days:
            b = buckets[d]
            if b[C_SEV] and (moved := _next_step(d, c.complaint_half_life_days, after)) < best:
                best = moved
            if b[E_COUNT] and (moved := _next_step(d, c.enquiry_half_life_days, after)) < best:
                best = moved
    for family, offset in ((days, 0), (days, window), (bought, trend), (bought, 2 * trend)):
        i = bisect_right(family, after - offset)
        if i < len(family) and (day := family[i] + offset) < best:
            best = day
    return best


_PURCHASES, _COMPLAINTS, _ENQUIRIES = itemgetter(P_E4), itemgetter(C_SEV), itemgetter(E_COUNT)
_NEVER = 1 << 62  # later than any epoch day


def _candidates(state: CustomerState, c: ScoringConfig, after: int) -> Iterator[int]:
    """Every day on which the evaluation may change (some on or before `after`): the specification
    `_earliest_candidate` follows, kept for the tests that hold them equal."""
    last, first = state.last_day, state.first_day
    if last is not None:
        if c.calibration is None:  # calibrated R: see `_recency_change`
            yield from (last + cut + 1 for cut in c.recency_days)
        yield last + c.lapsed_days + 1
    if first is not None:
        yield first + c.new_customer_days + 1
        if c.tenure_points_per_year > 0:
            yield _next_step(first, 365, after)
    for day, bucket in state.buckets.items():
        yield day  # a future-dated day starts to count
        yield day + c.window_days
        if bucket[P_E4]:  # moves from the recent period to the previous one, then out of both
            yield day + c.trend_days
            yield day + 2 * c.trend_days
        if bucket[C_SEV]:
            yield _next_step(day, c.complaint_half_life_days, after)
        if bucket[E_COUNT]:
            yield _next_step(day, c.enquiry_half_life_days, after)
    if state.tier_since is not None and c.min_dwell_days:
        yield state.tier_since + c.min_dwell_days
