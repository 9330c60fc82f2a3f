"""Bad input interleaved with valid events: every bad one dead-lettered, every valid one scored, exactly.

Garbage comes from hypothesis (random bytes, JSON that is not an event, valid events with one thing
broken: a required field missing, a wrong type, a negative, NaN, infinite or huge amount, too many
decimals, a far-future time, an unknown or misplaced type tag, an unknown field, an unknown
currency) and by hand (empty, invalid UTF-8, a 1 MiB payload, nested JSON 100,000 deep, no key or
a wrong key). It is produced between valid events of 40 customers, to the typed topics and the
mixed `customer-events` topic (only JSON there: the tests' output reader parses that topic). Valid events with a
wrong key (another customer's id) or no key are
not bad input: they land on another partition, are forwarded to their own and scored.

Then, exactly:
- every bad record has one dead letter naming it (source topic, partition, offset), with a reason,
  an error type, its size, sha256 and first 256 KiB;
- no valid record is dead-lettered, and every valid event is in its customer's state once
  (the event ids recorded in the table's states are the valid events' ids);
- events produced = events scored + events dead-lettered.
`test_generated_garbage_is_bad_input` checks the strategies themselves, without a broker, against
the schema and the core's checks, so the stream test never counts a valid event as garbage.
"""

from __future__ import annotations

import base64
import hashlib
import json
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any

import pytest
from aiokafka import AIOKafkaProducer
from aiokafka.partitioner import murmur2
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from scoring.dedupe import entry_key
from scoring.events import to_ms
from scoring.fold import check_event
from scoring.ids import hash64
from streams.convert import to_core
from streams.settings import Settings, TopicNames
from streams.worker.handler import DLQ_PAYLOAD_LIMIT, Handler, Outgoing, Record
from streams.worker.states import StateCache
from streams.worker.store import DictStore
from tests.kits.faults import events_in, report, table_states
from tests.kits.stream import PARTITIONS, StartStream, StreamGroup, complaint, enquiry, eventually, purchase, refund

pytestmark = pytest.mark.integration

CUSTOMERS = 40
VALID_PER_CUSTOMER = 6
GENERATED = 160  # hypothesis examples sent through the stream
MIB = 1024 * 1024
NOW = datetime.now(UTC)
REQUIRED = {"purchase": ("event_id", "customer_id", "occurred_at", "amount", "currency", "order_id"),
            "return": ("event_id", "customer_id", "occurred_at", "amount", "order_id"),
            "complaint": ("event_id", "customer_id", "occurred_at", "severity", "category"),
            "enquiry": ("event_id", "customer_id", "occurred_at", "topic")}
TYPED = {"purchase": "purchases", "return": "returns", "complaint": "complaints", "enquiry": "enquiries"}


@dataclass(frozen=True)
class Bad:
    """A bad record: where it goes (TopicNames field), its key and bytes, and what is wrong."""

    topic: str
    key: bytes | None
    value: bytes
    what: str


# ----------------------------------------------------------------------------- strategies
def valid_event(kind: str, customer: str, serial: int) -> dict[str, Any]:
    at = NOW - timedelta(days=2, minutes=serial)
    event_id = f"bad-base-{serial}"
    if kind == "purchase":
        return purchase(customer, "12.34", at, event_id)
    if kind == "return":
        return refund(customer, "5.00", at, event_id)
    if kind == "complaint":
        return complaint(customer, 3, at, event_id)
    return enquiry(customer, at, event_id)


WRONG_TYPES = st.one_of(st.none(), st.booleans(), st.lists(st.integers(), max_size=3),
                        st.dictionaries(st.text(max_size=3), st.integers(), max_size=2))
NOT_A_DECIMAL = st.sampled_from(["lots", "", "1,50", "12.3.4", "0x10", "ten", "1e", "--1"])
BAD_AMOUNTS = st.one_of(
    st.decimals(max_value=Decimal("-0.01"), allow_nan=False, allow_infinity=False, places=2).map(str),  # negative
    st.sampled_from(["NaN", "nan", "Infinity", "-Infinity", "sNaN"]),  # not finite
    st.integers(min_value=10**9 + 1, max_value=10**30).map(str),  # huge
    st.sampled_from(["0.00001", "1.123456"]),  # more than 4 decimals
    NOT_A_DECIMAL, WRONG_TYPES)
