"""step(): the function the stream and replay share."""

from __future__ import annotations

import re

import pytest

from scoring import (
    NEW_STATE,
    ActionRequest,
    Alert,
    CoreEvent,
    Kind,
    ScoreChanged,
    TierChange,
    next_review_day,
    step,
)
from scoring.events import MS_PER_DAY
from scoring.state import evolve
from scoring.step import describe_cause, review_cause

T0 = 20_000
CUST = "cust-42"


def _of(decisions, cls):
    return [d for d in decisions if isinstance(d, cls)]


def _aaa_customer(weekly, stepper, cfg, weeks=52):
    """A customer buying 100 every week for `weeks` weeks: AAA. (state, last purchase day)."""
    state, _ = stepper(weekly(T0, weeks, 100.0), cfg, customer=CUST)
    return state, T0 + 7 * (weeks - 1)


# --- first event, tier changes, actions -------------------------------------------------------

def test_first_event_assigns_a_tier(purchase, cfg):
    event = purchase(T0, 50, id="first")
    result = step(NEW_STATE, event, event.at_ms, CUST, cfg)
    assert (result.outcome, result.reason, result.resent) == ("applied", "", False)
    (change,) = _of(result.decisions, TierChange)
    assert (change.from_tier, change.to_tier, change.direction) == (None, "B", "new")
    assert (change.score, change.previous_score, change.cause, change.at_ms) == (35.0, None, "first", event.at_ms)
    assert (change.touch_channel, change.touch_cadence_days, change.touch_owner) == ("email", 60, "crm")
    assert len(_of(result.decisions, ScoreChanged)) == 1
    assert _of(result.decisions, ActionRequest) == []      # no default rule listens to "new"
    state = result.state
    assert (state.tier, state.tier_since, state.scored_day, state.segment, state.score_centi) == (
        "B", T0, T0, "new", 3500)
    assert result.evaluation is not None and result.evaluation.tier == "B"


def test_first_event_straight_into_aaa_is_new_not_up(purchase, cfg):
    result = step(NEW_STATE, purchase(T0, 5000, id="big"), (T0 + 0.5) * MS_PER_DAY, CUST, cfg)
    # R5 + F1 + M5 = 70 -> A
    (change,) = _of(result.decisions, TierChange)
    assert (change.to_tier, change.direction) == ("A", "new")


def test_tier_up_produces_tier_change_and_matching_action(purchase, cfg):
    state = step(NEW_STATE, purchase(T0, 50, id="p1"), (T0 * MS_PER_DAY) + 1000, CUST, cfg).state
    event = purchase(T0 + 1, 300, id="p2")
    result = step(state, event, event.at_ms, CUST, cfg)
    (change,) = _of(result.decisions, TierChange)
    assert (change.from_tier, change.to_tier, change.direction) == ("B", "A", "up")
    assert (change.score, change.previous_score) == (60.0, 35.0)
    (action,) = _of(result.decisions, ActionRequest)
    assert (action.rule, action.trigger, action.action_type, action.tier) == (
        "thank-upgrade", "tier_changed", "upgrade_thanks", "A")
    assert (action.channel, action.requested_channel, action.priority, action.owner) == ("email", "email", "normal",
                                                                                         "crm")
    assert action.due_ms == event.at_ms + MS_PER_DAY
    assert (action.roi_decision, action.cost, action.annual_value) == ("approved", 0.1, 350.0)
    assert action.reason == "email costs 0.10 <= budget 35.00"


