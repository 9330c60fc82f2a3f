"""Inputs a lenient reader would take and misread are refused (issue 12): odd amounts, a boolean severity,
duplicate JSON keys, ids with control characters or only spaces, and times the core cannot hold."""

from __future__ import annotations

import base64
import json
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

import pytest
from pydantic import ValidationError

from schemas.inputs import ComplaintFiled, DuplicateKeyError, load_json, parse_input
from scoring import NEW_STATE, decode_state, encode_state, step
from scoring.config import ScoringConfig
from scoring.events import to_ms
from streams.convert import to_core
from streams.settings import TopicNames
from streams.worker.handler import Handler, Outgoing, Record
from streams.worker.states import StateCache
from streams.worker.store import DictStore

PURCHASE = {"type": "purchase", "event_id": "p-1", "customer_id": "c-1", "occurred_at": "2025-03-01T10:00:00Z",
            "amount": "12.50", "currency": "USD", "order_id": "o-1"}
COMPLAINT = {"type": "complaint", "event_id": "c-1", "customer_id": "c-1", "occurred_at": "2025-03-01T10:00:00Z",
             "severity": 3, "category": "delivery"}


def refused(doc: dict[str, Any]) -> str:
    """The first validation error's location and message (fails when the document is accepted)."""
    with pytest.raises(ValidationError) as info:
        parse_input(json.dumps(doc))
    err = info.value.errors()[0]
    return f"{'.'.join(map(str, err['loc']))}: {err['msg']}"


@pytest.mark.parametrize("amount", [" 12 ", "12 ", "\u0661\u0662", "\uff11\uff12", "1E+8", "1e3", "+5", "0x10",
                                    "1_000", "12,50", True, False, "", "."])
def test_an_amount_that_could_be_misread_is_refused(amount):
    assert refused({**PURCHASE, "amount": amount}).startswith("purchase.amount: ")


@pytest.mark.parametrize(("amount", "value"), [("12", "12"), ("12.50", "12.50"), ("0", "0"), (12.5, "12.5"),
                                               (12, "12"), (1e8, "100000000")])
def test_plain_amounts_and_json_numbers_are_accepted(amount, value):
    assert parse_input(json.dumps({**PURCHASE, "amount": amount})).amount == Decimal(value)  # type: ignore[union-attr]


@pytest.mark.parametrize("severity", [True, False, "3", 3.0, "high"])
def test_severity_must_be_a_json_integer(severity):
    assert refused({**COMPLAINT, "severity": severity}).startswith("complaint.severity: ")


def test_line_quantities_must_be_json_integers():
    doc = {**PURCHASE, "items": [{"sku": "s", "quantity": True, "unit_price": "1"}]}
    assert refused(doc).startswith("purchase.items.0.quantity: ")


@pytest.mark.parametrize("text", [
    '{"amount": "1", "amount": "1000000000"}',
    '{"type": "purchase", "items": [{"sku": "a", "sku": "b"}]}',
    '[{"x": 1, "x": 1}]',
])
def test_a_json_object_with_a_key_twice_is_refused(text):
    with pytest.raises(DuplicateKeyError, match="the key appears more than once"):
        load_json(text)


@pytest.mark.parametrize("field", ["customer_id", "event_id"])
@pytest.mark.parametrize("value", [" ", "   ", " c", "c ", "c\x7f", "c\x85d", "c\u2028d", "c\u2029", "\tc", "c\x00",
                                   "c\u00a0", ""])
def test_ids_with_control_characters_or_outer_spaces_are_refused(field, value):
    assert refused({**PURCHASE, field: value}).startswith(f"purchase.{field}: ")


@pytest.mark.parametrize("value", ["guest", "John Smith", "Kunde-Ä", "客户-7", "a.b@c", "0"])
def test_ordinary_ids_are_accepted(value):
    assert parse_input(json.dumps({**PURCHASE, "customer_id": value, "event_id": value})).customer_id == value


@pytest.mark.parametrize("moment", ["1969-12-31T23:59:59.999Z", "0001-01-01T00:00:00+14:00",
                                    "1970-01-01T05:00:00+06:00", "9999-12-31T23:00:00-14:00"])
def test_times_the_core_cannot_hold_are_schema_errors(moment):
    assert refused({**PURCHASE, "occurred_at": moment}).startswith("purchase.occurred_at: ")


