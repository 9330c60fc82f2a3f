"""Fold semantics: idempotence, out-of-order events, the window, rejections, currencies."""

from __future__ import annotations

import pytest

from scoring import NEW_STATE, CoreEvent, Kind, Outcome, apply, fold, score
from scoring.dedupe import entry_day
from scoring.events import MS_PER_DAY
from scoring.fold import advance, window_start
from scoring.state import P_COUNT, P_E4, R_E4

T0 = 20_000
NOW = T0 * MS_PER_DAY + 20 * 3_600_000   # 20:00 UTC on T0


# --- idempotence -------------------------------------------------------------------------------

@pytest.mark.parametrize("kind", ["purchase", "ret", "complaint", "enquiry"])
def test_replayed_event_changes_nothing(kind, request, cfg):
    make = request.getfixturevalue(kind)
    first = make(T0 - 3, id="same") if kind in ("complaint", "enquiry") else make(T0 - 3, 50, id="same")
    state = apply(NEW_STATE, first, NOW, cfg)
    assert state.outcome is Outcome.APPLIED
    again = apply(state.state, first, NOW, cfg)
    assert again.outcome is Outcome.DUPLICATE
    assert again.state is state.state


@pytest.mark.parametrize("other", [
    {"amount": 999}, {"day": T0 - 1}, {"hour": 3}, {"currency": "EUR"},
])
def test_same_id_with_other_content_is_refused(other, purchase, cfg):
    """Dedupe keys on the id alone: the same id with another amount, or re-sent with a corrected date,
    is not a second event nor silently dropped, it is refused (a dead letter in the stream)."""
    cfg = cfg.model_copy(update={"fx_rates": {"EUR": 1.0}})
    state = apply(NEW_STATE, purchase(T0, 50, id="x"), NOW, cfg).state
    other = dict(other)
    again = apply(state, purchase(other.pop("day", T0), other.pop("amount", 50), id="x", **other), NOW, cfg)
    assert (again.outcome, again.reason) == (Outcome.REJECTED, "event_id reused with different content")
    assert again.state is state
    assert score(again.state, T0, cfg).monetary == 50


def test_fold_counts_duplicates_within_one_batch_once(purchase, cfg):
    event = purchase(T0, 50, id="x")
    state, applied, rejected = fold(NEW_STATE, [event, event, event], NOW, cfg)
    assert (applied, rejected) == (1, [])
    assert state.purchases == 1
    assert state.total_e4 == 50_0000


def test_replay_of_an_old_event_out_of_window_is_a_duplicate(purchase, cfg):
    old = purchase(T0 - 500, 70, id="old")
    state = apply(NEW_STATE, old, NOW, cfg).state
    assert state.buckets == {}
    again = apply(state, old, NOW, cfg)
    assert again.outcome is Outcome.DUPLICATE
    assert again.state.purchases == 1


def test_apply_never_mutates_its_input(purchase, cfg):
    state = apply(NEW_STATE, purchase(T0, 50), NOW, cfg).state
    before = (dict(state.buckets), state.figures, state.clock_ms)
    apply(state, purchase(T0, 60), NOW + MS_PER_DAY * 400, cfg)
    fold(state, [purchase(T0 - 1, 1), purchase(T0 - 600, 1)], NOW + MS_PER_DAY * 400, cfg)
    assert (dict(state.buckets), state.figures, state.clock_ms) == before
    assert NEW_STATE.buckets == {}


# --- out-of-order ------------------------------------------------------------------------------

def test_late_purchase_never_moves_last_purchase_backwards(purchase, fold_at):
    state = fold_at([purchase(T0, 10)], T0)
    state = fold_at([purchase(T0 - 20, 10)], T0, state=state)
    assert (state.first_day, state.last_day) == (T0 - 20, T0)
    assert state.purchase_days == 2


@pytest.mark.parametrize("order", [(0, 1, 2, 3), (3, 2, 1, 0), (2, 0, 3, 1), (1, 3, 0, 2)])
def test_out_of_order_events_land_on_their_own_day(order, purchase, ret, fold_at, cfg):
    events = [purchase(T0 - 30, 100, id="a"), purchase(T0 - 10, 40, id="b"),
              ret(T0 - 9, 15, id="c"), purchase(T0 - 30, 5, id="d")]
    state = fold_at([events[i] for i in order], T0)
    assert state.buckets[T0 - 30][P_E4] == 105_0000
    assert state.buckets[T0 - 30][P_COUNT] == 2
    assert state.buckets[T0 - 10][P_E4] == 40_0000
    assert state.buckets[T0 - 9][R_E4] == 15_0000
    assert (state.first_day, state.last_day, state.purchase_days, state.purchases) == (T0 - 30, T0 - 10, 2, 3)
    assert state.first_day_e4 == 105_0000
    assert state.total_e4 == 145_0000