@pytest.mark.parametrize(("share", "decision", "channel", "cost"), [
    (0.1, "approved", "phone", 15.0),
    (0.002, "downgraded", "mail", 3.0),
    (0.0001, "downgraded", "email", 0.1),
    (0.00001, "downgraded", "online", 0.0),
])
def test_tier_up_into_aaa_action_goes_through_the_roi_guard(share, decision, channel, cost, purchase, stepper,
                                                            config_with):
    config = config_with(roi_max_share=share)
    events = [purchase(T0, 50, id="a"), purchase(T0 + 1, 300, id="b"), purchase(T0 + 2, 1000, id="c"),
              purchase(T0 + 3, 1650, id="d")]
    _, decisions = stepper(events, config, customer=CUST)
    ups = [d for d in _of(decisions, TierChange) if d.to_tier == "AAA"]
    assert len(ups) == 1 and ups[0].direction == "up" and ups[0].cause == "d"
    (welcome,) = [a for a in _of(decisions, ActionRequest) if a.rule == "welcome-top-tier"]
    assert (welcome.roi_decision, welcome.channel, welcome.requested_channel, welcome.cost) == (
        decision, channel, "phone", cost)
    assert (welcome.priority, welcome.owner, welcome.action_type, welcome.annual_value) == (
        "high", "account_manager", "vip_welcome", 3000.0)
    assert welcome.due_ms == events[-1].at_ms + 2 * MS_PER_DAY


def test_decision_ids_are_32_hex_and_unique(weekly, stepper, cfg):
    _, decisions = stepper(weekly(T0, 30, 100.0), cfg, customer=CUST)
    ids = [d.id for d in decisions]
    assert all(re.fullmatch(r"[0-9a-f]{32}", i) for i in ids)
    assert len(set(ids)) == len(ids)


# --- time alone: falling, at-risk ------------------------------------------------------------

def test_customer_who_stops_buying_falls_and_raises_one_at_risk_alert(weekly, stepper, cfg):
    state, last = _aaa_customer(weekly, stepper, cfg)
    assert (state.tier, state.at_risk) == ("AAA", False)
    result = step(state, None, (last + 400) * MS_PER_DAY, CUST, cfg)   # time alone, no event
    assert result.outcome == "reviewed"
    alerts = _of(result.decisions, Alert)
    assert [a.alert_kind for a in alerts] == ["at_risk"]
    (alert,) = alerts
    assert alert.cause == review_cause(last + 15)          # weekly rhythm: overdue after 2 x 7 days
    assert alert.tier == "AAA" and alert.value_at_stake > 0 and 0.5 < alert.at_risk_score <= 1
    retention = [a for a in _of(result.decisions, ActionRequest) if a.trigger == "at_risk"]
    assert [(a.rule, a.cause) for a in retention] == [("retain-at-risk", alert.cause)]
    downs = _of(result.decisions, TierChange)
    assert [d.direction for d in downs] == ["down"] * len(downs) and downs
    assert [(d.from_tier, d.to_tier) for d in downs] == [("AAA", "A"), ("A", "B"), ("B", "C")]
    assert result.state.tier == "C"
    assert result.state.segment == "lapsed"
    # later reviews raise no further alert
    again = step(result.state, None, (last + 800) * MS_PER_DAY, CUST, cfg)
    assert _of(again.decisions, Alert) == []


def test_at_risk_is_raised_once_and_cleared_by_the_next_purchase(weekly, stepper, purchase, cfg):
    state, last = _aaa_customer(weekly, stepper, cfg)
    r14 = step(state, None, (last + 14) * MS_PER_DAY, CUST, cfg)
    assert r14.state.at_risk is False and _of(r14.decisions, Alert) == []
    r20 = step(r14.state, None, (last + 20) * MS_PER_DAY, CUST, cfg)
    assert r20.state.at_risk is True
    assert [a.alert_kind for a in _of(r20.decisions, Alert)] == ["at_risk"]
    r25 = step(r20.state, None, (last + 25) * MS_PER_DAY, CUST, cfg)
    assert r25.state.at_risk is True and _of(r25.decisions, Alert) == []
    back = purchase(last + 26, 100, id="back")
    r26 = step(r25.state, back, back.at_ms, CUST, cfg)
    assert r26.state.at_risk is False
    assert _of(r26.decisions, Alert) == []
    assert len(_of(r26.decisions, ScoreChanged)) == 1


# --- complaints ------------------------------------------------------------------------------