BAD_TIMES = st.one_of(
    st.integers(min_value=2, max_value=3650).map(lambda d: (NOW + timedelta(days=d)).isoformat()),  # far future
    st.sampled_from(["yesterday", "2024-13-01T00:00:00Z", "2024-01-01T00:00:00", "", "1700000000"]),
    WRONG_TYPES)


@st.composite
def broken_events(draw: st.DrawFn) -> Bad:
    """A valid event with exactly one thing broken."""
    kind = draw(st.sampled_from(sorted(REQUIRED)))
    doc = valid_event(kind, "bad-c", draw(st.integers(0, 10_000)))
    how = draw(st.sampled_from(["missing", "amount", "time", "type", "extra", "severity", "id", "currency"]))
    if how == "missing":
        field = draw(st.sampled_from(REQUIRED[kind]))
        del doc[field]
        what = f"{kind} without {field}"
    elif how == "amount" and "amount" in doc:
        doc["amount"] = draw(BAD_AMOUNTS)
        what = f"{kind} amount {doc['amount']!r}"[:80]
    elif how == "time":
        doc["occurred_at"] = draw(BAD_TIMES)
        what = f"{kind} occurred_at {doc['occurred_at']!r}"[:80]
    elif how == "type":
        doc["type"] = draw(st.sampled_from(["refund", "PURCHASE", "order", "", "purchase ", 7, None]))
        what = f"type {doc['type']!r}"
    elif how == "severity" and kind == "complaint":
        doc["severity"] = draw(st.one_of(st.integers(max_value=0), st.integers(min_value=6), st.just(2.5),
                                         WRONG_TYPES))
        what = f"severity {doc['severity']!r}"[:80]
    elif how == "id":
        doc[draw(st.sampled_from(["event_id", "customer_id"]))] = draw(st.one_of(
            st.just(""), st.just("a" * 201), st.just("tab\there"), st.integers(), WRONG_TYPES))
        what = f"{kind} with a bad id"
    elif how == "currency" and kind == "purchase":
        doc["currency"] = draw(st.sampled_from(["EUR", "usd", "US", "DOLLARS", ""]))
        what = f"currency {doc['currency']!r}"
    else:
        doc[draw(st.sampled_from(["coupon", "Amount", "customerId"]))] = draw(st.integers())
        what = f"{kind} with an unknown field"
    topic = draw(st.sampled_from(["events", TYPED[kind]]))
    return Bad(topic, b"bad-c", json.dumps(doc).encode(), what)


def json_values() -> st.SearchStrategy[Any]:
    scalars = st.one_of(st.none(), st.booleans(), st.integers(), st.floats(allow_nan=False), st.text(max_size=20))
    return st.recursive(scalars, lambda inner: st.lists(inner, max_size=4) | st.dictionaries(
        st.text(max_size=8), inner, max_size=4), max_leaves=12)


GARBAGE = st.one_of(
    broken_events(),
    st.binary(max_size=300).map(lambda b: Bad("purchases", b"bad-c", b, "random bytes")),
    json_values().filter(lambda v: not isinstance(v, dict)).map(
        lambda v: Bad("events", b"bad-c", json.dumps(v).encode(), "JSON that is not an object")),
    st.dictionaries(st.text(max_size=10), json_values(), max_size=5).map(
        lambda d: Bad("events", None, json.dumps(d).encode(), "an object that is not an event")),
)


def generated(n: int) -> list[Bad]:
    """`n` garbage records from the strategies (derandomized: the same ones every run)."""
    found: list[Bad] = []

    @settings(max_examples=n, derandomize=True, database=None, suppress_health_check=list(HealthCheck))
    @given(GARBAGE)
    def collect(bad: Bad) -> None:
        found.append(bad)

    collect()
    return found


