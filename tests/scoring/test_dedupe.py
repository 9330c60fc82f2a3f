"""A customer's id memory is bounded by construction (issue 12): exact below the cap, Bloom filters beyond,
a hard size limit on the whole state, and the codec's round trip over every accepted time."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from scoring import NEW_STATE, CoreEvent, Kind, Outcome, apply, decode_state, encode_state, fold, parse_config, step
from scoring.codec import VERSION, size_bound
from scoring.dedupe import (
    FALSE_POSITIVE,
    FILTER_DAYS,
    IdFilter,
    entry,
    entry_key,
    false_positive_rate,
    filter_capacity,
    worst_case_bytes,
)
from scoring.errors import ConfigError
from scoring.events import MS_PER_DAY, to_ms
from scoring.ids import hash64
from scoring.state import CustomerState, OutboxEntry, evolve

T0 = 20_000
NOON = T0 * MS_PER_DAY + MS_PER_DAY // 2
# Small limits, so a few hundred events pass the cap and fill a filter.
SMALL = parse_config({"dedupe_exact_ids": 16, "dedupe_filter_bytes": 64, "max_state_bytes": 16 * 1024})
PROPS = settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
LAST_DAY = to_ms(datetime(9999, 12, 31, 23, 59, 59, 999000, tzinfo=UTC)) // MS_PER_DAY  # the schema's last day


def purchases(n: int, day: int = T0, prefix: str = "p") -> list[CoreEvent]:
    """`n` purchases with distinct ids on one day."""
    return [CoreEvent(Kind.PURCHASE, f"{prefix}{i}", day * MS_PER_DAY + i % MS_PER_DAY, 100 + i, "USD")
            for i in range(n)]


def stepped(events: list[CoreEvent], config=SMALL, state=NEW_STATE) -> tuple[CustomerState, list[str]]:
    """Step each event as the stream does; the final state and each step's outcome."""
    outcomes = []
    for event in events:
        result = step(state, event, event.at_ms, "busy", config)
        outcomes.append(result.outcome)
        state = result.state
    return state, outcomes


@PROPS
@given(st.integers(0, 700), st.integers(1, 40))
def test_state_size_is_bounded_for_any_number_of_events_on_one_day(n, resent):
    """However many events one day brings, the state stays under the memory's worst case and max_state_bytes;
    the events beyond what the memory can hold are refused with a reason, never counted blindly."""
    events = purchases(n)
    state, outcomes = stepped(events + events[:resent])
    size = len(encode_state(state))
    assert size <= size_bound(state) <= SMALL.max_state_bytes
    assert len(state.seen) <= SMALL.dedupe_exact_ids
    assert all(len(f.bits) == SMALL.dedupe_filter_bytes for f in state.filters) and len(state.filters) <= 1
    room = SMALL.dedupe_exact_ids + filter_capacity(SMALL.dedupe_filter_bytes)
    fresh = outcomes[:n]
    assert state.purchases == fresh.count("applied") <= min(n, room)
    assert fresh[:SMALL.dedupe_exact_ids] == ["applied"] * min(n, SMALL.dedupe_exact_ids)  # exact below the cap
    assert fresh.count("rejected") + fresh.count("duplicate") == n - state.purchases  # duplicate: a filter's p
    applied = {e.event_id for e, o in zip(events, outcomes, strict=False) if o == "applied"}
    assert all(o == "duplicate" for e, o in zip(events[:resent], outcomes[n:], strict=True) if e.event_id in applied)


def test_ten_thousand_events_on_one_day_with_the_defaults_stay_small():
    """The issue's case: 10,000 events of one customer on one day made an 81 KB state; the fold was quadratic."""
    config = parse_config({})
    state, applied, rejected = fold(NEW_STATE, purchases(10_000), NOON, config)
    assert applied == config.dedupe_exact_ids + filter_capacity(config.dedupe_filter_bytes)
    false_positives = 10_000 - applied - len(rejected)  # taken for duplicates by the full filter
    assert 0 <= false_positives <= 2 * FALSE_POSITIVE * 10_000
    assert all(reason.startswith("too many events to deduplicate") for _, reason in rejected)
    size = len(encode_state(state))
    worst = worst_case_bytes(config.dedupe_days, config.dedupe_exact_ids, config.dedupe_filter_bytes)
    print(f"\nstate after 10,000 events on one day: {size} bytes; memory worst case {worst}")
    assert size < worst < config.max_state_bytes // 2


@PROPS
@given(st.lists(st.tuples(st.integers(0, 400), st.integers(0, 120)), min_size=1, max_size=16),
       st.lists(st.integers(0, 15), max_size=10), st.randoms(use_true_random=False))
