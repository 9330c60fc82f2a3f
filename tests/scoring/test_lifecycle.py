"""Lifecycle segments and the at-risk signal."""

from __future__ import annotations

import pytest

from scoring import NEW_STATE, evaluate, score
from scoring.config import SEGMENTS
from scoring.lifecycle import assess_risk, is_valuable, segment, typical_gap
from scoring.state import evolve

T0 = 20_000


def _seg(state, today, config):
    return segment(state, score(state, today, config), config)


# --- segments ------------------------------------------------------------------------------
# Each row: events as (kind, day offset, amount-or-severity), the day (offset) evaluated, segment.
SEGMENT_ROWS = [
    ("new: first purchase today", [("p", 0, 100)], 0, "new"),
    ("new: tenure exactly new_customer_days", [("p", 0, 100)], 90, "new"),
    # the day after "new" ends, the single early purchase is the whole baseline: declining
    ("not new the day after", [("p", 0, 100)], 91, "declining"),
    ("new: no purchase at all, only an enquiry", [("e", 0, 0)], 0, "new"),
    ("active: steady monthly buyer",
     [("p", -30 * i, 100) for i in range(12)], 0, "active"),
    ("rising: spend in the last 90 days well above the 90 days before",
     [("p", -150, 100), ("p", -10, 400)], 0, "rising"),
    ("active: no purchase in the 90 days before the last 90", [("p", -300, 100), ("p", -10, 400)], 0, "active"),
    ("declining: spend stopped in the recent period",
     [("p", -300 + 30 * i, 100) for i in range(7)], 0, "declining"),
    ("lapsed: last purchase lapsed_days + 1 ago", [("p", -366, 100)], 0, "lapsed"),
    ("not lapsed a day before lapsed_days", [("p", -364, 100)], 0, "declining"),
    ("bad_business: refunds half the spend", [("p", -200, 100), ("p", -5, 100), ("r", -4, 100)], 0,
     "bad_business"),
    ("bad_business beats new", [("p", 0, 100), ("r", 0, 50)], 0, "bad_business"),
    ("refunds just under half the spend", [("p", -200, 100), ("p", -100, 100), ("p", -5, 100), ("r", -4, 149.99)], 0,
     "active"),
    ("bad_business: complaint cost", [("p", -200, 100), ("p", -5, 100), ("c", -1, 4)], 0, "bad_business"),
    ("complaint cost below the share", [("p", -200, 100), ("p", -5, 100), ("c", -1, 3)], 0, "active"),
    ("bad_business: complaint with no purchase", [("c", 0, 1)], 0, "bad_business"),
]


@pytest.mark.parametrize(("events", "offset", "expected"), [row[1:] for row in SEGMENT_ROWS],
                         ids=[row[0] for row in SEGMENT_ROWS])
def test_segment(events, offset, expected, purchase, ret, complaint, enquiry, fold_at, cfg):
    make = {"p": lambda d, a: purchase(T0 + d, a), "r": lambda d, a: ret(T0 + d, a),
            "c": lambda d, a: complaint(T0 + d, severity=a), "e": lambda d, a: enquiry(T0 + d)}
    state = fold_at([make[k](d, a) for k, d, a in events], T0 + max(d for _, d, _ in events))
    got = _seg(state, T0 + offset, cfg)
    assert got == expected
    assert got in SEGMENTS


def test_rising_and_declining_ratios_at_the_edge(purchase, fold_at, cfg):
    # The last 90 days against the 90 days before them.
    earlier = purchase(T0 - 100, 90.0)     # the previous period's spend
    for recent, expected in [(135.0, "rising"), (134.99, "active"), (45.0, "declining"), (45.01, "active")]:
        state = fold_at([earlier, purchase(T0 - 1, recent)], T0)
        assert _seg(state, T0, cfg) == expected, recent


def test_segments_constant_lists_every_segment():
    assert set(SEGMENTS) == {"new", "active", "rising", "declining", "lapsed", "bad_business"}


# --- at-risk -------------------------------------------------------------------------------

def _weekly_buyer(purchase, fold_at, amount, weeks=10):
    """A buyer every 7 days for `weeks` weeks; (state, last purchase day)."""
    events = [purchase(T0 + 7 * i, amount, id=f"wk{i}") for i in range(weeks)]
    last = T0 + 7 * (weeks - 1)
    return fold_at(events, last), last


@pytest.mark.parametrize(("recency", "risk_score", "flag"), [
    (0, 0.0, False),
    (7, 0.0, False),       # ratio 1: score 0
    (10, 0.2143, False),
    (14, 0.5, False),      # ratio == multiple: 0.5, but not yet "more than"
    (15, 0.5714, True),
    (21, 1.0, True),       # ratio 3 = 2*multiple - 1: score 1
    (60, 1.0, True),       # clamped
])
def test_at_risk_from_own_gap_valuable(recency, risk_score, flag, purchase, fold_at, cfg):
    state, last = _weekly_buyer(purchase, fold_at, amount=200)   # 2000 in window: M = 4, valuable
    assert typical_gap(state, cfg) == 7
    risk = evaluate(state, last + recency, cfg).risk
    assert (risk.score, risk.is_at_risk, risk.gap_days) == (pytest.approx(risk_score, abs=1e-4), flag, 7)
    assert risk.due_day == last + 15