def test_complaint_from_aaa_raises_top_tier_alert(weekly, stepper, complaint, cfg):
    state, last = _aaa_customer(weekly, stepper, cfg)
    event = complaint(last + 1, severity=4, id="cmp")
    result = step(state, event, event.at_ms, CUST, cfg)
    (alert,) = _of(result.decisions, Alert)
    assert (alert.alert_kind, alert.cause, alert.tier) == ("top_tier_complaint", "cmp", "AAA")
    assert alert.reason == "severity 4 complaint from tier AAA"
    (action,) = [a for a in _of(result.decisions, ActionRequest) if a.trigger == "top_tier_complaint"]
    assert (action.rule, action.action_type, action.channel, action.priority, action.due_ms) == (
        "top-tier-complaint", "service_recovery_call", "phone", "urgent", event.at_ms)


@pytest.mark.parametrize("amount", [50, 300])
def test_complaint_from_lower_tiers_raises_no_alert(amount, purchase, complaint, stepper, cfg):
    state, _ = stepper([purchase(T0, amount, id="p")], cfg)
    assert state.tier in ("A", "B")
    event = complaint(T0 + 1, severity=5, id="cmp")
    result = step(state, event, event.at_ms, CUST, cfg)
    assert _of(result.decisions, Alert) == []


# --- redelivery and the outbox -------------------------------------------------------------

def test_redelivered_event_resends_the_same_decisions(purchase, cfg):
    state = step(NEW_STATE, purchase(T0, 50, id="p1"), T0 * MS_PER_DAY + 1000, CUST, cfg).state
    event = purchase(T0 + 1, 300, id="p2")
    first = step(state, event, event.at_ms, CUST, cfg)
    assert first.decisions and not first.resent
    again = step(first.state, event, event.at_ms + 60_000, CUST, cfg)
    assert (again.outcome, again.resent) == ("duplicate", True)
    assert again.decisions == first.decisions
    assert [d.id for d in again.decisions] == [d.id for d in first.decisions]
    assert again.state == first.state


def test_redelivery_after_outbox_ttl_sends_nothing(purchase, enquiry, cfg):
    event = purchase(T0, 50, id="p1")
    first = step(NEW_STATE, event, event.at_ms, CUST, cfg)
    later = event.at_ms + round(cfg.outbox_ttl_seconds * 1000) + 1
    # any later step prunes expired outbox entries
    pruned = step(first.state, enquiry(T0, id="q", hour=14), later, CUST, cfg)
    assert all(e.cause != "p1" for e in pruned.state.outbox)
    again = step(pruned.state, event, later + 1, CUST, cfg)
    assert (again.outcome, again.decisions, again.resent, again.reason) == ("duplicate", (), False, "already applied")


def test_outbox_keeps_entries_within_ttl(purchase, enquiry, cfg):
    event = purchase(T0, 50, id="p1")
    first = step(NEW_STATE, event, event.at_ms, CUST, cfg)
    within = event.at_ms + round(cfg.outbox_ttl_seconds * 1000)
    kept = step(first.state, enquiry(T0, id="q", hour=12.5), within, CUST, cfg)
    assert kept.state.outbox[0].cause == "p1"
    again = step(kept.state, event, within, CUST, cfg)
    assert again.resent and again.decisions == first.decisions


def test_redelivered_review_resends(weekly, stepper, cfg):
    state, last = _aaa_customer(weekly, stepper, cfg)
    now = (last + 20) * MS_PER_DAY + 5000
    first = step(state, None, now, CUST, cfg)
    assert first.decisions
    assert {d.cause for d in first.decisions} <= {review_cause(last + 15), review_cause(last + 20)}
    again = step(first.state, None, now + 1000, CUST, cfg)
    assert (again.outcome, again.resent, again.decisions) == ("duplicate", True, first.decisions)


