"""Retention and erasure through a real worker: the CustomerForgotten output, a tombstone on the score topic,
no Redis profile, and a 404 from the query API.

The shared default worker forgets customers idle for `DEFAULT_FORGET_DAYS`; every other module sends recent
events only. An event older than that is scored (the customer exists for a moment) and forgotten by the
next sweep: the review day the step caches is already due.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
import redis.asyncio as aioredis
from aiokafka import AIOKafkaConsumer, TopicPartition

from streams.kafka import REMNANT_PREFIX, client_options, table_changelog
from tests.kits.stream import DEFAULT_FORGET_DAYS, Out, StreamGroup, Upstream, eventually, http_json, purchase, uid

pytestmark = pytest.mark.integration


@pytest.fixture(scope="module")
def stream(default_stream: StreamGroup) -> StreamGroup:
    return default_stream  # the shared worker (wall clock, default rules, a retention rule)


def tombstones(stream: StreamGroup, customer: str) -> list[Out]:
    """Null records keyed by `customer` on the score topic (a compacted topic then drops the customer)."""
    return [r for r in stream.outputs.records if r.topic == stream.topics.scores and r.key == customer and not r.raw]


async def gone_everywhere(stream: StreamGroup, redis: aioredis.Redis, customer: str) -> None:
    """No profile hash, no tier set membership, and the API answers 404."""
    key = f"{stream.prefix}customer:{customer}"

    async def no_profile() -> bool:
        return not await redis.exists(key)

    await eventually(no_profile, f"{key} deleted")
    for tier in ("AAA", "A", "B", "C"):
        assert await redis.zscore(f"{stream.prefix}tier:{tier}", customer) is None
    status, body = await http_json("GET", f"{stream.worker.web_url}/customers/{customer}")
    assert (status, body["error"]) == (404, "unknown customer")


async def changelog_records(stream: StreamGroup, key: str) -> list[bytes | None]:
    """Every changelog record of `key` (None: a tombstone), in order, read until 1 s brings nothing new."""
    consumer = AIOKafkaConsumer(enable_auto_commit=False, auto_offset_reset="earliest", group_id=None,
                                **client_options(stream.settings))
    await consumer.start()
    try:
        topic = table_changelog(stream.settings)
        consumer.assign([TopicPartition(topic, p) for p in sorted(consumer.partitions_for_topic(topic) or ())])
        values: list[bytes | None] = []
        while batch := await consumer.getmany(timeout_ms=1000):
            for records in batch.values():
                values += [r.value for r in records if r.key == key.encode()]
        return values
    finally:
        await consumer.stop()


async def test_a_customer_idle_past_the_retention_is_forgotten(stream: StreamGroup, upstream: Upstream,
                                                               redis: aioredis.Redis) -> None:
    out, customer = stream.outputs, uid("idle")
    at = datetime.now(UTC) - timedelta(days=DEFAULT_FORGET_DAYS + 20)
    event = purchase(customer, 1000, at)
    await upstream.send(stream.topics.purchases, event)

    (gone,) = await out.wait_for(lambda: out.forgotten(customer), "the CustomerForgotten")
    (first,) = out.tiers(customer)  # scored first (its own event), then forgotten at the review
    assert (gone["reason"], gone["last_activity_day"], gone["tier"]) == ("inactive", at.date().isoformat(),
                                                                        first["to_tier"])
    assert gone["cause"].startswith("review@") and gone["cause_text"] == f"no activity for {DEFAULT_FORGET_DAYS} days"
    await out.wait_for(lambda: tombstones(stream, customer), "the score topic's tombstone")
    await gone_everywhere(stream, redis, customer)


async def test_an_erasure_request_forgets_the_customer_at_once(stream: StreamGroup, upstream: Upstream,
                                                               redis: aioredis.Redis) -> None:
    out, customer = stream.outputs, uid("erase")
    event = purchase(customer, 1000, datetime.now(UTC) - timedelta(hours=2))
    await upstream.send(stream.topics.purchases, event)
    await out.wait_score(customer, str(event["event_id"]))
    key = f"{stream.prefix}customer:{customer}"
    await eventually(lambda: redis.exists(key), f"{key} written")
    status, _ = await http_json("GET", f"{stream.worker.web_url}/customers/{customer}")
    assert status == 200

    request = {"type": "erasure", "event_id": uid("er"), "customer_id": customer,
               "requested_at": datetime.now(UTC).isoformat()}
    await upstream.send(stream.topics.events, request)  # the mixed topic: erasure requests have no typed topic
    (gone,) = await out.wait_for(lambda: out.forgotten(customer), "the CustomerForgotten")
    assert (gone["reason"], gone["cause"], gone["tier"]) == ("erasure", request["event_id"], "A")
    assert gone["last_activity_day"] == datetime.fromisoformat(str(event["occurred_at"])).date().isoformat()
    await out.wait_for(lambda: tombstones(stream, customer), "the score topic's tombstone")
    await gone_everywhere(stream, redis, customer)

    # the forgotten state's id memory stays in the table until the worker has committed the inputs it covers
    # (a successor would read them again: streams.worker.remnants), then it is deleted too
    async def remnant_written_then_deleted() -> bool:
        values = await changelog_records(stream, REMNANT_PREFIX + customer)
        return bool(values) and values[0] is not None and values[0].startswith(b"R1") and values[-1] is None

    await eventually(remnant_written_then_deleted, "the remnant record written, then deleted", within=60)
    assert (await changelog_records(stream, customer))[-1] is None  # the state's tombstone

    again = purchase(customer, 50, datetime.now(UTC))  # a later event starts a new customer
    await upstream.send(stream.topics.purchases, again)
    snapshot = await out.wait_score(customer, str(again["event_id"]))
    assert (snapshot["frequency"], snapshot["monetary"], snapshot["tier"]) == (1, 50.0, "B")
    assert out.tiers(customer, cause=again["event_id"])[0]["direction"] == "new"
