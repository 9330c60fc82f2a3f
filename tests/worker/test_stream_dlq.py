"""Bad inputs go to the dead-letter topic with their original bytes; nothing else stops.

One batch of bad messages, interleaved with valid purchases of one customer, is sent
once for the module; each case then checks its own DeadLetter: the exact original
bytes (base64), key, source topic/partition/offset, a reason and an error type.
"""

from __future__ import annotations

import base64
import hashlib
import json
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from aiokafka.structs import RecordMetadata

from scoring.ids import output_id
from tests.kits.stream import Out, StreamGroup, Upstream, complaint, eventually, http_json, purchase, uid

pytestmark = pytest.mark.integration
BIG = 300 * 1024  # above the 256 KiB kept in a dead letter


@dataclass(frozen=True)
class Case:
    topic: str  # field name in TopicNames
    value: Callable[[str], bytes]  # customer id -> payload
    error_type: str
    reason: Callable[[str], bool]
    keyed: bool = True


def doc(event: dict[str, Any], **changes: Any) -> bytes:
    return json.dumps({**event, **changes}).encode()


def now(days: float = -1) -> datetime:
    return datetime.now(UTC) + timedelta(days=days)


CASES: dict[str, Case] = {
    "not_json": Case("purchases", lambda c: b'{"event_id": "x", oops', "decode",
                     lambda r: r.startswith("not valid JSON: ")),
    "empty_value": Case("purchases", lambda c: b"", "decode", lambda r: r.startswith("not valid JSON: ")),
    "invalid_utf8": Case("purchases", lambda c: b'{"type": "purchase", "customer_id": "\xff\xfe"}', "decode",
                         lambda r: r.startswith("not valid JSON: ") and "utf-8" in r),
    "wrong_types": Case("purchases", lambda c: doc(purchase(c, 1, now()), amount="lots"), "schema",
                        lambda r: r.startswith("amount: ")),
    "missing_fields": Case("purchases", lambda c: json.dumps({"customer_id": c, "amount": "10"}).encode(),
                           "schema", lambda r: r.startswith("event_id: Field required (+")),
    "unknown_field": Case("purchases", lambda c: doc(purchase(c, 1, now()), coupon="SPRING"), "schema",
                          lambda r: r == "coupon: Extra inputs are not permitted"),
    "not_an_object": Case("purchases", lambda c: b"[1, 2]", "schema", lambda r: "dictionary" in r),
    "wrong_type_tag": Case("purchases", lambda c: doc(complaint(c, 2, now())), "schema",
                           lambda r: "does not belong on topic" in r and not r.startswith("not valid JSON")),
    "far_future": Case("purchases", lambda c: doc(purchase(c, 1, now(days=30))), "rejected",
                       lambda r: r.startswith("occurred_at is more than")),
    "unknown_currency": Case("purchases", lambda c: doc(purchase(c, 1, now()), currency="EUR"), "rejected",
                             lambda r: "EUR" in r),
    "severity_out_of_range": Case("complaints", lambda c: doc(complaint(c, 2, now()), severity=9), "schema",
                                  lambda r: r.startswith("severity: ")),
    "mixed_topic_without_type": Case("events", lambda c: json.dumps(
        {k: v for k, v in purchase(c, 1, now()).items() if k != "type"}).encode(), "schema",
        lambda r: "type" in r),
    "no_key_not_json": Case("purchases", lambda c: b"\x00\x01garbage", "decode",
                            lambda r: r.startswith("not valid JSON: "), keyed=False),
    "oversized": Case("purchases", lambda c: b"x" * BIG, "decode", lambda r: r.startswith("not valid JSON: ")),
}


@dataclass
class Sent:
    customer: str
    valid: list[dict[str, Any]]
    bad: dict[str, tuple[bytes, RecordMetadata]]


@pytest.fixture(scope="module")
def stream(default_stream: StreamGroup) -> StreamGroup:
    return default_stream  # the shared worker with the default settings


@pytest.fixture(scope="module")
async def sent(stream: StreamGroup, upstream: Upstream) -> Sent:
    """Valid purchases of one customer with every bad case between them, on the customer's partition."""
    customer = uid("dlq")
    valid = [purchase(customer, amount, now(-1 + i / 100)) for i, amount in enumerate((100, 200, 1000))]
    bad: dict[str, tuple[bytes, RecordMetadata]] = {}
    await upstream.send(stream.topics.purchases, valid[0])
    for i, (name, case) in enumerate(CASES.items()):
        payload = case.value(customer)
        topic = getattr(stream.topics, case.topic)
        meta = await upstream.send(topic, payload, key=customer if case.keyed else None)
        bad[name] = (payload, meta)
        if i == len(CASES) // 2:
            await upstream.send(stream.topics.purchases, valid[1])
    await upstream.send(stream.topics.purchases, valid[2])
    return Sent(customer, valid, bad)


def letter_of(stream: StreamGroup, meta: RecordMetadata) -> list[Out]:
    return stream.outputs.dlq(source_topic=meta.topic, partition=meta.partition, offset=meta.offset)


@pytest.mark.parametrize("name", list(CASES))
async def test_bad_input_is_dead_lettered_with_its_original_bytes(stream: StreamGroup, sent: Sent,
                                                                  name: str) -> None:
    case = CASES[name]
    payload, meta = sent.bad[name]
    letters = await stream.outputs.wait_for(lambda: letter_of(stream, meta), f"the dead letter of {name}")
    assert len(letters) == 1
    letter = letters[0]
    assert letter["id"] == output_id(meta.topic, str(meta.partition), "dead_letter", meta.offset)
    kept = base64.b64decode(letter["payload_b64"])
    assert kept == payload[:256 * 1024]
    assert letter["truncated"] is (len(payload) > 256 * 1024)
    assert letter["payload_size"] == len(payload)
    assert letter["payload_sha256"] == hashlib.sha256(payload).hexdigest()
    expected_key = base64.b64encode(sent.customer.encode()).decode() if case.keyed else None
    assert letter["key_b64"] == expected_key
    assert letter["error_type"] == case.error_type, letter["reason"]
    assert case.reason(letter["reason"]), letter["reason"]
    assert "\n" not in letter["reason"]
    assert letter["config_version"] == "rules-1"


async def test_valid_events_around_bad_ones_are_scored(stream: StreamGroup, sent: Sent) -> None:
    async def all_scored() -> dict[str, object] | None:
        status, profile = await http_json("GET", f"{stream.worker.web_url}/customers/{sent.customer}")
        return profile if status == 200 and profile["frequency"] == 3 else None

    profile = await eventually(all_scored, "the three valid purchases scored")
    assert (profile["frequency"], profile["monetary"]) == (3, 1300.0)  # the bad purchases left no trace
    last = str(sent.valid[-1]["event_id"])
    await stream.outputs.wait_score(sent.customer, last)  # the latest snapshot, once the three are in
    assert stream.worker.alive()
    health = await stream.worker.health()
    assert health is not None
    assert health["dead_lettered"] >= len(CASES)
