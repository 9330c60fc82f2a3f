"""One customer id sending 200,000 events (a shop that keys anonymous checkouts as "guest") once grew its
state past the producer's 1 MB record limit and crash-looped every worker (issue 12). Now its state is
bounded by construction: the worker keeps running, keeps scoring everyone else, and the events beyond what
the customer's id memory can hold become dead letters with the reason. The test sends 50,000: 13 times what
the id memory holds with the defaults (3,755 ids), and unbounded (15 bytes an id) about 750 KB, nearly three times
`max_state_bytes`.

The group's output reader leaves the dead-letter topic alone (about 46,000 records); the test reads it
once at the end.
"""

from __future__ import annotations

import json
import time
from collections import Counter
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, TopicPartition

from scoring.codec import decode_state
from scoring.dedupe import filter_capacity
from scoring.state import CustomerState
from streams.kafka import client_options, table_changelog
from tests.kits.stream import StartStream, StreamGroup, eventually, iso, purchase, uid

pytestmark = pytest.mark.integration

BUSY_EVENTS = 50_000
OTHERS = 20  # one purchase each, sent among the busy customer's events
EVERY = BUSY_EVENTS // OTHERS


@pytest.fixture(scope="module")
async def stream(start_stream: StartStream) -> AsyncIterator[StreamGroup]:
    async with start_stream("busy", unread=("dlq",)) as group:
        yield group


def busy_records(customer: str, at: datetime) -> list[bytes]:
    """The busy customer's purchases as JSON bytes (one template: producing is not what is measured)."""
    head = json.dumps({"type": "purchase", "customer_id": customer, "occurred_at": iso(at), "amount": "1.00",
                       "currency": "USD", "order_id": "guest-checkout"})[:-1]
    return [f'{head}, "event_id": "{customer}-{i}"}}'.encode() for i in range(BUSY_EVENTS)]


async def produce(stream: StreamGroup, busy: str, others: list[dict[str, Any]]) -> None:
    """Every busy record, with one of the others' purchases after each EVERY of them; large batches."""
    producer = AIOKafkaProducer(bootstrap_servers=stream.settings.kafka_bootstrap, linger_ms=50,
                                max_batch_size=512 * 1024, acks="all")
    await producer.start()
    try:
        key, topic = busy.encode(), stream.topics.purchases
        futures = []
        for i, value in enumerate(busy_records(busy, datetime.now(UTC) - timedelta(hours=1))):
            futures.append(await producer.send(topic, value, key=key))
            if i % EVERY == EVERY - 1:
                other = others[i // EVERY]
                futures.append(await producer.send(topic, json.dumps(other).encode(),
                                                   key=other["customer_id"].encode()))
        await producer.flush()
        for future in futures:
            await future
    finally:
        await producer.stop()


async def changelog_of(stream: StreamGroup, customer: str, idle: float = 2.0) -> list[bytes]:
    """Every state the worker wrote for `customer` to the table's changelog, in order (read until `idle` s
    bring nothing new: Tansu's end offsets can lag the records a fetch returns)."""
    topic = table_changelog(stream.settings)
    consumer = AIOKafkaConsumer(enable_auto_commit=False, auto_offset_reset="earliest", group_id=None,
                                max_partition_fetch_bytes=4 * 1024 * 1024, **client_options(stream.settings))
    await consumer.start()
    try:
        consumer.assign([TopicPartition(topic, p) for p in sorted(consumer.partitions_for_topic(topic) or ())])
        values: list[bytes] = []
        while batch := await consumer.getmany(timeout_ms=int(idle * 1000)):
            for records in batch.values():
                values += [r.value for r in records if r.key == customer.encode() and r.value is not None]
        return values
    finally:
        await consumer.stop()


async def dead_letters(stream: StreamGroup, expected: int, within: float = 90.0) -> Counter[tuple[str, str]]:
    """(error type, reason up to its colon) of every dead letter, read until `expected` are in (or `within` s).

    Read, not counted from end offsets: Tansu's end offset can lag the records a fetch returns."""
    consumer = AIOKafkaConsumer(enable_auto_commit=False, group_id=None, auto_offset_reset="earliest",
                                max_partition_fetch_bytes=4 * 1024 * 1024, **client_options(stream.settings))
    await consumer.start()
    try:
        consumer.assign([TopicPartition(stream.topics.dlq, p) for p in range(stream.settings.partitions)])
        kinds: Counter[tuple[str, str]] = Counter()
        sources: set[int] = set()
        deadline = time.monotonic() + within
        while len(sources) < expected and time.monotonic() < deadline:
            for records in (await consumer.getmany(timeout_ms=500)).values():
                for record in records:
                    letter = json.loads(record.value)
                    sources.add(letter["offset"])
                    kinds[letter["error_type"], letter["reason"].split(":")[0]] += 1
        assert len(sources) == kinds.total(), "a record was dead-lettered twice"
        return kinds
    finally:
        await consumer.stop()


async def test_one_customer_with_50000_events_does_not_stop_the_worker(stream: StreamGroup) -> None:
    worker, config = stream.worker, stream.settings.scoring
    pid = worker.pid
    busy = uid("guest")
    others = [purchase(uid("other"), 100 + i, datetime.now(UTC) - timedelta(hours=2)) for i in range(OTHERS)]
    await produce(stream, busy, others)

    for other in others:  # everyone else keeps being scored
        await stream.outputs.wait_score(other["customer_id"], other["event_id"], within=150)

    async def all_consumed() -> dict[str, Any] | None:
        health = await worker.health()
        done = health is not None and health["events_scored"] + health["dead_lettered"] + health["duplicates"]
        return health if done and done >= BUSY_EVENTS + OTHERS else None

    health = await eventually(all_consumed, "every record scored or dead-lettered", within=150, interval=1.0)
    assert worker.alive() and worker.pid == pid, worker.log_tail()
    assert health["status"] == "ok", health["reasons"]

    async def written() -> list[bytes] | None:  # until the state of the last step is in the changelog
        states = await changelog_of(stream, busy)
        return states if states and decode_state(states[-1]).purchases == health["events_scored"] - OTHERS else None

    states = await eventually(written, "the busy customer's latest state in the changelog", within=60)
    print(f"\n{len(states)} states written for the busy customer; largest {max(map(len, states))} bytes; "
          f"health: scored {health['events_scored']}, dead-lettered {health['dead_lettered']}, "
          f"duplicates {health['duplicates']}")
    assert max(map(len, states)) <= config.max_state_bytes
    final: CustomerState = decode_state(states[-1])
    room = config.dedupe_exact_ids + filter_capacity(config.dedupe_filter_bytes)
    assert room * 0.98 < final.purchases <= room  # a few were taken for duplicates by the filter (p <= 1%)
    assert len(final.seen) == config.dedupe_exact_ids

    assert health["dead_lettered"] == BUSY_EVENTS - final.purchases - health["duplicates"]

    letters = await dead_letters(stream, health["dead_lettered"])
    assert letters == {("rejected", "too many events to deduplicate"): health["dead_lettered"]}
