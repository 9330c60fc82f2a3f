"""Retention: a customer forgotten after `retention.forget_after_days` without an event, or at an erasure request."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from scoring import NEW_STATE, ConfigError, CoreEvent, Kind, codec, step
from scoring.codec import decode_state, encode_state, peek_last_seen_day
from scoring.decisions import Forgotten, TierChange
from scoring.events import MS_PER_DAY
from scoring.retention import is_reread, remnant, surviving
from scoring.step import due_reviews, review_cause

T0 = 20_000
CUST = "cust-r"
N = 30  # forget after 30 idle days (lapsed after 20)


@pytest.fixture
def kept(config_with):
    return config_with(lapsed_days=20, recency_days=(5, 10, 15, 20), retention={"forget_after_days": N})


def _erasure(day: int, id: str = "erase-1") -> CoreEvent:
    return CoreEvent(Kind.ERASURE, id, day * MS_PER_DAY + 3_600_000)


def _review(state, day, cfg):
    """A review as of noon on `day` (the wall clock's sweep)."""
    return step(state, None, day * MS_PER_DAY + MS_PER_DAY // 2, CUST, cfg)


def _forgotten(decisions):
    return [d for d in decisions if isinstance(d, Forgotten)]


def test_an_idle_customer_is_forgotten_on_day_n_not_n_minus_1(kept, stepper, purchase):
    state, _ = stepper([purchase(T0, 80)], kept, customer=CUST)
    assert state.last_seen_day == T0 and state.review_day is not None and state.review_day <= T0 + N
    before = _review(state, T0 + N - 1, kept)
    assert before.state is not None and not _forgotten(before.decisions)
    result = _review(before.state, T0 + N, kept)
    assert (result.state, result.outcome, result.reason) == (None, "forgotten", "inactive")
    (gone,) = _forgotten(result.decisions)
    expected = ("inactive", T0, before.state.tier, review_cause(T0 + N))
    assert (gone.reason, gone.last_seen_day, gone.tier, gone.cause) == expected
    assert gone.at_ms == (T0 + N) * MS_PER_DAY and gone.cause_text == f"no activity for {N} days"


def test_the_forget_day_is_a_review_day(kept, stepper, purchase):
    """The deadline index finds the customer on the forget day: due_reviews (the event clock's sweep) forgets it."""
    state, _ = stepper([purchase(T0, 80)], kept, customer=CUST)
    results = due_reviews(state, T0 + N, CUST, kept)
    assert results[-1].state is None and _forgotten(results[-1].decisions)
    assert all(r.state is not None for r in results[:-1])
    assert due_reviews(state, T0 + N - 1, CUST, kept)[-1].state is not None


def test_any_event_resets_the_idle_days(kept, stepper, purchase, enquiry):
    state, _ = stepper([purchase(T0, 80), enquiry(T0 + N - 1)], kept, customer=CUST)
    assert state.last_seen_day == T0 + N - 1
    assert _review(state, T0 + N, kept).state is not None
    assert _review(state, T0 + 2 * N - 2, kept).state is not None  # N - 1 idle days after the enquiry
    assert _review(state, T0 + 2 * N - 1, kept).state is None


def test_without_retention_nobody_is_forgotten(cfg, stepper, purchase):
    state, _ = stepper([purchase(T0, 80)], cfg, customer=CUST)
    result = _review(state, T0 + 5000, cfg)
    assert result.state is not None and not _forgotten(result.decisions)


def test_an_event_after_the_forget_day_starts_a_new_customer(kept, stepper, purchase):
    state, _ = stepper([purchase(T0, 80, id="old")], kept, customer=CUST)
    event = purchase(T0 + N + 5, 10, id="new")
    result = step(state, event, event.at_ms, CUST, kept)
    assert result.outcome == "applied" and result.state is not None
    (gone,) = _forgotten(result.decisions)
    assert gone.cause == review_cause(T0 + N)
    changes = [d for d in result.decisions if isinstance(d, TierChange)]
    assert result.decisions.index(gone) < result.decisions.index(changes[-1])  # the old one goes first
    assert (changes[-1].cause, changes[-1].from_tier, changes[-1].direction) == ("new", None, "new")  # a new customer
    fresh = result.state
    assert (fresh.first_seen_day, fresh.first_day, fresh.purchases, fresh.total_e4) == (T0 + N + 5,) * 2 + (1, 10_0000)
    # the old id is no longer remembered: its redelivery counts again, in the new customer
    again = purchase(T0, 80, id="old")
    assert step(fresh, again, event.at_ms, CUST, kept).outcome == "applied"
    # the new event's redelivery resends everything it caused, the forget included (same ids)
    resent = step(fresh, event, event.at_ms, CUST, kept)
    assert resent.resent and resent.decisions == result.decisions


def test_an_erasure_request_forgets_at_once_whatever_the_setting(cfg, stepper, purchase):
    state, _ = stepper([purchase(T0, 80)], cfg, customer=CUST)
    request = _erasure(T0 + 1)
    result = step(state, request, request.at_ms, CUST, cfg)
    assert (result.state, result.outcome, result.reason) == (None, "forgotten", "erasure")
    (gone,) = result.decisions
    assert isinstance(gone, Forgotten)
    assert (gone.reason, gone.cause, gone.at_ms, gone.tier, gone.last_seen_day) == (
        "erasure", "erase-1", request.at_ms, state.tier, T0)
    assert gone.id == step(state, request, request.at_ms, CUST, cfg).decisions[0].id  # deterministic


def test_an_erasure_request_with_nothing_to_erase_sends_nothing(cfg, stepper, purchase):
    """Never seen, or the request redelivered after its forget was written: like any redelivered input."""
    request = _erasure(T0)
    assert step(NEW_STATE, request, request.at_ms, CUST, cfg) == step(NEW_STATE, request, request.at_ms, CUST, cfg)
    result = step(NEW_STATE, request, request.at_ms, CUST, cfg)
    assert (result.state, result.outcome, result.decisions) == (NEW_STATE, "duplicate", ())


def test_an_erasure_request_read_again_after_the_customer_came_back_sends_nothing(cfg, stepper, purchase):
    """A worker killed after forgetting a customer, before committing the request: its successor reads the request
    again after the customer's later events started a new state. The request predates that state: nothing to erase
    (replay, in time order, forgot only the old one)."""
    state, _ = stepper([purchase(T0, 80, id="old")], cfg, customer=CUST)
    request = _erasure(T0 + 1)
    erased = step(state, request, request.at_ms, CUST, cfg)
    assert erased.state is None and _forgotten(erased.decisions)
    back, _ = stepper([purchase(T0 + 5, 40, id="back")], cfg, customer=CUST)
    again = step(back, request, request.at_ms, CUST, cfg)
    assert (again.state, again.outcome, again.decisions) == (back, "duplicate", ())
    # a request dated on or after the new state's first day still erases it
    later = _erasure(T0 + 5, id="erase-2")
    assert step(back, later, later.at_ms, CUST, cfg).state is None


def test_a_remnant_knows_the_forgotten_states_inputs_and_nothing_else(cfg, stepper, purchase):
    """What a worker keeps of a forgotten customer until the inputs are committed: the id memory only."""
    old = [purchase(T0, 80, id="old-1"), purchase(T0 + 2, 30, id="old-2")]
    state, _ = stepper(old, cfg, customer=CUST)
    left = remnant(state)
    assert left == NEW_STATE._replace(seen=state.seen, filters=state.filters)
    assert all(is_reread(left, e) for e in old)
    assert not is_reread(left, purchase(T0 + 5, 40, id="back"))  # a new input: the customer came back
    assert not is_reread(left, purchase(T0, 81, id="old-1"))  # the id with other content is no re-read
    assert not is_reread(left, _erasure(T0 + 3))  # a request decides by the state it finds (scoring.step)
    assert not is_reread(remnant(NEW_STATE), old[0])
    assert decode_state(encode_state(left)) == left


def test_a_remnant_knows_inputs_its_state_keeps_in_a_filter(config_with, stepper, purchase):
    """Ids beyond the exact ones live in a Bloom filter: a remnant still knows them."""
    few = config_with(dedupe_exact_ids=2)
    events = [purchase(T0 + i, 10, id=f"e-{i}") for i in range(6)]
    state, _ = stepper(events, few, customer=CUST)
    assert state.filters
    left = remnant(state)
    assert all(is_reread(left, e) for e in events)
    assert not is_reread(left, purchase(T0 + 7, 10, id="new"))


def test_an_erasure_request_after_the_forget_day_sends_only_the_forget(kept, stepper, purchase):
    state, _ = stepper([purchase(T0, 80)], kept, customer=CUST)
    request = _erasure(T0 + N + 3)
    result = step(state, request, request.at_ms, CUST, kept)
    assert result.state is None and [d.reason for d in _forgotten(result.decisions)] == ["inactive"]


def test_an_erasure_request_from_the_future_is_refused(cfg, stepper, purchase):
    state, _ = stepper([purchase(T0, 80)], cfg, customer=CUST)
    request = _erasure(T0 + 10)
    result = step(state, request, T0 * MS_PER_DAY, CUST, cfg)
    assert (result.outcome, result.state) == ("rejected", state) and "after now" in result.reason


def test_the_fold_never_takes_an_erasure_request(cfg):
    from scoring import fold

    _, applied, refused = fold(NEW_STATE, [_erasure(T0)], (T0 + 1) * MS_PER_DAY, cfg)
    assert applied == 0 and "erasure" in refused[0][1]


@pytest.mark.parametrize("days", [1, 20, 19])
def test_retention_must_be_after_the_lapse(config_with, days):
    with pytest.raises(ConfigError, match=r"retention\.forget_after_days"):
        config_with(lapsed_days=20, recency_days=(5, 10, 15, 20), retention={"forget_after_days": days})


def test_retention_is_off_by_default(cfg):
    assert cfg.retention.forget_after_days is None


def test_the_codec_keeps_the_last_seen_day(kept, stepper, purchase, enquiry):
    state, _ = stepper([purchase(T0, 80), enquiry(T0 + 3)], kept, customer=CUST)
    assert decode_state(encode_state(state)).last_seen_day == T0 + 3


def test_version_3_bytes_read_the_last_seen_day_from_what_they_hold(kept, stepper, purchase, enquiry):
    # a purchase of 0: no amount, whose bytes (cents before version 6) the slicing below would misplace
    state, _ = stepper([purchase(T0, 0), enquiry(T0 + 3)], kept, customer=CUST)
    v6 = encode_state(state)
    assert peek_last_seen_day(v6) == T0 + 3
    # version 3: no last seen day, no categories (the last byte: their count, 0)
    v3 = b"\x03" + v6[1 : codec._HEADER_V3.size] + v6[codec._HEADER.size : -1]
    assert decode_state(v3).last_seen_day == peek_last_seen_day(v3) == T0 + 3
    assert decode_state(v3)._replace(last_seen_day=None) == state._replace(last_seen_day=None)


_days = st.lists(st.integers(min_value=0, max_value=200), min_size=1, max_size=12)


@settings(max_examples=60, deadline=None)
@given(days=_days, erase_at=st.one_of(st.none(), st.integers(min_value=0, max_value=200)))
def test_stepping_keeps_what_surviving_says(days, erase_at, config_with):
    """Stepping every event in time order, then the reviews to the end, leaves the customer the batch replay's
    `surviving` events fold to (none: forgotten)."""
    cfg = config_with(lapsed_days=20, recency_days=(5, 10, 15, 20), retention={"forget_after_days": N})
    events = [CoreEvent(Kind.PURCHASE, f"p{i}", (T0 + d) * MS_PER_DAY + 1000 * i, 1000) for i, d in enumerate(days)]
    if erase_at is not None:
        events.append(CoreEvent(Kind.ERASURE, "erase", (T0 + erase_at) * MS_PER_DAY + 500))
    events.sort(key=lambda e: (e.at_ms, e.event_id))
    end = T0 + 250
    state = NEW_STATE
    alive, forgets = False, 0
    for event in events:
        result = step(state, event, event.at_ms, CUST, cfg)
        forgets += len(_forgotten(result.decisions))
        state, alive = (NEW_STATE, False) if result.state is None else (result.state, True)
    if alive:
        reviews = due_reviews(state, end, CUST, cfg)
        forgets += sum(len(_forgotten(r.decisions)) for r in reviews)
        alive = not reviews or reviews[-1].state is not None
        if alive and reviews:
            state = reviews[-1].state
    kept_events, survival_forgets = surviving(events, end, cfg)
    assert alive == bool(kept_events) and forgets == survival_forgets
    if alive:
        assert state.purchases == len(kept_events)
        assert state.first_seen_day == min(e.at_ms // MS_PER_DAY for e in kept_events)


def test_a_state_cached_before_retention_is_due_on_its_forget_day(kept, cfg, stepper, purchase):
    """Retention set on a running system: a state whose cached review day knew nothing of it is still forgotten
    on its forget day by the event clock's sweep (`due_reviews`)."""
    state, _ = stepper([purchase(T0, 80)], cfg, customer=CUST)  # cached without retention
    state = state._replace(review_day=None)  # nothing else would ever review it
    (result,) = due_reviews(state, T0 + N, CUST, kept)
    assert result.state is None and _forgotten(result.decisions)[0].cause == review_cause(T0 + N)
