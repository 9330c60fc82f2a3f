"""Rebuild the Redis serving view from the customers table (its changelog topic).

Reads the changelog from the beginning (the latest value per customer wins)
up to each partition's high watermark as reported by fetches (some brokers
answer ListOffsets wrongly), and writes every customer's profile as of its
last evaluation, so the view equals what the workers last published. The
derived per-tier revenue (`tier_revenue`) is started over first and counted
again from every profile it writes, so a view written before it existed, or
whose count drifted, gets the right figures; the `tier:*` and `at_risk`
indexes follow each profile written.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import TYPE_CHECKING

from aiokafka import AIOKafkaConsumer, TopicPartition
from redis.asyncio import Redis
from redis.exceptions import ConnectionError as RedisConnectionError

from scoring.codec import decode_state
from scoring.config import ScoringConfig
from streams.calibrationfile import applied, load_calibration
from streams.kafka import client_options, is_remnant_key, table_changelog
from streams.modelfile import load_model
from streams.profile import stored_profile
from streams.serving.redis_view import RedisView
from streams.settings import Settings

if TYPE_CHECKING:
    from scoring.valuemodel.model import ValueModel


@dataclass
class ResyncReport:
    records: int
    customers: int
    written: int
    seconds: float


async def read_table(settings: Settings, idle_timeout: float = 3.0,
                     gapless: bool = False) -> tuple[dict[str, bytes], int]:
    """Latest changelog value per customer (tombstones remove; a forgotten customer's remnant record, see
    `streams.worker.remnants`, is no customer), and records read. `gapless`: the topic is never compacted, so
    a fetch that starts past the position asked for is a broker fault: read again."""
    topic = table_changelog(settings)
    consumer = AIOKafkaConsumer(enable_auto_commit=False, auto_offset_reset="earliest", group_id=None,
                                **client_options(settings))
    try:
        await consumer.start()
        parts = consumer.partitions_for_topic(topic) or set()
        tps = [TopicPartition(topic, p) for p in sorted(parts)]
        if not tps:
            return {}, 0
        consumer.assign(tps)
        await consumer.seek_to_beginning(*tps)
        latest, records = await _drain(consumer, tps, idle_timeout, gapless)
        return {c: v for c, v in latest.items() if not is_remnant_key(c)}, records
    finally:
        await consumer.stop()


def table_key(raw: bytes | None) -> str:
    """A customer id from a changelog key (the table writes keys raw: the id's UTF-8 bytes)."""
    return raw.decode("utf-8", "replace") if raw is not None else ""


async def _drain(consumer: AIOKafkaConsumer, tps: list[TopicPartition],
                 idle_timeout: float, gapless: bool = False) -> tuple[dict[str, bytes], int]:
    latest: dict[str, bytes] = {}
    expected: dict[TopicPartition, int] = {}
    records, idle_since = 0, time.monotonic()
    while time.monotonic() - idle_since < idle_timeout:
        batch = await consumer.getmany(timeout_ms=200, max_records=10_000)
        for tp, messages in batch.items():
            if gapless and messages and messages[0].offset > expected.get(tp, 0):
                consumer.seek(tp, expected.get(tp, 0))
                continue
            if messages:
                expected[tp] = messages[-1].offset + 1
            for m in messages:
                records += 1
                key = table_key(m.key)
                if m.value is None:
                    latest.pop(key, None)
                else:
                    latest[key] = m.value
        if batch:
            idle_since = time.monotonic()
        if await _caught_up(consumer, tps):
            break
    return latest, records


async def _caught_up(consumer: AIOKafkaConsumer, tps: list[TopicPartition]) -> bool:
    """Every partition's position has reached the high watermark its last fetch reported."""
    for tp in tps:
        highwater = consumer.highwater(tp)
        if highwater is None or await consumer.position(tp) < highwater:
            return False
    return True


async def resync(settings: Settings, redis: Redis, clean: bool = False) -> ResyncReport:
    started = time.perf_counter()
    table, records = await read_table(settings)
    view = RedisView(redis, settings.redis_prefix, settings.scoring.tier_names)
    config, model = scoring_of(settings)  # a bad calibration or model file stops it before Redis is touched
    if clean:
        await _delete_prefix(redis, settings.redis_prefix)
    await view.reset_tier_revenue()  # counted again from every profile written below (old ones never were)
    for customer, raw in table.items():
        profile = stored_profile(customer, decode_state(raw), config, model)
        if profile is not None:
            view.put(customer, profile.redis_fields())
    pending = view.stats.pending
    if not await view.flush():
        raise RedisConnectionError(f"write failed: {view.stats.last_error}")
    return ResyncReport(records, len(table), pending, time.perf_counter() - started)


def scoring_of(settings: Settings) -> tuple[ScoringConfig, ValueModel | None]:
    """The config and value model the workers score with: the calibration and model files applied."""
    config = settings.scoring
    if settings.calibration_path is not None:
        config = applied(config, load_calibration(settings.calibration_path), settings.calibration_path)
    return config, load_model(settings.model_path) if settings.model_path else None


async def _delete_prefix(redis: Redis, prefix: str) -> None:
    batch: list[bytes] = []
    async for key in redis.scan_iter(match=f"{prefix}*", count=1000):
        batch.append(key)
        if len(batch) >= 1000:
            await redis.delete(*batch)
            batch.clear()
    if batch:
        await redis.delete(*batch)