def test_dedupe_is_exact_below_the_cap(specs, resent, rng):
    """Below `dedupe_exact_ids` ids, every new id is applied (no false positive), every redelivery is a
    duplicate, in any order and on any day, and the same id with other content is refused."""
    events = [CoreEvent(Kind.PURCHASE, f"e{i}", (T0 - day) * MS_PER_DAY, cents, "USD")
              for i, (day, cents) in enumerate(specs)]
    again = [events[i] for i in resent if i < len(events)]
    changed = [e._replace(amount_e4=e.amount_e4 + 1) for e in again]
    batch = events + again + changed
    rng.shuffle(batch)
    state, applied, rejected = fold(NEW_STATE, batch, NOON, SMALL)
    firsts = {}
    for e in batch:
        firsts.setdefault(e.event_id, e)
    assert applied == len(firsts) == len(state.seen)
    assert state.filters == ()
    assert sorted(map(entry_key, state.seen)) == sorted(hash64(i) for i in firsts)
    assert {e for e, _ in rejected} == {e for e in batch if e != firsts[e.event_id]}
    assert all(r == "event_id reused with different content" for _, r in rejected)


def test_ids_beyond_the_cap_are_still_recognised_by_the_filter():
    """A Bloom filter has no false negatives: every applied event, redelivered, is a duplicate."""
    events = purchases(SMALL.dedupe_exact_ids + 30)
    state, _, _ = fold(NEW_STATE, events, NOON, SMALL)
    assert len(state.seen) == SMALL.dedupe_exact_ids and state.filters[0].events == 30
    assert all(apply(state, e, NOON, SMALL).outcome is Outcome.DUPLICATE for e in events)


def test_a_full_filters_false_positive_rate_is_what_the_docs_say():
    """Fill a default-size filter to capacity, then ask it about 20,000 ids it never saw."""
    config = parse_config({"dedupe_exact_ids": 0})
    capacity = filter_capacity(config.dedupe_filter_bytes)
    state, applied, _ = fold(NEW_STATE, purchases(capacity), NOON, config)
    assert state.filters[0].events == applied > 0.99 * capacity  # a few were taken for duplicates
    probes = purchases(20_000, prefix="never-seen-")
    taken = sum(apply(state, e, NOON, config).outcome is Outcome.DUPLICATE for e in probes)
    print(f"\nfalse positives of a full {config.dedupe_filter_bytes}-byte filter: {taken / len(probes):.4f}")
    assert 0.5 * FALSE_POSITIVE < taken / len(probes) < 1.5 * FALSE_POSITIVE


def test_a_full_filter_refuses_more_events_with_a_reason():
    capacity = filter_capacity(SMALL.dedupe_filter_bytes)
    assert false_positive_rate(capacity, SMALL.dedupe_filter_bytes) <= FALSE_POSITIVE
    assert false_positive_rate(capacity + 1, SMALL.dedupe_filter_bytes) > FALSE_POSITIVE
    state, _, _ = fold(NEW_STATE, purchases(SMALL.dedupe_exact_ids + capacity), NOON, SMALL)
    refused = apply(state, purchases(1, prefix="one-more")[0], NOON, SMALL)
    assert refused.outcome is Outcome.REJECTED and refused.state is state
    assert refused.reason.startswith("too many events to deduplicate: the customer has 16 event ids kept exactly")
    next_period = CoreEvent(Kind.PURCHASE, "later", (T0 + FILTER_DAYS) * MS_PER_DAY, 100, "USD")
    assert apply(state, next_period, next_period.at_ms, SMALL).outcome is Outcome.APPLIED


def test_filters_and_exact_ids_are_forgotten_past_the_horizon():
    state, _, _ = fold(NEW_STATE, purchases(SMALL.dedupe_exact_ids + 5), NOON, SMALL)
    assert state.seen and state.filters
    later = step(state, None, NOON + (SMALL.dedupe_days + FILTER_DAYS) * MS_PER_DAY, "busy", SMALL).state
    assert (later.seen, later.filters) == ((), ())


def test_an_event_that_would_pass_max_state_bytes_is_refused():
    """Whatever makes a state large (here: years of purchase days before the window), the step that would
    pass the limit is refused with the size, and the state is left as it was."""
    config = parse_config({"dedupe_exact_ids": 16, "dedupe_filter_bytes": 64, "max_state_bytes": 16 * 1024})
    state = step(NEW_STATE, purchases(1)[0], NOON, "big", config).state
    state = evolve(state, old_days=tuple(range(0, 3 * 17_000, 3)))  # 17,000 days: one byte each
    size = len(encode_state(state))
    assert size > config.max_state_bytes
    result = step(state, purchases(1, prefix="q")[0], NOON, "big", config)
    assert (result.outcome, result.state, result.decisions) == ("rejected", state, ())
    assert result.reason.startswith("the customer's state would take ")
    assert result.reason.endswith(f"bytes, over scoring.max_state_bytes ({config.max_state_bytes})")


