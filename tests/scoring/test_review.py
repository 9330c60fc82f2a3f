"""next_review_day: the earliest day on which the evaluation may change with no new event."""

from __future__ import annotations

from datetime import UTC, datetime
from random import Random

import pytest

from scoring import NEW_STATE, evaluate, fold, next_review_at, next_review_day, step
from scoring.calibrate import calibrate
from scoring.events import MS_PER_DAY
from scoring.review import _candidates
from scoring.state import evolve

T0 = 20_000


def _scored(state, day, config):
    """State after a time-only step on `day` (sets scored_day, tier, segment, at-risk)."""
    return step(state, None, day * MS_PER_DAY + 3_600_000, "c", config).state


def _profile(state, day, config):
    ev = evaluate(state, day, config)
    return ev.tier, ev.score.composite, ev.segment, ev.risk.is_at_risk


def _first_change(state, config, horizon=800):
    """First day after scored_day whose profile differs from the scored day's, or None."""
    d = state.scored_day
    base = _profile(state, d, config)
    return next((day for day in range(d + 1, d + horizon + 1) if _profile(state, day, config) != base), None)


def test_unscored_state_has_no_review_day(purchase, fold_at, cfg):
    assert next_review_day(NEW_STATE, cfg) is None
    assert next_review_at(NEW_STATE) is None
    assert next_review_day(fold_at([purchase(T0, 10)], T0), cfg) is None


def test_review_after_a_single_purchase_is_the_first_recency_cut(purchase, fold_at, cfg):
    state = _scored(fold_at([purchase(T0, 10)], T0), T0, cfg)
    assert state.scored_day == T0
    assert next_review_day(state, cfg) == T0 + cfg.recency_days[0] + 1
    # the step caches the review day; next_review_at is its opening midnight (UTC)
    assert state.review_day == T0 + 31
    assert next_review_at(state) == datetime(2024, 11, 4, tzinfo=UTC)
    assert next_review_at(state) == datetime.fromtimestamp((T0 + 31) * 86_400, tz=UTC)


def test_every_step_caches_its_review_day(weekly, stepper, complaint, cfg):
    state, _ = stepper(weekly(T0, 10, 90.0), cfg)
    state = step(state, complaint(T0 + 70, 3, id="c"), (T0 + 70) * MS_PER_DAY, "c", cfg).state
    for _ in range(12):
        assert state.review_day == next_review_day(state, cfg)
        if state.review_day is None:
            break
        state = _scored(state, state.review_day, cfg)


@pytest.mark.parametrize(("scored_offset", "expected_offset"), [
    (0, 31), (30, 31), (31, 90),        # R cut 30 passed -> the next is the trend period end (day + 90)
    (90, 91), (91, 121),                # R cut 90; then the "new" period end 91; then at-risk (2 x 60 + 1)
    (121, 180), (180, 181),             # it leaves both trend periods (day + 180); R cut 180
    (181, 365), (365, 366),             # window end (day + 365); R cut 365 & lapse
])
def test_review_days_walk_through_every_change_point(scored_offset, expected_offset, purchase, fold_at, cfg):
    state = fold_at([purchase(T0, 10, id="only")], T0)
    state = evolve(_scored(state, T0, cfg), scored_day=T0 + scored_offset)
    assert next_review_day(state, cfg) == T0 + expected_offset


def test_complaint_half_life_is_a_review_day(purchase, complaint, fold_at, config_with):
    config = config_with(complaint_half_life_days=7)
    state = _scored(fold_at([purchase(T0, 10), complaint(T0, 4)], T0), T0, config)
    assert next_review_day(state, config) == T0 + 7
    assert next_review_day(evolve(state, scored_day=T0 + 7), config) == T0 + 14


def test_enquiry_half_life_is_a_review_day(enquiry, fold_at, config_with):
    config = config_with(enquiry_half_life_days=10)
    state = _scored(fold_at([enquiry(T0)], T0), T0, config)
    assert next_review_day(state, config) == T0 + 10


def test_future_dated_event_day_is_a_review_day(purchase, cfg):
    # an event 20 hours ahead of now lands on tomorrow: it starts to count tomorrow
    now = T0 * MS_PER_DAY + 10 * 3_600_000
    event = purchase(T0 + 1, 50, hour=6)
    state = step(NEW_STATE, event, now, "c", cfg).state
    assert state.scored_day == T0
    assert next_review_day(state, cfg) == T0 + 1
    assert evaluate(state, T0, cfg).score.monetary == 0
    assert evaluate(state, T0 + 1, cfg).score.monetary == 50