def test_explicit_review_cause_is_deduplicated(weekly, stepper, cfg):
    state, last = _aaa_customer(weekly, stepper, cfg)
    now = (last + 20) * MS_PER_DAY
    first = step(state, None, now, CUST, cfg, cause="timer-7")
    assert all(d.cause in ("timer-7", review_cause(last + 15)) for d in first.decisions)
    again = step(first.state, None, now, CUST, cfg, cause="timer-7")
    assert again.resent and again.decisions == first.decisions


def test_time_step_with_nothing_to_do_changes_nothing_but_the_clock(purchase, stepper, cfg):
    state, _ = stepper([purchase(T0, 50, id="p")], cfg)
    half_past = T0 * MS_PER_DAY + 12 * 3_600_000 + 600_000    # 12:10, within the 15-minute outbox TTL
    result = step(state, None, round(half_past), CUST, cfg)
    assert (result.outcome, result.decisions) == ("reviewed", ())
    assert evolve(result.state, clock_ms=state.clock_ms) == state
    # later, only the expired outbox entry goes too
    evening = step(state, None, T0 * MS_PER_DAY + 20 * 3_600_000, CUST, cfg)
    assert evening.decisions == ()
    assert evolve(evening.state, clock_ms=state.clock_ms, outbox=state.outbox) == state
    assert evening.state.outbox == ()


def test_rejected_event_leaves_state_unchanged(purchase, cfg):
    state = step(NEW_STATE, purchase(T0, 50, id="p"), T0 * MS_PER_DAY, CUST, cfg).state
    bad = CoreEvent(Kind.PURCHASE, "bad", (T0 + 3) * MS_PER_DAY, 100, "USD")
    result = step(state, bad, T0 * MS_PER_DAY + 1, CUST, cfg)
    assert (result.outcome, result.state, result.decisions, result.evaluation) == ("rejected", state, (), None)
    assert "after now" in result.reason


def test_clock_never_runs_backwards_in_step(purchase, cfg):
    state = step(NEW_STATE, purchase(T0, 50, id="p"), (T0 + 3) * MS_PER_DAY, CUST, cfg).state
    result = step(state, purchase(T0, 10, id="q"), T0 * MS_PER_DAY, CUST, cfg)
    assert result.state.clock_ms == (T0 + 3) * MS_PER_DAY
    assert result.state.scored_day == T0 + 3


# --- catch-up --------------------------------------------------------------------------------

def _strip(state):
    return evolve(state, outbox=())


@pytest.mark.parametrize("jump", [10, 60, 200, 400, 900])
def test_catch_up_equals_stepping_every_review_day(jump, weekly, stepper, complaint, cfg):
    state, last = _aaa_customer(weekly, stepper, cfg)
    state = step(state, complaint(last, 2, id="c"), last * MS_PER_DAY + 1, CUST, cfg).state
    far = (last + jump) * MS_PER_DAY + 7 * 3_600_000
    straight = step(state, None, far, CUST, cfg)

    walked, decisions = state, []
    while (due := next_review_day(walked, cfg)) is not None and due < far // MS_PER_DAY:
        r = step(walked, None, due * MS_PER_DAY, CUST, cfg)
        walked, decisions = r.state, decisions + list(r.decisions)
    final = step(walked, None, far, CUST, cfg)
    decisions += final.decisions

    assert _strip(final.state) == _strip(straight.state)
    assert (final.state.tier, final.state.segment, final.state.at_risk) == (
        straight.state.tier, straight.state.segment, straight.state.at_risk)
    # Tier changes, actions and alerts: exactly the day-by-day path's, under the same causes and ids.
    assert [d for d in straight.decisions if d.kind != "score"] == [d for d in decisions if d.kind != "score"]
    # Score snapshots: one, of the step's final state, when the day-by-day path published any.
    snapshots = [d for d in straight.decisions if d.kind == "score"]
    assert len(snapshots) == (1 if any(d.kind == "score" for d in decisions) else 0)
    assert all(d.cause == f"review@{far // MS_PER_DAY}" for d in snapshots)


