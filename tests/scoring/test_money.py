"""Money in 1/10,000 of the currency unit (`scoring.money`): exact sums in the fold, the codec (version 6, and
the cents of older versions read exactly), the content hash that still knows events remembered in cents."""

from __future__ import annotations

from decimal import ROUND_HALF_EVEN, Decimal
from fractions import Fraction
from hashlib import blake2b

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from scoring import NEW_STATE, CoreEvent, Kind, fold, parse_config
from scoring.btyd import btyd_summary
from scoring.codec import VERSION, decode_state, encode_state, size_bound
from scoring.dedupe import content_hash
from scoring.events import MS_PER_DAY
from scoring.money import MoneyError, cents_of, from_e4, money_float, money_text, to_e4
from scoring.rfm import score
from scoring.state import P_E4, R_E4, CustomerState
from scoring.trial import Trial

T0 = 20_000
CONFIG = parse_config({"window_days": 365})


@pytest.mark.parametrize(("text", "units"), [
    ("12.50", 125_000), ("12.5", 125_000), ("0.0005", 5), ("1.235", 12_350), ("-3.2", -32_000),
    ("12.50000", 125_000), ("1000000000", 10_000_000_000_000), ("0", 0), ("0.10", 1_000),
])
def test_to_e4_is_exact(text: str, units: int) -> None:
    assert to_e4(Decimal(text)) == units
    assert from_e4(units) == Decimal(text)


@pytest.mark.parametrize(("text", "message"), [
    ("0.00001", "more than 4 decimals"), ("1.23456", "more than 4 decimals"), ("NaN", "not a finite number"),
    ("Infinity", "not a finite number"), ("1000000000.0001", "implausibly large"),
])
def test_to_e4_refuses_what_it_cannot_hold_exactly(text: str, message: str) -> None:
    with pytest.raises(MoneyError, match=message):
        to_e4(Decimal(text))


@pytest.mark.parametrize(("units", "text"), [
    (125_000, "12.50"), (12_350, "1.235"), (5, "0.0005"), (0, "0.00"), (10_000, "1.00"), (12_345, "1.2345"),
    (-32_000, "-3.20"), (-5, "-0.0005"), (1_001, "0.1001"), (100, "0.01"),
])
def test_money_text_keeps_two_decimals_for_cents_and_shows_the_rest(units: int, text: str) -> None:
    assert money_text(units) == text
    assert Decimal(text) == from_e4(units)


@given(st.integers(-10**12, 10**12))
def test_cents_of_is_half_to_even_and_the_float_is_the_nearest(units: int) -> None:
    exact = from_e4(units)
    assert cents_of(units) == int((exact * 100).to_integral_value(ROUND_HALF_EVEN))
    assert money_float(units) == float(exact)
    assert Decimal(money_text(units)) == exact


# --- the fold sums exactly -----------------------------------------------------------------------------

AMOUNT = st.decimals(min_value=0, max_value=100_000, places=4, allow_nan=False, allow_infinity=False)
EVENT = st.tuples(st.sampled_from((Kind.PURCHASE, Kind.RETURN)), st.integers(0, 40), AMOUNT)


@settings(max_examples=300, deadline=None)
@given(st.lists(EVENT, min_size=1, max_size=40))
def test_the_folds_totals_are_the_exact_decimal_sums(drawn: list[tuple[Kind, int, Decimal]]) -> None:
    events = [CoreEvent(kind, f"e{i}", (T0 + day) * MS_PER_DAY + i, to_e4(amount), "USD")
              for i, (kind, day, amount) in enumerate(drawn)]
    state, applied, refused = fold(NEW_STATE, events, (T0 + 41) * MS_PER_DAY, CONFIG)
    assert applied == len(events) and not refused
    buys = [(day, amount) for kind, day, amount in drawn if kind is Kind.PURCHASE]
    refunds = [amount for kind, _, amount in drawn if kind is Kind.RETURN]
    total = sum((a for _, a in buys), Decimal(0))
    assert from_e4(state.total_e4) == total
    assert from_e4(sum(b[P_E4] for b in state.buckets.values())) == total
    assert from_e4(sum(b[R_E4] for b in state.buckets.values())) == sum(refunds, Decimal(0))
    for day in {d for d, _ in buys}:
        assert from_e4(state.buckets[T0 + day][P_E4]) == sum((a for d, a in buys if d == day), Decimal(0))
    s = score(state, T0 + 41, CONFIG)
    assert s.monetary == float(total) and s.returns_amount == float(sum(refunds, Decimal(0)))
    summary = btyd_summary(state, T0 + 41)
    if buys:
        first = min(d for d, _ in buys)
        repeat = total - sum((a for d, a in buys if d == first), Decimal(0))
        x = len({d for d, _ in buys}) - 1
        assert summary is not None and summary.x == x
        assert summary.mean_repeat_value == (float(Fraction(repeat) / x) if x else 0.0)  # the nearest float
    assert decode_state(encode_state(state)) == state