def test_min_dwell_end_is_a_review_day(purchase, fold_at, config_with):
    config = config_with(min_dwell_days=5)
    state = _scored(fold_at([purchase(T0, 10)], T0), T0, config)
    assert state.tier_since == T0
    assert next_review_day(state, config) == T0 + 5


def test_no_review_once_nothing_can_change(enquiry, fold_at, cfg):
    state = _scored(fold_at([enquiry(T0)], T0), T0, cfg)
    far = T0 + cfg.window_days + 1
    state = _scored(state, far, cfg)
    assert state.buckets == {}
    assert next_review_day(state, cfg) is None
    assert _first_change(state, cfg) is None


@pytest.mark.parametrize("history", [
    "weekly-buyer", "one-big-purchase", "complaints-and-enquiries", "returns", "future-day",
])
def test_evaluation_constant_until_review_day(history, purchase, ret, complaint, enquiry, fold_at, cfg):
    events = {
        "weekly-buyer": [purchase(T0 - 7 * i, 120, id=f"w{i}") for i in range(52)],
        "one-big-purchase": [purchase(T0 - 400, 5000), purchase(T0, 4000)],
        "complaints-and-enquiries": [purchase(T0 - 700, 900), purchase(T0 - 20, 400), complaint(T0 - 10, 5),
                                     enquiry(T0 - 3), enquiry(T0)],
        "returns": [purchase(T0 - 500, 300), purchase(T0 - 30, 500), ret(T0 - 25, 200)],
        "future-day": [purchase(T0 - 500, 300), purchase(T0, 300, hour=23)],
    }[history]
    state = _scored(fold_at(events, T0, hour=23), T0, cfg)
    for _ in range(8):   # follow eight review days
        due = next_review_day(state, cfg)
        assert due is not None
        # evaluation on every day strictly before the review day equals the scored day's
        base = _profile(state, state.scored_day, cfg)
        changed = [d for d in range(state.scored_day + 1, due) if _profile(state, d, cfg) != base]
        assert changed == [], f"evaluation changed on day +{changed[0] - state.scored_day} before review day"
        state = _scored(state, due, cfg)


# --- bugs: review days that come too late -----------------------------------------------------

@pytest.mark.parametrize("gap", [30, 120, 200])
def test_segment_change_from_a_growing_history_is_not_missed(purchase, stepper, cfg, gap):
    """A young customer's trend segment must not change before the review day (it once did: the
    baseline was scaled by the days of history, which changes daily, with no review day for it)."""
    state, _ = stepper([purchase(T0, 100, id="a"), purchase(T0 + gap, 100, id="b")], cfg)
    assert state.scored_day == T0 + gap
    change = _first_change(state, cfg)
    assert change is None or next_review_day(state, cfg) <= change


def test_at_risk_trip_day_is_not_missed_with_float_gap(purchase, stepper, config_with):
    """review.py yields `last + int(multiple * gap) + 1`; with multiple 1.2 and gap 35/3,
    1.2 * gap == 13.999999999999998, so the candidate is +14, while the flag (14 / gap > 1.2 is
    False: 1.2 == 1.2) trips on +15. Once scored on +14, nothing schedules +15."""
    config = config_with(at_risk_gap_multiple=1.2)
    days = [T0, T0 + 10, T0 + 20, T0 + 35]
    state, _ = stepper([purchase(d, 600, id=f"g{d}") for d in days], config)
    state = _scored(state, T0 + 49, config)
    assert state.at_risk is False
    assert evaluate(state, T0 + 50, config).risk.is_at_risk is True
    assert next_review_day(state, config) == T0 + 50


# --- calibrated tiering: R follows the percentile position, which moves daily ---------------------

def _calibration(config, purchase, seed=3, customers=400):
    """A calibration of a shop whose customers bought in the last year, mostly a few times, lognormal spend."""
    rng = Random(seed)
    states = []
    for c in range(customers):
        events = [purchase(T0 - rng.randint(0, 364), rng.lognormvariate(5, 1.2), id=f"{c}-{i}")
                  for i in range(1 + int(rng.expovariate(1 / 4)))]
        states.append(fold(NEW_STATE, events, (T0 + 1) * MS_PER_DAY - 1, config)[0])
    return calibrate(states, T0, config)


def _calibrated_profile(state, day, config):
    ev = evaluate(state, day, config)
    return ev.tier, ev.segment, ev.risk.is_at_risk, ev.score.r, ev.score.f, ev.score.m