def test_catch_up_then_event_equals_reviews_then_event(weekly, stepper, purchase, cfg):
    state, last = _aaa_customer(weekly, stepper, cfg)
    event = purchase(last + 300, 40, id="late")
    straight = step(state, event, event.at_ms, CUST, cfg)
    walked = state
    while (due := next_review_day(walked, cfg)) is not None and due < last + 300:
        walked = step(walked, None, due * MS_PER_DAY, CUST, cfg).state
    final = step(walked, event, event.at_ms, CUST, cfg)
    assert _strip(final.state) == _strip(straight.state)
    assert final.decisions == tuple(d for d in straight.decisions if d.cause == "late")
    assert [d.cause for d in straight.decisions if d.kind == "score"] == ["late"]


# --- due_reviews: time alone, as the event-clock sweep and replay --exact do ---------------------

def test_due_reviews_step_each_due_day_and_agree_with_one_catch_up(weekly, stepper, cfg):
    from scoring.step import due_reviews

    state, last = _aaa_customer(weekly, stepper, cfg)
    until = last + 400  # a long silence: the customer falls through the tiers
    reviews = due_reviews(state, until, CUST, cfg)
    assert len(reviews) >= 2
    days = []
    for result in reviews:
        day = result.state.clock_ms // MS_PER_DAY
        assert result.state.clock_ms == (day + 1) * MS_PER_DAY - 1  # as of the end of its own due day
        assert all(d.cause == review_cause(day) for d in result.decisions)
        days.append(day)
    assert days == sorted(set(days)) and days[-1] <= until
    final = reviews[-1].state
    assert final.review_day is None or final.review_day > until
    # the same tier changes, actions and alerts as one step that catches the days up at once
    once = step(state, None, (until + 1) * MS_PER_DAY - 1, CUST, cfg)
    by_day = [d.id for r in reviews for d in r.decisions if not isinstance(d, ScoreChanged)]
    caught = [d.id for d in once.decisions if not isinstance(d, ScoreChanged)]
    assert by_day == caught
    assert due_reviews(final, until, CUST, cfg) == []  # nothing more is due


# --- the cause in words ---------------------------------------------------------------------------

def test_decisions_carry_their_cause_in_words(purchase, weekly, stepper, cfg):
    event = purchase(T0, 42.5, id="p42", currency=cfg.base_currency)
    (change,) = _of(step(NEW_STATE, event, T0 * MS_PER_DAY, CUST, cfg).decisions, TierChange)
    assert (change.cause, change.cause_text) == ("p42", "purchase 42.50")  # the id stays the cause
    state, last = _aaa_customer(weekly, stepper, cfg)
    lapsed = step(state, None, (last + 400) * MS_PER_DAY, CUST, cfg)
    for decision in lapsed.decisions:
        if not isinstance(decision, ScoreChanged):  # each review day names its own recency
            day = int(decision.cause.removeprefix("review@"))
            assert decision.cause_text == f"no purchase for {day - last} days"
    assert _of(lapsed.decisions, Alert)[0].cause_text == "no purchase for 15 days"


def test_cause_text_of_each_kind_of_cause(purchase, ret, complaint, enquiry, cfg):
    s = step(NEW_STATE, purchase(T0, 10), T0 * MS_PER_DAY, CUST, cfg).evaluation.score
    base = cfg.base_currency
    assert describe_cause(purchase(T0, 1234.5, currency=base), s, cfg) == "purchase 1234.50"
    assert describe_cause(purchase(T0, 0.07, currency=""), s, cfg) == "purchase 0.07"
    other = "EUR" if base != "EUR" else "GBP"
    assert describe_cause(ret(T0, 12, currency=other), s, cfg) == f"return 12.00 {other}"
    assert describe_cause(complaint(T0, severity=4), s, cfg) == "complaint, severity 4"
    assert describe_cause(enquiry(T0), s, cfg) == "enquiry"
    assert describe_cause(None, s._replace(recency_days=1), cfg) == "no purchase for 1 day"
    assert describe_cause(None, s._replace(recency_days=None), cfg) == "review: no purchase yet"