def test_too_small_a_state_limit_for_the_id_memory_is_a_config_error():
    with pytest.raises(ConfigError, match=r"max_state_bytes: the id memory .* more than half of 20000"):
        parse_config({"max_state_bytes": 20_000})


@pytest.mark.parametrize(("at", "reason"), [
    (-1, "occurred_at is before 1970-01-01T00:00:00Z"),
    (-MS_PER_DAY * 365, "occurred_at is before 1970-01-01T00:00:00Z"),
    (NOON - SMALL.dedupe_days * MS_PER_DAY, "too old to deduplicate (scoring.dedupe_days)"),
])
def test_events_before_1970_or_the_horizon_are_refused(at, reason):
    result = step(NEW_STATE, CoreEvent(Kind.PURCHASE, "x", at, 100, "USD"), NOON, "c", SMALL)
    assert result.outcome == "rejected" and reason in result.reason


# --- codec -------------------------------------------------------------------------------------------------
DAYS = st.integers(0, LAST_DAY)
MS = st.integers(0, (LAST_DAY + 1) * MS_PER_DAY - 1)
OPTIONAL_DAY = st.none() | DAYS
COUNT = st.integers(0, 2**40)


@st.composite
def states(draw) -> CustomerState:
    """Any state a step could make from events of the accepted range (1970 to 9999, UTC)."""
    buckets = draw(st.dictionaries(DAYS, st.tuples(*[COUNT] * 7), max_size=6))
    seen = draw(st.lists(st.builds(entry, st.integers(0, 2**64 - 1), DAYS, st.integers(0, 2**32 - 1)),
                         max_size=6, unique_by=entry_key))
    filters = draw(st.lists(st.builds(IdFilter, st.integers(0, LAST_DAY // FILTER_DAYS), st.integers(0, 10**6),
                                      st.binary(max_size=100)), max_size=3, unique_by=lambda f: f.period))
    outbox = draw(st.lists(st.builds(OutboxEntry, st.text(max_size=20), MS, st.binary(max_size=50)), max_size=4))
    return CustomerState(
        buckets=buckets, seen=tuple(sorted(seen)), filters=tuple(sorted(filters)),
        old_days=tuple(sorted(draw(st.sets(DAYS, max_size=6)))),
        first_day=draw(OPTIONAL_DAY), last_day=draw(OPTIONAL_DAY), purchase_days=draw(st.integers(0, 2**31 - 1)),
        total_e4=draw(st.integers(0, 2**62)), first_day_e4=draw(st.integers(0, 2**62)),
        purchases=draw(st.integers(0, 2**31 - 1)), first_seen_day=draw(OPTIONAL_DAY), clock_ms=draw(MS),
        scored_day=draw(OPTIONAL_DAY), tier=draw(st.none() | st.text(max_size=8)), tier_since=draw(OPTIONAL_DAY),
        segment=draw(st.none() | st.text(max_size=8)), at_risk=draw(st.booleans()),
        score_centi=draw(st.none() | st.integers(0, 10_000)), outbox=tuple(outbox), review_day=draw(OPTIONAL_DAY),
    )


@PROPS
@given(states())
def test_every_state_of_the_accepted_range_round_trips(state):
    data = encode_state(state)
    assert data[0] == VERSION
    assert decode_state(data) == state
    assert len(data) <= size_bound(state)


# A version 1 state (event hashes in the day buckets and before the window), encoded by the code before
# issue 12: 12 purchases "v1-0".."v1-11", 50 days apart, folded as of T0.
V1_STATE = bytes.fromhex(
    "018000000000004bfa00004e2000004bfa80000000800000000000000c0000000c0000000000002f2200000000000003f30000019255"
    "415d00008000000008c2990103ef070101945d949c8448c3fe3203ee07010192e02e1e0c6b047e3203ed070101e3ca08a17230716c32"
    "03ec0701011650229151448dd13203eb070101cff9626d7fb08d8d3203ea070101117bd464f03c04043203e9070101461d5768a1ab6d"
    "7f3203e8070101c89b7df18d9079dc04fa9701fd61c853e96e1d7b32c95a43d94c19bec932a5cb31e9499f3df33291ca41354659bb88"
    "04fa9701323232000000"
)


def test_a_version_1_state_is_read_and_its_ids_still_deduplicate():
    state = decode_state(V1_STATE)
    assert (state.purchases, state.total_e4, len(state.buckets)) == (12, 1_206_600, 8)  # cents, read exactly
    assert sorted(map(entry_key, state.seen)) == sorted(hash64(f"v1-{i}") for i in range(12))
    redelivered = CoreEvent(Kind.PURCHASE, "v1-3", (T0 - 150) * MS_PER_DAY + 3_600_000, 1003, "USD")
    config = parse_config({"dedupe_exact_ids": 4, "dedupe_filter_bytes": 64, "max_state_bytes": 16 * 1024})
    assert apply(state, redelivered, NOON, config).outcome is Outcome.DUPLICATE  # content unknown: any
    moved = apply(state, purchases(1)[0], NOON, config).state  # the next step keeps 4 exact, spills the rest
    assert len(moved.seen) == 4 and sum(f.events for f in moved.filters) == 8 + 1  # and the new one
    assert all(apply(moved, e._replace(event_id=f"v1-{i}"), NOON, config).outcome is Outcome.DUPLICATE
               for i, e in enumerate(purchases(12)))
    assert decode_state(encode_state(moved)) == moved and encode_state(moved)[0] == VERSION


# --- a purchase's items are content -------------------------------------------------------------------------


def test_an_id_resent_with_the_same_amount_but_other_items_is_refused() -> None:
    """The content covers a purchase's item categories (a set): the same order with its items in another order
    is a redelivery; the same id and amount with other items, or without them, is an id reused with other content
    (a `rejected` dead letter in the stream; counted rejected by replay), never a silent duplicate."""
    config = parse_config({})
    first = CoreEvent(Kind.PURCHASE, "o-1", NOON, 1_200_000, "USD", 0, ("tea", "cups"))
    state = apply(NEW_STATE, first, NOON, config).state
    assert state.categories == (("cups", T0), ("tea", T0))
    again = apply(state, first._replace(categories=("cups", "tea")), NOON, config)
    assert again.outcome is Outcome.DUPLICATE
    for other in (("tea", "plates"), ("tea",), ()):
        refused = apply(state, first._replace(categories=other), NOON, config)
        assert (refused.outcome, refused.reason) == (Outcome.REJECTED, "event_id reused with different content")
        assert refused.state is state
    stepped_state, outcomes = stepped([first, first._replace(categories=("plates",))], config)
    assert outcomes == ["applied", "rejected"] and stepped_state.categories == state.categories


def test_categories_leave_the_hash_of_an_event_without_them_as_it_was() -> None:
    """Ids remembered before categories entered the hash hold `bare_hash` (the text of the other fields alone):
    an event without categories hashes just that, and an entry holding it still takes the redelivery of a
    purchase with items for what it is (as then, it cannot tell other items)."""
    from hashlib import blake2b

    from scoring.dedupe import DUPLICATE, Memory, bare_hash, content_hash

    event = CoreEvent(Kind.PURCHASE, "p", 123_456, 125_000, "USD")
    before = blake2b(f"{Kind.PURCHASE}\x1f123456\x1f1250\x1fUSD\x1f0".encode(), digest_size=4).digest()
    assert content_hash(event) == bare_hash(event) == int.from_bytes(before, "big")
    with_items = event._replace(categories=("tea", "cups"))
    assert bare_hash(with_items) == bare_hash(event) and content_hash(with_items) != content_hash(event)
    assert content_hash(with_items) == content_hash(event._replace(categories=("cups", "tea")))
    assert content_hash(with_items) != content_hash(event._replace(categories=("tea",)))
    assert content_hash(event._replace(categories=("a\x1f1:b",))) != content_hash(event._replace(categories=("a", "b")))
    key = hash64("p")
    old = Memory((entry(key, T0, bare_hash(event)),), (), T0, False, 16, 64)  # remembered before the upgrade
    assert old.admit(key, T0, content_hash(with_items), bare_hash(with_items)) == DUPLICATE
    new = Memory((entry(key, T0, content_hash(with_items)),), (), T0, False, 16, 64)  # remembered after it
    assert new.admit(key, T0, content_hash(with_items), bare_hash(with_items)) == DUPLICATE
    other = event._replace(categories=("plates",))
    assert new.admit(key, T0, content_hash(other), bare_hash(other)) == "event_id reused with different content"
    assert new.admit(key, T0, content_hash(event), content_hash(event)) == "event_id reused with different content"