@pytest.mark.parametrize("settings", [{}, {"hysteresis_margin": 0}, {"min_dwell_days": 20, "hysteresis_margin": 8}])
@pytest.mark.parametrize("history", ["weekly-buyer", "one-big-purchase", "complaints-and-enquiries", "returns"])
def test_calibrated_evaluation_constant_until_review_day(history, settings, purchase, ret, complaint, enquiry,
                                                         fold_at, config_with):
    """Between two review days the tier, segment, at-risk flag and R/F/M ranks equal those of the review day
    before (the composite itself moves with the R position and is published at each review)."""
    base = config_with(**settings)
    config = base.calibrated(_calibration(base, purchase))
    events = {
        "weekly-buyer": [purchase(T0 - 7 * i, 120, id=f"w{i}") for i in range(52)],
        "one-big-purchase": [purchase(T0 - 400, 5000), purchase(T0, 4000)],
        "complaints-and-enquiries": [purchase(T0 - 700, 900), purchase(T0 - 20, 400), complaint(T0 - 10, 5),
                                     enquiry(T0 - 3), enquiry(T0)],
        "returns": [purchase(T0 - 500, 300), purchase(T0 - 30, 500), ret(T0 - 25, 200)],
    }[history]
    state = _scored(fold_at(events, T0, config, hour=23), T0, config)
    reviews, composites = 0, set()
    absolute = _reviews(_scored(fold_at(events, T0, base, hour=23), T0, base), base)
    while (due := next_review_day(state, config)) is not None and due < T0 + 800:
        start = _calibrated_profile(state, state.scored_day, config)
        for day in range(state.scored_day + 1, due):
            assert _calibrated_profile(state, day, config) == start, (
                f"changed on day +{day - state.scored_day} before the review day +{due - state.scored_day}")
            composites.add(evaluate(state, day, config).score.composite)
        assert _calibrated_profile(state, due, config) != start or due == _discrete_due(state, config)
        state = _scored(state, due, config)
        reviews += 1
    # finite and few: the day-based change points plus the days the ranks (4 at most) or the tier (3) fall
    assert 0 < reviews <= absolute + 7, (reviews, absolute)
    assert len(composites) > 1  # the composite is continuous in between


def _reviews(state, config):
    """How many review days the uncalibrated config gives a state in the 800 days after T0."""
    count = 0
    while (due := next_review_day(state, config)) is not None and due < T0 + 800:
        state, count = _scored(state, due, config), count + 1
    return count


def _discrete_due(state, config):
    """The review day without the recency search (a day-based change point, where nothing need change)."""
    days = [d for d in _candidates(state, config, state.scored_day) if d > state.scored_day]
    risk = evaluate(state, state.scored_day, config).risk
    if risk.due_day is not None and risk.due_day > state.scored_day:
        days.append(risk.due_day)
    return min(days, default=None)


def test_calibrated_review_day_is_the_first_day_the_tier_or_r_rank_changes(purchase, fold_at, cfg):
    config = cfg.calibrated(_calibration(cfg, purchase))
    state = _scored(fold_at([purchase(T0 - 2, 2000, id="a"), purchase(T0, 3000, id="b")], T0, config), T0, config)
    due = next_review_day(state, config)
    first = next(d for d in range(T0 + 1, T0 + 800) if _calibrated_profile(state, d, config)
                 != _calibrated_profile(state, T0, config))
    assert due == first


def test_stepping_a_calibrated_customer_and_evaluating_daily_agree(purchase, stepper, cfg):
    """Catching up review days inside a step ends where a clock that ticked every day would: the stream (timer
    sweeps) and `replay --exact` (catch-up in the next step) publish the same tiers."""
    config = cfg.calibrated(_calibration(cfg, purchase))
    history = [purchase(T0 + d, a, id=f"p{d}") for d, a in [(0, 80), (15, 300), (40, 90), (200, 2500)]]
    state, _ = stepper(history, config)
    end = (T0 + 700) * MS_PER_DAY
    caught_up = step(state, None, end, "cust-1", config)
    daily = state
    for day in range(state.scored_day + 1, T0 + 701):
        daily = step(daily, None, day * MS_PER_DAY, "cust-1", config).state
    assert (caught_up.state.tier, caught_up.state.tier_since, caught_up.state.segment, caught_up.state.at_risk) == (
        daily.tier, daily.tier_since, daily.segment, daily.at_risk)
    assert caught_up.state.score_centi == daily.score_centi
