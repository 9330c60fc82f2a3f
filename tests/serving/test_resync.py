"""`redis-resync` writes exactly what the workers' profile path writes, value model included (it once
evaluated without the model: no CLV and another at-risk flag). Real broker and Redis."""

from __future__ import annotations

import uuid
from pathlib import Path

import pytest
from aiokafka import AIOKafkaProducer
from redis.asyncio import Redis

from streams.kafka import table_changelog
from streams.local.embedded import create_topics
from streams.serving.redis_view import RedisView, _flat
from streams.serving.resync import resync
from streams.settings import Settings
from streams.worker.handler import Flush
from tests.kits.services import delete_keys_with_prefix
from tests.serving.model_kit import cdnow_model, model_file, scored

pytestmark = pytest.mark.integration


async def publish_table(settings: Settings, flush: Flush) -> None:
    """What the worker's flush writes to the customers table (its changelog topic, one partition)."""
    topic = table_changelog(settings)
    await create_topics(settings.kafka_bootstrap, [topic], partitions=1)
    producer = AIOKafkaProducer(bootstrap_servers=settings.kafka_bootstrap)
    await producer.start()
    try:
        for _, customer, value in flush.states:
            await producer.send_and_wait(topic, value, key=customer.encode(), partition=0)
    finally:
        await producer.stop()

async def test_resync_with_a_model_writes_the_workers_profiles(tmp_path: Path, kafka_bootstrap: str,
                                                               redis_url: str, key_prefix: str) -> None:
    model = cdnow_model(tmp_path)
    _, flush = scored(model)
    run = uuid.uuid4().hex[:8]
    settings = Settings(kafka_bootstrap=kafka_bootstrap, redis_url=redis_url, app_id=f"resync-{run}", partitions=1,
                        redis_prefix=f"{key_prefix}resync-{run}:", model_path=model_file(tmp_path))
    await publish_table(settings, flush)

    client = Redis.from_url(redis_url)
    worker_view = RedisView(client, f"{key_prefix}worker-{run}:", settings.scoring.tier_names)
    try:
        for customer, fields in flush.profiles:  # what the worker's flush writes to Redis
            worker_view.put(customer, fields)
        assert await worker_view.flush()
        report = await resync(settings, client)
        resynced = RedisView(client, settings.redis_prefix, settings.scoring.tier_names)
        assert report.customers == report.written == len(flush.profiles) == 6
        for customer, _ in flush.profiles:
            written = await resynced.get(customer)
            assert written is not None and written["clv"] != "" and written["model_version"] == "cdnow-v2"
            assert written == await worker_view.get(customer), customer
        assert await resynced.tier_counts() == await worker_view.tier_counts()
    finally:
        await client.aclose()
        for prefix in (worker_view.prefix, settings.redis_prefix):
            delete_keys_with_prefix(redis_url, prefix)


async def test_resync_counts_the_tier_revenue_of_a_view_written_before_it_existed(
        kafka_bootstrap: str, redis_url: str, key_prefix: str) -> None:
    """An older tierstream's view: profiles and tier indexes, no revenue (and a drifted total). After
    `redis-resync` (no --clean) each tier's revenue is the sum of its customers' `monetary`, and a worker's
    next write moves a customer's spend as it should."""
    _, flush = scored(None, customers=9)
    run = uuid.uuid4().hex[:8]
    settings = Settings(kafka_bootstrap=kafka_bootstrap, redis_url=redis_url, app_id=f"resync-old-{run}",
                        partitions=1, redis_prefix=f"{key_prefix}resync-old-{run}:")
    await publish_table(settings, flush)
    client = Redis.from_url(redis_url)
    view = RedisView(client, settings.redis_prefix, settings.scoring.tier_names)
    try:
        for customer, fields in flush.profiles:  # as the older version wrote them: hash and index only
            await client.hset(view.key("customer", customer), mapping=_flat(fields))  # type: ignore[arg-type]
            await client.zadd(view.key("tier", str(fields["tier"])), {customer: float(fields["score"])})
        await client.hset(view.key("tier_revenue"), mapping={"A": -12_345, "C": 999})  # drifted
        await resync(settings, client)
        expected = dict.fromkeys(settings.scoring.tier_names, 0)
        for _, fields in flush.profiles:
            expected[str(fields["tier"])] += round(float(fields["monetary"]) * 100)
        assert await view.tier_revenue() == expected
        assert sum(1 for v in expected.values() if v) >= 2  # several tiers: the test can tell them apart
        customer, fields = flush.profiles[0]
        moved = next(t for t in settings.scoring.tier_names if t != fields["tier"])
        view.put(customer, {**fields, "tier": moved, "monetary": 1.0})
        assert await view.flush()
        expected[str(fields["tier"])] -= round(float(fields["monetary"]) * 100)
        expected[moved] += 100
        assert await view.tier_revenue() == expected
        assert await view.tier_counts() == await counted(view, flush)
    finally:
        await client.aclose()
        delete_keys_with_prefix(redis_url, settings.redis_prefix)


async def counted(view: RedisView, flush: Flush) -> dict[str, int]:
    """Customers per tier as their stored profiles say."""
    counts = dict.fromkeys(view.tiers, 0)
    for customer, _ in flush.profiles:
        stored = await view.get(customer)
        assert stored is not None
        counts[stored["tier"]] += 1
    return counts