@pytest.mark.parametrize("recency", [14, 15, 21, 60])
def test_not_valuable_is_never_at_risk(recency, purchase, fold_at, cfg):
    state, last = _weekly_buyer(purchase, fold_at, amount=20, weeks=3)   # 60: M = 1, tier B
    ev = evaluate(state, last + recency, cfg)
    assert ev.score.m < cfg.at_risk_min_m and ev.tier not in cfg.at_risk_tiers
    assert ev.risk.is_at_risk is False
    assert ev.risk.score > 0 or recency <= 7


@pytest.mark.parametrize(("recency", "risk_score", "flag"), [
    (60, 0.0, False), (90, 0.25, False), (120, 0.5, False), (121, 0.5083, True), (180, 1.0, True),
])
def test_at_risk_uses_default_gap_with_one_purchase_day(recency, risk_score, flag, purchase, fold_at, cfg):
    # two purchases on the same day are still one purchase day: the population default gap applies
    state = fold_at([purchase(T0, 800), purchase(T0, 700)], T0)
    assert state.purchase_days == 1
    assert typical_gap(state, cfg) == cfg.default_gap_days == 60
    risk = evaluate(state, T0 + recency, cfg).risk
    assert (risk.score, risk.is_at_risk) == (pytest.approx(risk_score, abs=1e-4), flag)


@pytest.mark.parametrize(("tier", "flag"), [("AAA", True), ("A", True), ("B", False), ("C", False), (None, False)])
def test_valuable_by_tier(tier, flag, purchase, fold_at, cfg):
    state, last = _weekly_buyer(purchase, fold_at, amount=20)     # M = 2
    state = evolve(state, tier=tier)
    s = score(state, last + 30, cfg)
    assert is_valuable(s, tier, cfg) is flag
    assert assess_risk(state, s, tier, cfg).is_at_risk is flag


def test_gap_from_own_history_not_default(purchase, fold_at, cfg):
    # purchase days T0, T0+10, T0+20: gap 10, at risk once recency > 20
    state = fold_at([purchase(T0, 600), purchase(T0 + 10, 600), purchase(T0 + 20, 600)], T0 + 20)
    assert typical_gap(state, cfg) == 10
    assert evaluate(state, T0 + 40, cfg).risk.is_at_risk is False
    assert evaluate(state, T0 + 41, cfg).risk.is_at_risk is True


def test_no_purchase_no_risk(enquiry, fold_at, cfg):
    state = fold_at([enquiry(T0)], T0)
    risk = evaluate(state, T0 + 500, cfg).risk
    assert (risk.score, risk.is_at_risk, risk.due_day) == (0.0, False, None)
    assert evaluate(NEW_STATE, T0, cfg).risk.is_at_risk is False


def test_risk_due_day_is_the_first_day_the_flag_trips(purchase, fold_at, config_with):
    """`Risk.due_day` promises the first day with recency > multiple x gap.

    With multiple 1.2 and a gap of 35/3 days, 1.2 * gap is 13.999999999999998 in floating point,
    so due_day says recency 14 while the flag (ratio > 1.2, computed as 14 / gap == 1.2) first
    trips at recency 15.
    """
    config = config_with(at_risk_gap_multiple=1.2)
    days = [T0, T0 + 10, T0 + 20, T0 + 35]
    state = fold_at([purchase(d, 600, id=f"g{d}") for d in days], T0 + 35)
    first_flagged = next(d for d in range(T0 + 35, T0 + 100) if evaluate(state, d, config).risk.is_at_risk)
    assert evaluate(state, T0 + 35, config).risk.due_day == first_flagged


@pytest.mark.parametrize("lapsed_days", [365, 500])
def test_no_purchase_left_in_the_window_is_not_active(lapsed_days, purchase, fold_at, config_with):
    """A customer whose every purchase has left the window, but who is not yet lapsed, shows as "active".

    `segment` only compares recent with earlier spend when the earlier baseline is > 0; with nothing
    in the window both are 0 and it falls through to "active". With the defaults (lapsed_days ==
    window_days == 365) this happens on exactly one day (recency 365: declining the day before,
    lapsed the day after); with lapsed_days > window_days, for every day in between.
    """
    config = config_with(lapsed_days=lapsed_days)
    state = fold_at([purchase(T0, 100), purchase(T0 + 100, 100)], T0 + 100)
    last = T0 + 100
    emptied = last + config.window_days          # first day with no purchase left in the window
    assert score(state, emptied, config).frequency == 0
    seen = {day - last: _seg(state, day, config) for day in range(emptied, last + lapsed_days + 1)}
    assert "active" not in seen.values(), seen    # days since last purchase -> segment