def hand_made(customer: str) -> list[Bad]:
    doc = valid_event("purchase", customer, 99_999)
    return [
        Bad("purchases", customer.encode(), b"", "empty"),
        Bad("purchases", customer.encode(), b'{"type": "purchase", "customer_id": "\xff\xfe"}', "invalid UTF-8"),
        Bad("purchases", b"\xff\xfe\xfd", b"\xc3\x28 not utf-8", "invalid UTF-8, invalid key"),
        Bad("purchases", customer.encode(), b"{" * MIB, "1 MiB of braces"),
        Bad("events", customer.encode(), json.dumps({**doc, "order_id": "x" * MIB}).encode(), "1 MiB event"),
        Bad("enquiries", customer.encode(), b"[" * 100_000 + b"]" * 100_000, "JSON nested 100,000 deep"),
        Bad("events", customer.encode(), json.dumps({**doc, "amount": 1e300}).encode(), "amount 1e300"),
        Bad("returns", customer.encode(), b'{"amount": NaN}', "bare NaN"),
        Bad("purchases", None, b"not json at all", "no key, not JSON"),
        Bad("complaints", b"someone-else", json.dumps(doc).encode(), "a purchase on the complaints topic"),
        Bad("events", customer.encode(), json.dumps(
            {**doc, "occurred_at": (NOW + timedelta(days=400)).isoformat()}).encode(), "far future"),
        Bad("events", b"", b'{"type": "enquiry"}', "empty key, missing fields"),
    ]


def partition_of(key: bytes | None) -> int:
    """The partition the producer's default partitioner picks for a key (None: any, say 0)."""
    return 0 if key is None else (murmur2(key) & 0x7FFFFFFF) % PARTITIONS


def test_generated_garbage_is_bad_input() -> None:
    """Every generated record is refused where it lands: by the schema, or by the core's checks
    on its own partition (never forwarded first, so its dead letter names the record sent)."""
    config = Settings().scoring
    handler = Handler(config, TopicNames(), PARTITIONS, StateCache(DictStore()))
    topics = TopicNames()
    for i, bad in enumerate([*generated(600), *hand_made("bad-c")]):
        decoded = handler.decode(Record(getattr(topics, bad.topic), partition_of(bad.key), i, bad.key, bad.value))
        if isinstance(decoded, Outgoing):
            assert decoded.topic == topics.dlq, (bad.what, "forwarded", bad.value[:200])
        else:  # valid for the schema: the shell's or the core's checks must refuse it
            event = to_core(decoded)
            refused = handler.refusal(event, to_ms(NOW)) or check_event(event, to_ms(NOW), config)
            assert refused, (bad.what, bad.value[:200])


# ----------------------------------------------------------------------------- the stream test
@dataclass
class Sent:
    valid: dict[tuple[str, int, int], dict[str, Any]]  # (topic, partition, offset) -> event
    bad: dict[tuple[str, int, int], Bad]


@pytest.fixture(scope="module")
async def stream(start_stream: StartStream) -> AsyncIterator[StreamGroup]:
    async with start_stream("badinput") as group:  # wall clock: far-future events are refused
        yield group


@pytest.fixture(scope="module")
async def big_producer(stream: StreamGroup) -> AsyncIterator[AIOKafkaProducer]:
    """A producer allowed to send the 1 MiB records (aiokafka's default limit is 1 MB)."""
    producer = AIOKafkaProducer(bootstrap_servers=stream.settings.kafka_bootstrap, max_request_size=4 * MIB,
                                linger_ms=2, acks="all")
    await producer.start()
    try:
        yield producer
    finally:
        await producer.stop()


def valid_events(customers: list[str]) -> Iterator[tuple[dict[str, Any], bytes | None, str]]:
    """(event, key, topic field): mostly keyed by the customer; some with another customer's key or none."""
    for n in range(VALID_PER_CUSTOMER):
        for i, customer in enumerate(customers):
            at = NOW - timedelta(days=30 - n, minutes=i)
            amount = f"{10 + i + n / 100:.2f}"
            event = [purchase, purchase, refund, complaint, enquiry, purchase][n]
            doc = (event(customer, amount, at, f"ok-{customer}-{n}") if event in (purchase, refund)
                   else event(customer, 2, at, f"ok-{customer}-{n}") if event is complaint
                   else event(customer, at, f"ok-{customer}-{n}"))
            key: bytes | None = customer.encode()
            if (i + n) % 9 == 4:
                key = customers[(i + 1) % len(customers)].encode()  # a wrong key: forwarded, then scored
            elif (i + n) % 9 == 7:
                key = None  # no key: any partition, forwarded if needed
            yield doc, key, "events" if n % 2 else TYPED[doc["type"]]


