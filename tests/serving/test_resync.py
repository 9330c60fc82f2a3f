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
from streams.serving.redis_view import RedisView
from streams.serving.resync import resync
from streams.settings import Settings
from tests.kits.services import delete_keys_with_prefix
from tests.serving.model_kit import cdnow_model, model_file, scored

pytestmark = pytest.mark.integration



async def test_resync_with_a_model_writes_the_workers_profiles(tmp_path: Path, kafka_bootstrap: str,
                                                               redis_url: str, key_prefix: str) -> None:
    model = cdnow_model(tmp_path)
    _, flush = scored(model)
    run = uuid.uuid4().hex[:8]
    settings = Settings(kafka_bootstrap=kafka_bootstrap, redis_url=redis_url, app_id=f"resync-{run}", partitions=1,
                        redis_prefix=f"{key_prefix}resync-{run}:", model_path=model_file(tmp_path))
    topic = table_changelog(settings)
    await create_topics(kafka_bootstrap, [topic], partitions=1)
    producer = AIOKafkaProducer(bootstrap_servers=kafka_bootstrap)
    await producer.start()
    try:
        for _, customer, value in flush.states:  # what the worker's flush writes to the table
            await producer.send_and_wait(topic, value, key=customer.encode(), partition=0)
    finally:
        await producer.stop()

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