def test_late_first_purchase_moves_first_day_and_first_day_amount(purchase, fold_at):
    state = fold_at([purchase(T0, 10), purchase(T0 + 5, 20)], T0 + 5)
    state = fold_at([purchase(T0 - 5, 30)], T0 + 5, state=state)
    assert (state.first_day, state.first_day_e4, state.purchase_days) == (T0 - 5, 30_0000, 3)


def test_first_seen_day_counts_every_kind(enquiry, purchase, fold_at):
    state = fold_at([purchase(T0, 10), enquiry(T0 - 40)], T0)
    assert state.first_seen_day == T0 - 40
    assert state.first_day == T0


# --- the window -------------------------------------------------------------------------------

def test_event_older_than_window_changes_only_all_time_figures(purchase, ret, complaint, fold_at, cfg):
    state = fold_at([purchase(T0 - 10, 100)], T0)
    old_day = window_start(T0, cfg) - 1
    later = fold_at([purchase(old_day, 400), ret(old_day, 50), complaint(old_day, 5)], T0, state=state)
    assert later.buckets.keys() == state.buckets.keys() == {T0 - 10}
    assert later.buckets == state.buckets
    assert (later.first_day, later.purchases, later.total_e4, later.purchase_days) == (old_day, 2, 500_0000, 2)
    assert later.first_day_e4 == 400_0000
    before, after = score(state, T0, cfg), score(later, T0, cfg)
    assert (after.frequency, after.monetary, after.returns_amount, after.complaints) == (
        before.frequency, before.monetary, before.returns_amount, before.complaints)
    assert after.tenure_days == T0 - old_day == cfg.window_days


def test_first_day_inside_the_window_gets_a_bucket(purchase, fold_at, cfg):
    start = window_start(T0, cfg)
    state = fold_at([purchase(start, 10)], T0)
    assert set(state.buckets) == {start}


@pytest.mark.parametrize(("seconds_ahead", "accepted"), [
    (0, True), (3600, True), (86_400, True), (86_400.001, False), (86_401, False), (10 * 86_400, False),
])
def test_future_events_beyond_max_future_seconds_are_rejected(seconds_ahead, accepted, cfg):
    event = CoreEvent(Kind.PURCHASE, "f", NOW + round(seconds_ahead * 1000), 1000, "USD")
    result = apply(NEW_STATE, event, NOW, cfg)
    if accepted:
        assert result.outcome is Outcome.APPLIED
    else:
        assert result.outcome is Outcome.REJECTED
        assert result.state is NEW_STATE
        assert "after now" in result.reason and "86400" in result.reason


def test_fold_reports_rejections_and_applies_the_rest(purchase, cfg):
    good, future = purchase(T0, 10), purchase(T0 + 5, 10)
    state, applied, rejected = fold(NEW_STATE, [future, good], NOW, cfg)
    assert applied == 1
    assert [e for e, _ in rejected] == [future]
    assert "after now" in rejected[0][1]
    assert state.last_day == T0


@pytest.mark.parametrize(("event", "reason"), [
    (CoreEvent(Kind.PURCHASE, "x", NOW, -1, "USD"), "amount must be >= 0"),
    (CoreEvent(Kind.COMPLAINT, "x", NOW, 0, "", 0), "severity must be 1-5"),
    (CoreEvent(Kind.COMPLAINT, "x", NOW, 0, "", 6), "severity must be 1-5"),
    (CoreEvent(Kind.PURCHASE, "x", NOW, 100, "EUR"), "currency 'EUR' has no rate to USD"),
    (CoreEvent(Kind.RETURN, "x", NOW, 100, "GBP"), "currency 'GBP' has no rate to USD"),
])
def test_invalid_events_are_rejected_with_a_reason(event, reason, cfg):
    result = apply(NEW_STATE, event, NOW, cfg)
    assert (result.outcome, result.reason, result.state) == (Outcome.REJECTED, reason, NEW_STATE)


@pytest.mark.parametrize(("currency", "units", "base_units"), [
    ("USD", 1000, 1000), ("", 1000, 1000), ("EUR", 1000, 1100), ("JPY", 100_000, 670), ("EUR", 1, 1),
    ("EUR", 3, 3), ("JPY", 1_000_000, 6700),  # 1/10,000 units, half to even: 3.3 -> 3
])
def test_fx_conversion_to_base_units(currency, units, base_units, config_with):
    config = config_with(fx_rates={"EUR": 1.1, "JPY": 0.0067})
    event = CoreEvent(Kind.PURCHASE, "x", NOW, units, currency)
    state = apply(NEW_STATE, event, NOW, config).state
    assert state.buckets[T0][P_E4] == base_units
    assert state.total_e4 == base_units


def test_return_is_converted_too(config_with):
    config = config_with(fx_rates={"EUR": 2.0})
    state, _, rejected = fold(NEW_STATE, [CoreEvent(Kind.RETURN, "r", NOW, 500, "EUR")], NOW, config)
    assert not rejected
    assert state.buckets[T0][R_E4] == 1000