# --- the codec ---------------------------------------------------------------------------------------

def test_a_sub_cent_state_round_trips_and_keeps_its_ten_thousandths() -> None:
    events = [CoreEvent(Kind.PURCHASE, "a", T0 * MS_PER_DAY, to_e4(Decimal("2.125")) * 3, "USD"),
              CoreEvent(Kind.PURCHASE, "b", (T0 + 1) * MS_PER_DAY, 5, "USD"),
              CoreEvent(Kind.RETURN, "c", (T0 + 1) * MS_PER_DAY + 1, 12_345, "USD")]
    state, _, _ = fold(NEW_STATE, events, (T0 + 2) * MS_PER_DAY, CONFIG)
    trial = Trial("x" * 32, "rule", "call", "phone", False, "A", T0 * MS_PER_DAY, 60, 15_001, 2, 63_755, 12_345)
    state = state._replace(trials=(trial,))
    data = encode_state(state)
    assert data[0] == VERSION == 6
    assert decode_state(data) == state and len(data) <= size_bound(state)
    assert decode_state(data).total_e4 == 63_755  # 6.375 + 0.0005, exactly


# A version 4 state (money in cents), encoded by the code before money went to 1/10,000: purchases of 12.50
# and 0.99 on day T0, 100.00 on T0 + 9, a return of 3.25 on T0 + 10, a complaint (severity 4) on T0 + 11, and
# an open outcome window (cost 15.00, 1 purchase of 100.00, returns 3.25).
V4_STATE = bytes.fromhex(
    "048000000000004e2000004e2900004e20800000008000000000000002000000030000000000002c55000000000000054500000192"
    "929fd000000000180600004e2b04a09c0103c50a020903904e01010cc50201013004010543f000a36f6d744eb48607a5ab9c014cc3"
    "c1272431dd44da35ab1ba09c0183dd8a0c5b69bd3098e3dc76aa9c018d0b97e150d582df4893dce1a99c01e81665c97894ce912a51"
    "d74ea09c0100000241076163746976650001216161616161616161616161616161616161616161616161616161616161616161086c"
    "617073696e670563616c6c0670686f6e6502410080f8b299a8323cdc0b01904ec502"
)


def _assert_the_cents_read_exactly(state: CustomerState) -> None:
    """The figures both old states hold (see V4_STATE), in 1/10,000."""
    assert state.buckets == {T0: (134_900, 2, 0, 0, 0, 0, 0), T0 + 9: (1_000_000, 1, 0, 0, 0, 0, 0),
                             T0 + 10: (0, 0, 32_500, 1, 0, 0, 0), T0 + 11: (0, 0, 0, 0, 4, 1, 0)}
    assert (state.total_e4, state.first_day_e4, state.purchases, state.purchase_days) == (1_134_900, 134_900, 3, 2)
    (trial,) = state.trials
    assert (trial.cost_e4, trial.revenue_e4, trial.return_e4, trial.purchases) == (150_000, 1_000_000, 32_500, 1)


