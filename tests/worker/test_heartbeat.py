"""The monitoring topic: every worker sends a `WorkerHeartbeat` every few seconds.

Read back with a plain aiokafka consumer (no group, from the beginning), as a
monitoring system would, and validated with the schema.
"""

from __future__ import annotations

import contextlib
import time
from collections.abc import AsyncIterator, Callable
from datetime import UTC, datetime, timedelta

import pytest
from aiokafka import AIOKafkaConsumer, TopicPartition

from schemas.monitoring import WorkerHeartbeat
from tests.kits.stream import StartStream, StreamGroup, Upstream, purchase, uid

pytestmark = pytest.mark.integration
WAIT = 30.0


@pytest.fixture(scope="module")
async def stream(start_stream: StartStream) -> AsyncIterator[StreamGroup]:
    async with start_stream("heartbeat") as group:
        yield group


class Heartbeats:
    """Every record of the monitoring topic, read from the beginning without a consumer group."""

    def __init__(self, consumer: AIOKafkaConsumer) -> None:
        self.consumer = consumer
        self.read: list[tuple[bytes, WorkerHeartbeat]] = []

    async def wait(self, accept: Callable[[WorkerHeartbeat], object], what: str) -> tuple[bytes, WorkerHeartbeat]:
        """(key, heartbeat) of the first record that validates and satisfies `accept`; fails after WAIT s."""
        deadline = time.monotonic() + WAIT
        seen = 0
        while True:
            for key, beat in self.read[seen:]:
                if accept(beat):
                    return key, beat
            seen = len(self.read)
            if time.monotonic() > deadline:
                raise AssertionError(f"no heartbeat {what} within {WAIT:.0f}s; read {seen}")
            batch = await self.consumer.getmany(timeout_ms=500)
            for records in batch.values():
                self.read += [(r.key or b"", WorkerHeartbeat.model_validate_json(r.value or b"")) for r in records]


@contextlib.asynccontextmanager
async def heartbeats(bootstrap: str, group: StreamGroup) -> AsyncIterator[Heartbeats]:
    consumer = AIOKafkaConsumer(bootstrap_servers=bootstrap, group_id=None, enable_auto_commit=False)
    await consumer.start()
    try:
        tps = [TopicPartition(group.topics.metrics, p) for p in range(group.settings.partitions)]
        consumer.assign(tps)
        await consumer.seek_to_beginning(*tps)
        yield Heartbeats(consumer)
    finally:
        await consumer.stop()


async def test_heartbeat_reports_throughput_lag_tiers_and_errors(
        stream: StreamGroup, upstream: Upstream, kafka_bootstrap: str) -> None:
    t = stream.topics
    customer = uid("hb")
    for i in range(3):
        await upstream.send(t.purchases, purchase(customer, 1000, datetime.now(UTC) - timedelta(days=1, minutes=i)))
    await upstream.send(t.purchases, b"[1, 2", key=customer.encode())

    async with heartbeats(kafka_bootstrap, stream) as beats:
        key, beat = await beats.wait(
            lambda b: b.events_total >= 4 and b.dead_lettered >= 1 and b.tiers and sum(b.tiers.values()),
            "counting the four events, the dead letter and the customer's tier")

    assert key.decode() == beat.worker_id
    assert beat.worker_id.endswith(f":{stream.worker.web_port}")
    assert beat.app_id == stream.settings.app_id
    assert beat.partitions == list(range(stream.settings.partitions))
    assert set(beat.lag) <= set(beat.partitions)
    assert beat.lag_total == sum(beat.lag.values())
    assert beat.tiers is not None and set(beat.tiers) == set(stream.settings.scoring.tier_names)
    assert beat.scored >= 3
    assert (beat.redis_errors, beat.redis_retries) == (0, 0)
    assert beat.interval_seconds > 0
    assert beat.events_per_second >= 0
    assert beat.config_version == stream.settings.scoring.version
    assert abs(beat.emitted_at - datetime.now(UTC)) < timedelta(minutes=5)


async def test_consecutive_heartbeats_are_about_the_configured_interval_apart(
        stream: StreamGroup, kafka_bootstrap: str) -> None:
    async with heartbeats(kafka_bootstrap, stream) as beats:
        _, first = await beats.wait(lambda b: True, "at all")
        _, second = await beats.wait(lambda b: b.emitted_at > first.emitted_at, "after the first")

    assert second.worker_id == first.worker_id
    assert second.events_total >= first.events_total
    # The rate covers exactly the time since the previous heartbeat.
    assert second.interval_seconds == pytest.approx((second.emitted_at - first.emitted_at).total_seconds(), abs=0.5)