@pytest.fixture(scope="module")
async def sent(stream: StreamGroup, big_producer: AIOKafkaProducer) -> Sent:
    customers = [f"bad-{i:03d}-{stream.settings.app_id[-8:]}" for i in range(CUSTOMERS)]
    bads = [*generated(GENERATED), *hand_made(customers[0])]
    valid = list(valid_events(customers))
    result = Sent({}, {})
    futures = []
    for i in range(max(len(valid), len(bads))):  # interleaved: valid, bad, valid, bad, ...
        if i < len(valid):
            doc, key, field = valid[i]
            topic = getattr(stream.topics, field)
            futures.append(("valid", doc, await big_producer.send(topic, json.dumps(doc).encode(), key=key)))
        if i < len(bads):
            bad = bads[i]
            topic = getattr(stream.topics, bad.topic)
            futures.append(("bad", bad, await big_producer.send(topic, bad.value, key=bad.key)))
    for kind, item, future in futures:
        meta = await future
        where = (meta.topic, meta.partition, meta.offset)
        if kind == "valid":
            result.valid[where] = item
        else:
            result.bad[where] = item
    return result


async def test_produced_equals_scored_plus_dead_lettered(stream: StreamGroup, sent: Sent) -> None:
    out = stream.outputs
    by_source = lambda: {(r["source_topic"], r["partition"], r["offset"]): r for r in out.dlq()}
    await out.wait_for(lambda: set(sent.bad) <= set(by_source()), f"dead letters for {len(sent.bad)} records",
                       within=180)
    customers = {e["customer_id"] for e in sent.valid.values()}
    wanted = {c: {hash64(e["event_id"]) for e in sent.valid.values() if e["customer_id"] == c} for c in customers}

    async def all_scored() -> dict[str, Any]:
        states = await table_states(stream.settings, customers)
        applied = {c: {entry_key(e) for e in s.seen} for c, s in states.items()}  # few ids: all kept exactly
        return applied if applied == wanted else {}

    try:
        applied = await eventually(all_scored, "every valid event in its customer's state", within=120, interval=1.0)
    except AssertionError:
        states = await table_states(stream.settings, customers)
        short = {c: len(wanted[c]) - events_in(states[c]) if c in states else "missing" for c in wanted}
        raise AssertionError(f"valid events not (exactly) in the states: {short}") from None
    letters = by_source()
    dead = [letters[where] for where in sent.bad]
    scored = sum(len(v) for v in applied.values())
    wrongly = [letters[where] for where in sent.valid if where in letters]
    assert not wrongly, [(w["reason"], w["error_type"]) for w in wrongly[:5]]
    letter_ids = [r["id"] for r in out.dlq()]
    report("test_fault_bad_input", f"{len(sent.bad)} bad records among {len(sent.valid)} valid ones",
           faults_injected=len(sent.bad), events_produced=len(sent.valid) + len(sent.bad), scored=scored,
           dead_lettered=len(dead), outputs_expected=len(sent.bad), outputs_found=len(dead),
           duplicates=len(letter_ids) - len(set(letter_ids)), recovery_s=None)
    assert scored == len(sent.valid) and len(dead) == len(sent.bad)
    health = await stream.worker.health()  # the worker's own count of what it did with every record
    assert health is not None
    assert health["events_scored"] + health["duplicates"] == len(sent.valid), health
    assert health["dead_lettered"] == len(out.dlq()) == len(sent.bad), health
    for where, letter in zip(sent.bad, dead, strict=True):
        bad = sent.bad[where]
        assert letter["reason"] and letter["error_type"] in ("decode", "schema", "rejected"), (bad.what, letter)
        assert letter["payload_size"] == len(bad.value), bad.what
        assert letter["payload_sha256"] == hashlib.sha256(bad.value).hexdigest(), bad.what
        assert base64.b64decode(letter["payload_b64"]) == bad.value[:DLQ_PAYLOAD_LIMIT], bad.what
        assert letter["truncated"] is (len(bad.value) > DLQ_PAYLOAD_LIMIT), bad.what
    assert stream.worker.alive()
    health = await stream.worker.health()
    assert health is not None and health["status"] == "ok"