def test_version_4_cents_are_read_as_exact_ten_thousandths() -> None:
    state = decode_state(V4_STATE)
    _assert_the_cents_read_exactly(state)
    assert (state.tier, state.segment, state.score_centi, state.last_seen_day) == ("A", "active", 6150, T0 + 11)
    again = encode_state(state)
    assert again[0] == VERSION and decode_state(again) == state
    # whole cents take the bytes they took as cents, but for the one bit that makes 100.00 (twice here: bucket
    # and window revenue) cross into a third varint byte (plain 1/10,000 varints would take 6 bytes more); and
    # one byte for the count of categories (none) that version 5 added
    assert len(again) == len(V4_STATE) + 2 + 1
    # the ids it remembered still recognise their events, amounts now in 1/10,000
    redelivered = CoreEvent(Kind.PURCHASE, "p2", T0 * MS_PER_DAY + 7_200_000, 9_900, "USD")
    assert fold(state, [redelivered], state.clock_ms, CONFIG)[1:] == (0, [])


# A version 5 state (money in cents, with categories), encoded by main's code before money went to 1/10,000:
# purchases of 12.50 (tea, cups) and 0.99 (tea) on day T0, 100.00 (biscuits) on T0 + 9, a return of 3.25 on
# T0 + 10, a complaint (severity 4) on T0 + 11, and an open outcome window (cost 15.00, 1 purchase of 100.00,
# returns 3.25).
V5_STATE = bytes.fromhex(
    "058000000000004e2000004e2900004e20800000008000000000000002000000030000000000002c550000000000000545000001928d"
    "7977e8008000000000004e2b04a09c0103c50a020903904e01010cc50201013004010543f000a36f6d744eb48607a5ab9c014cc3c127"
    "2431dd44da35ab1ba09c0183dd8a0c5b69bd3098e3dc76aa9c018d0b97e150d582df4893dce1a99c01e81665c97894ce912a51d74ea0"
    "9c01000000000001216161616161616161616161616161616161616161616161616161616161616161086c617073696e670563616c6c"
    "0670686f6e6502410080c099f0a7323cdc0b01904ec50203096269736375697473a99c010563757073a09c0104746561a09c01"
)


def test_version_5_cents_and_categories_are_read_as_exact_ten_thousandths() -> None:
    state = decode_state(V5_STATE)
    _assert_the_cents_read_exactly(state)
    assert state.categories == (("biscuits", T0 + 9), ("cups", T0), ("tea", T0))
    assert state.last_seen_day == T0 + 11
    again = encode_state(state)
    assert again[0] == VERSION == 6 and decode_state(again) == state
    assert len(again) == len(V5_STATE) + 2  # as for version 4: 100.00 (bucket and window) takes a third byte
    # the ids it remembered still recognise their events, amounts now in 1/10,000
    redelivered = CoreEvent(Kind.PURCHASE, "p2", T0 * MS_PER_DAY + 7_200_000, 9_900, "USD", 0, ("tea",))
    assert fold(state, [redelivered], state.clock_ms, CONFIG)[1:] == (0, [])
    # a purchase after the upgrade adds to the exact sums and to the categories
    later = CoreEvent(Kind.PURCHASE, "p4", (T0 + 12) * MS_PER_DAY, 12_345, "USD", 0, ("cups",))
    after, applied, _ = fold(state, [later], later.at_ms, CONFIG)
    assert applied == 1 and after.total_e4 == 1_147_245
    assert after.categories == (("biscuits", T0 + 9), ("cups", T0 + 12), ("tea", T0))
    assert decode_state(encode_state(after)) == after


def test_whole_cents_hash_as_they_did_in_cents_and_other_amounts_exactly() -> None:
    event = CoreEvent(Kind.PURCHASE, "p", 123_456, 125_000, "USD")
    before = blake2b(f"{Kind.PURCHASE}\x1f123456\x1f1250\x1fUSD\x1f0".encode(), digest_size=4).digest()
    assert content_hash(event) == int.from_bytes(before, "big")
    assert content_hash(event._replace(amount_e4=125_001)) != content_hash(event)
    assert content_hash(event._replace(amount_e4=124_999)) != content_hash(event._replace(amount_e4=125_001))
