"""State codec: exact round trips, compactness, refusal of foreign bytes."""

from __future__ import annotations

import pytest

from scoring import NEW_STATE, StateDecodeError, decode_state, encode_state, step
from scoring.codec import VERSION, peek_clock_ms, peek_review_day
from scoring.dedupe import IdFilter, entry
from scoring.events import MS_PER_DAY
from scoring.state import evolve

T0 = 20_000


def _round_trip(state):
    data = encode_state(state)
    back = decode_state(data)
    assert back == state
    assert encode_state(back) == data
    return data


def test_new_state_round_trips():
    data = _round_trip(NEW_STATE)
    assert data[0] == VERSION
    assert len(data) < 76  # the fixed 65-byte header (one struct call, ~7% less CPU per event) and counts


def test_rich_state_with_outbox_round_trips(weekly, stepper, complaint, ret, enquiry, purchase, cfg):
    state, _ = stepper(weekly(T0, 20, 150.0), cfg)
    last = T0 + 7 * 19
    for event in [complaint(last, 5, id="c"), ret(last, 40.5, id="r"), enquiry(last, id="e"),
                  purchase(T0 - 500, 10, id="ancient"), purchase(last + 1, 1, id="tomorrow", hour=1)]:
        state = step(state, event, last * MS_PER_DAY + 23 * 3_600_000, "cust-é", cfg).state
    state = step(state, None, (last + 40) * MS_PER_DAY, "cust-é", cfg).state
    assert state.outbox, "expected outputs kept for resend"
    assert state.seen and state.buckets and state.tier and state.segment
    assert any(entry.decisions for entry in state.outbox)
    _round_trip(state)


@pytest.mark.parametrize("change", [
    {"tier": "ÄÄÄ-ünïcode"}, {"segment": ""}, {"tier": None, "segment": None, "tier_since": None},
    {"at_risk": True}, {"score_centi": 0}, {"score_centi": 10_000}, {"scored_day": 0}, {"first_seen_day": 0},
    {"clock_ms": 2**53}, {"total_e4": 10**15}, {"seen": (entry(0, 0, 0), entry(2**64 - 1, 2**32 - 1, 2**32 - 1))},
    {"filters": (IdFilter(0, 0, b""), IdFilter(97_000, 1707, bytes(range(256)) * 8))},
    {"buckets": {0: (0, 0, 0, 0, 0, 0, 0), 50_000: (1, 2, 3, 4, 5, 6, 7)}},
    {"old_days": (0, 1, 19_000, 19_999)}, {"review_day": 0}, {"review_day": 99_999}, {"review_day": None},
])
def test_edge_values_round_trip(change, purchase, fold_at):
    base = fold_at([purchase(T0, 10)], T0)
    _round_trip(evolve(base, **change))


def test_unusual_cause_text_in_outbox_round_trips(purchase, cfg):
    event = purchase(T0, 50, id='order\x1f"quoted" ünïcode ✓')
    state = step(NEW_STATE, event, event.at_ms, "cust", cfg).state
    assert [e.cause for e in state.outbox] == [event.event_id]
    back = decode_state(encode_state(state))
    assert back == state
    again = step(back, event, event.at_ms, "cust", cfg)
    assert again.resent and again.decisions == state.outbox[0].decisions


def test_peek_review_day_reads_the_cached_review_day(weekly, stepper, cfg):
    state, _ = stepper(weekly(T0, 6, 100.0), cfg)
    assert state.review_day is not None
    assert peek_review_day(encode_state(state)) == state.review_day
    assert peek_review_day(encode_state(NEW_STATE)) is None
    with pytest.raises(StateDecodeError):
        peek_review_day(b"\x09whatever")


def test_peek_clock_ms_reads_the_latest_applied_time(weekly, stepper, cfg):
    state, _ = stepper(weekly(T0, 6, 100.0), cfg)
    assert state.clock_ms > 0
    assert peek_clock_ms(encode_state(state)) == state.clock_ms
    with pytest.raises(StateDecodeError):
        peek_clock_ms(b"\x09whatever")


def test_year_of_weekly_purchases_is_compact(weekly, stepper, cfg):
    state, _ = stepper(weekly(T0, 52, 100.0), cfg)
    state = step(state, None, (T0 + 7 * 51 + 2) * MS_PER_DAY, "cust-1", cfg).state   # outbox expired
    assert state.outbox == () and len(state.buckets) == 52
    size = len(encode_state(state))
    print(f"\nserialised state, 52 weekly purchases: {size} bytes")
    assert size < 1200  # each event id is kept with its content hash and day (15 bytes; dedupe by id alone)


@pytest.mark.parametrize("garbage", [
    b"", b"\x00", b"\x02", b"\xff" * 40, b"{\"tier\": \"AAA\"}", b"\x01", b"\x01\x05", b"\x01\xff\xff\xff",
    b"\x01\x01\x00\x01\x02",
])
def test_garbage_is_refused(garbage):
    with pytest.raises(StateDecodeError):
        decode_state(garbage)


def test_every_truncation_is_refused(weekly, stepper, cfg):
    state, _ = stepper(weekly(T0, 5, 100.0), cfg)
    data = encode_state(state)
    for cut in range(len(data)):
        with pytest.raises(StateDecodeError):
            decode_state(data[:cut])


def test_damaged_outbox_is_reported_as_a_decode_error(purchase, cfg):
    """The outbox payload is decoded lazily, on a resend; damage there surfaces as a bare KeyError
    (or JSONDecodeError) from step() instead of StateDecodeError, at decode or at resend."""
    event = purchase(T0, 50, id="p")
    state = step(NEW_STATE, event, event.at_ms, "cust", cfg).state
    data = encode_state(state)
    i = data.index(b'"kind":"tier_change"')
    damaged = data[:i] + b'"kind":"nonsense!!!"' + data[i + len(b'"kind":"tier_change"'):]
    with pytest.raises(StateDecodeError):
        step(decode_state(damaged), event, event.at_ms, "cust", cfg)


def test_trailing_bytes_are_refused(purchase, fold_at):
    """`decode_state` promises StateDecodeError for damaged bytes; it detects truncation, but
    never checks that it consumed all the input, so a valid state followed by junk decodes."""
    data = encode_state(fold_at([purchase(T0, 10)], T0))
    with pytest.raises(StateDecodeError):
        decode_state(data + b"\x00junk")


@pytest.mark.parametrize("awkward", [1e-05, 2.5e-07, 1e16, float("inf"), -0.0, 123456789.125])
def test_outbox_decisions_come_back_equal(awkward):
    """The outbox keeps decisions as compact JSON: any float (tiny, huge, infinite) and any text (non-ASCII,
    control characters, quotes) in them reads back equal."""
    from scoring.decisions import ActionRequest, Alert, ScoreChanged, TierChange, decode_decisions, encode_decisions

    decisions = (
        TierChange("0" * 32, "évé\u2028nt\x01\"", 1, None, "AAA", "new", awkward, None, "e-mail ✉", 30, "crm"),
        ActionRequest("1" * 32, "c", 2, "r", "tier_changed", "t", "phone", "phone", "high", "am", 3, awkward,
                      awkward, "skipped", "raison: coût > budget", "A", value_basis="clv"),
        Alert("2" * 32, "c", 4, "at_risk", "A", 50.0, awkward, awkward, "why\n"),
        ScoreChanged("3" * 32, "c", 5),
    )
    assert decode_decisions(encode_decisions(decisions)) == decisions