def test_window_is_pruned_as_the_clock_advances(purchase, fold_at, cfg):
    state = fold_at([purchase(T0, 10), purchase(T0 + 100, 20), purchase(T0 + 200, 30)], T0 + 200)
    assert set(state.buckets) == {T0, T0 + 100, T0 + 200}
    # T0 is the first window day while today is T0 + window - 1; it leaves the next day
    kept = advance(state, (T0 + cfg.window_days - 1) * MS_PER_DAY, cfg)
    assert set(kept.buckets) == {T0, T0 + 100, T0 + 200}
    pruned = advance(state, (T0 + cfg.window_days) * MS_PER_DAY, cfg)
    assert set(pruned.buckets) == {T0 + 100, T0 + 200}
    assert (pruned.purchases, pruned.total_e4, pruned.first_day) == (3, 60_0000, T0)
    empty = advance(state, (T0 + 200 + cfg.window_days) * MS_PER_DAY, cfg)
    assert empty.buckets == {}
    assert empty.purchase_days == 3


def test_clock_never_runs_backwards(purchase, cfg):
    state = apply(NEW_STATE, purchase(T0, 10), NOW, cfg).state
    older_now = apply(state, purchase(T0 - 3, 10), NOW - 5 * MS_PER_DAY, cfg).state
    assert older_now.clock_ms == NOW
    assert advance(state, NOW - 1, cfg) is state


def test_fold_of_nothing_only_moves_the_clock(cfg):
    state, applied, rejected = fold(NEW_STATE, [], NOW, cfg)
    assert (applied, rejected, state.clock_ms, state.figures) == (0, [], NOW, NEW_STATE.figures)


# --- bugs: all-time figures outside the window -----------------------------------------------

def test_redelivered_event_after_its_day_left_the_window_is_not_counted_again(purchase, cfg):
    """A bucket's event hashes are dropped with the bucket when its day leaves the window and are
    not moved to `old_ids`, so a redelivery of that event is applied again to the all-time figures."""
    event = purchase(T0, 50, id="once")
    state = apply(NEW_STATE, event, NOW, cfg).state
    later_now = NOW + (cfg.window_days + 10) * MS_PER_DAY
    state = advance(state, later_now, cfg)
    again = apply(state, event, later_now, cfg)
    assert again.outcome is Outcome.DUPLICATE
    assert (again.state.purchases, again.state.total_e4) == (1, 50_0000)


def test_old_event_dedup_survives_many_old_events(purchase, cfg):
    """Re-folding a history with many events before the window (within dedupe_days) applies none again."""
    old = [purchase(T0 - 400 - i, 1, id=f"old-{i}") for i in range(300)]
    state, applied, _ = fold(NEW_STATE, old, NOW, cfg)
    assert applied == len(old)
    again, applied_again, _ = fold(state, old, NOW, cfg)
    assert applied_again == 0
    assert again.purchases == len(old)


def test_events_older_than_dedupe_days_are_refused_as_too_old(purchase, cfg):
    """Ids are remembered for dedupe_days: an older event could not be recognised when redelivered, so it
    is refused rather than counted (a redelivery would count it twice in the all-time figures)."""
    ancient, old = purchase(T0 - cfg.dedupe_days, 1, id="ancient"), purchase(T0 - cfg.dedupe_days + 1, 1, id="old")
    state, applied, rejected = fold(NEW_STATE, [ancient, old], NOW, cfg)
    assert applied == 1 and [e for e, _ in rejected] == [ancient]
    assert "too old to deduplicate" in rejected[0][1]
    assert [entry_day(e) for e in state.seen] == [T0 - cfg.dedupe_days + 1]
    later = advance(state, NOW + MS_PER_DAY, cfg)  # the next day, "old" passes the horizon: forgotten
    assert later.seen == ()


def test_distinct_purchase_days_outside_the_window_are_order_independent(purchase, fold_at):
    """`purchase_days` (x + 1 in BTYD terms, and the typical gap for at-risk) must not count a second
    order on an out-of-window day that is neither the first nor the last purchase day twice."""
    a = [purchase(T0 - 600, 10, id="a"), purchase(T0 - 500, 10, id="b"),
         purchase(T0 - 550, 10, id="c"), purchase(T0 - 550, 10, id="d")]
    b = [a[0], a[2], a[3], a[1]]
    in_order, shuffled = fold_at(a, T0), fold_at(b, T0)
    assert in_order.purchase_days == shuffled.purchase_days == 3
    assert in_order.figures == shuffled.figures


def test_purchase_days_stay_exact_as_days_leave_the_window(purchase, fold_at, cfg):
    state = fold_at([purchase(T0, 10, id="a"), purchase(T0 + 5, 10, id="b")], T0 + 5)
    later = T0 + cfg.window_days + 10                   # both days have left the window
    state = fold_at([purchase(T0 + 5, 10, id="c")], later, state=state)   # late order on an old day
    state = fold_at([purchase(later, 10, id="d")], later, state=state)
    assert (state.purchase_days, state.purchases, state.first_day, state.last_day) == (3, 4, T0, later)