@pytest.mark.parametrize("moment", ["1970-01-01T00:00:00Z", "1970-01-01T06:00:00+06:00", "9999-12-31T23:59:59Z"])
def test_the_whole_accepted_range_converts_and_round_trips(moment):
    """The schema's first and last instants become core events whose states encode and decode exactly."""
    message = parse_input(json.dumps({**PURCHASE, "occurred_at": moment}))
    event = to_core(message)
    assert event.at_ms == to_ms(datetime.fromisoformat(moment))
    result = step(NEW_STATE, event, event.at_ms, "c-1", ScoringConfig())
    assert result.outcome == "applied", result.reason
    assert decode_state(encode_state(result.state)) == result.state


# --- what the worker does with them --------------------------------------------------------------------------
def dead_letter(value: bytes, topic: str = "purchases") -> dict[str, Any]:
    handler = Handler(ScoringConfig(), TopicNames(), 4, StateCache(DictStore()))
    outcome = handler.decode(Record(getattr(TopicNames(), topic), 0, 7, b"c-1", value))
    assert isinstance(outcome, Outgoing), "accepted"
    letter: dict[str, Any] = json.loads(outcome.value)
    assert base64.b64decode(letter["payload_b64"]) == value
    return letter


@pytest.mark.parametrize("topic", ["purchases", "events"])
def test_the_worker_dead_letters_a_duplicate_key_as_a_schema_error(topic):
    value = b'{"type": "purchase", "event_id": "p", "customer_id": "c-1", "occurred_at": "2025-03-01T10:00:00Z", ' \
            b'"amount": "1", "currency": "USD", "order_id": "o", "amount": "1000000000"}'
    letter = dead_letter(value, topic)
    assert (letter["error_type"], letter["reason"]) == ("schema", "amount: the key appears more than once")


@pytest.mark.parametrize(("changes", "field"), [
    ({"occurred_at": "1969-07-20T20:17:00Z"}, "occurred_at"), ({"occurred_at": "0001-01-01T00:00:00+14:00"},
                                                               "occurred_at"),
    ({"amount": " 12 "}, "amount"), ({"customer_id": "   "}, "customer_id"), ({"event_id": "e\u2028"}, "event_id"),
])
def test_the_worker_dead_letters_lenient_inputs_as_schema_errors(changes, field):
    letter = dead_letter(json.dumps({**PURCHASE, **changes}).encode())
    assert letter["error_type"] == "schema" and letter["reason"].startswith(f"{field}: "), letter["reason"]


def test_a_boolean_severity_is_a_schema_error_in_the_worker():
    letter = dead_letter(json.dumps({**COMPLAINT, "severity": True}).encode(), "complaints")
    assert letter["error_type"] == "schema" and letter["reason"].startswith("severity: ")


def test_a_non_json_payload_on_the_mixed_topic_is_a_decode_error():
    letter = dead_letter(b"not json", "events")
    assert letter["error_type"] == "decode" and letter["reason"].startswith("not valid JSON: ")


def test_models_built_in_python_keep_working():
    at = datetime(2025, 3, 1, tzinfo=UTC)
    assert ComplaintFiled(event_id="e", customer_id="c", occurred_at=at, severity=2, category="x").severity == 2


@pytest.mark.parametrize("when", [1700000000, 1700000000.5, "1700000000", " 1700000000000 ", "-5", 0, True])
def test_a_number_is_no_time(when: Any) -> None:
    # pydantic alone reads these as Unix seconds or milliseconds: a wrong field would become a plausible date
    # (a complaint on 2023-11-14, which no age check refuses). The contract says ISO 8601 text.
    for doc in (PURCHASE, COMPLAINT):
        assert refused({**doc, "occurred_at": when}).endswith("must be ISO 8601 text with a UTC offset, not a number")


def test_iso_times_still_pass() -> None:
    for when in ("2025-03-01T10:00:00Z", "2025-03-01T10:00:00+02:00", "2025-03-01T10:00:00.123456-05:30"):
        assert parse_input(json.dumps({**COMPLAINT, "occurred_at": when})).occurred_at.year == 2025


@pytest.mark.parametrize(("amount", "units"), [("12.50", 125_000), ("0.125", 1_250), (0.0005, 5), ("12.50000", 125_000),
                                               ("999999999.9999", 9_999_999_999_999)])
def test_up_to_4_decimals_reach_the_core_exactly(amount, units):
    assert to_core(parse_input(json.dumps({**PURCHASE, "amount": amount}))).amount_e4 == units


@pytest.mark.parametrize("amount", ["12.34567", 12.34567, "0.00001"])
def test_more_than_4_decimals_are_a_schema_dead_letter_not_rounded(amount):
    letter = dead_letter(json.dumps({**PURCHASE, "amount": amount}).encode())
    assert letter["error_type"] == "schema"
    assert letter["reason"] == "amount: Decimal input should have no more than 4 decimal places", letter["reason"]
