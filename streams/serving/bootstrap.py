"""Write built customer states where the workers start from: the table's changelog, the scores topic, Redis.

`streams.offline.bootstrap` builds the states; this writes them as the workers' flush does
(`streams.worker.app.Tierstream.flush`): each state to the customers table's changelog topic
(`{app_id}-customers-changelog`, the key the customer id's UTF-8 bytes, the value the state's bytes,
both raw, on the customer's canonical partition; a forgotten customer's tombstone), each customer's
last score snapshot to the scores topic, then the Redis view (the per-tier revenue counted again,
as `redis-resync` does) and, with `scoring.frequency_caps`, each customer's cap keys (`cap:{id}:{type}`) as
the worker's cap checks would have left them (`streams.caps`): its other cap keys deleted, each set written
whole and given the expiry the cap script gives it at a send (from now: as if the last send were now).
Writing the same states twice leaves the same latest value per key, so a second
run changes nothing a worker reads (the topics hold a second copy of each record until compacted; the
test broker, Tansu, never compacts).

Nothing is written while a worker of the app consumes: `active_members` is asked first.
"""

from __future__ import annotations

import time
from collections.abc import Iterable
from dataclasses import dataclass

from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, TopicPartition
from aiokafka.admin import AIOKafkaAdminClient
from redis.asyncio import Redis
from redis.exceptions import ConnectionError as RedisConnectionError

from streams.caps import cap_ttl_seconds
from streams.kafka import client_options, table_changelog
from streams.offline.bootstrap import Built
from streams.serving.redis_view import RedisView
from streams.settings import Settings

SEND_BATCH = 10_000  # records sent before waiting for their acks


@dataclass
class WriteReport:
    states: int = 0
    tombstones: int = 0
    snapshots: int = 0
    profiles: int = 0
    cap_keys: int = 0  # frequency-cap keys written (each holding at least one send)
    changelog_before: int = 0  # records the changelog held before (a second run, or a table in use)
    seconds: float = 0.0


async def active_members(settings: Settings) -> list[str]:
    """The members of the workers' consumer group (the app id): a non-empty list means workers consume."""
    admin = AIOKafkaAdminClient(**client_options(settings))
    await admin.start()
    try:
        responses = await admin.describe_consumer_groups([settings.app_id])
    finally:
        await admin.close()
    members: list[str] = []
    for response in responses:
        for group in response.to_object()["groups"]:
            if group["state"] not in ("Empty", "Dead", ""):
                members += [m["client_host"] or m["member_id"] for m in group["members"]]
    return members


async def write(settings: Settings, built: list[Built], redis: Redis) -> WriteReport:
    """The states to the changelog, the snapshots to the scores topic, the profiles to Redis (see the module
    docstring). Raises a Kafka error, or RedisConnectionError when Redis fails."""
    started = time.perf_counter()
    report = WriteReport()
    producer = AIOKafkaProducer(**client_options(settings), acks="all", linger_ms=20,
                                max_batch_size=settings.producer_max_batch_size)
    await producer.start()
    try:
        report.changelog_before = await _record_count(settings, table_changelog(settings))
        await _changelog(producer, table_changelog(settings), built, report)
        await _send_all(producer, ((settings.topics.scores, b.customer, b.snapshot, b.partition) for b in built
                                   if b.snapshot is not None or b.state is None))
        report.snapshots = sum(b.snapshot is not None for b in built)
    finally:
        await producer.stop()
    await _redis(settings, built, redis, report)
    report.seconds = time.perf_counter() - started
    return report


async def _changelog(producer: AIOKafkaProducer, topic: str, built: list[Built], report: WriteReport) -> None:
    await _send_all(producer, ((topic, b.customer, b.state, b.partition) for b in built))
    last: dict[int, Built] = {}
    for b in built:
        last[b.partition] = b
        report.states += b.state is not None
        report.tombstones += b.state is None
    for partition, b in sorted(last.items()):
        # Each partition's last record again, alone in its batch, as the worker's flush does: a broker whose
        # ListOffsets answers the last batch's base offset + 1 (the test broker) still gives the true end.
        await producer.send_and_wait(topic, b.state, key=b.customer.encode(), partition=partition)


async def _send_all(producer: AIOKafkaProducer, records: Iterable[tuple[str, str, bytes | None, int]]) -> None:
    pending = []
    for topic, customer, value, partition in records:
        pending.append(await producer.send(topic, value, key=customer.encode(), partition=partition))
        if len(pending) >= SEND_BATCH:
            for future in pending:
                await future
            pending.clear()
    for future in pending:
        await future


async def _record_count(settings: Settings, topic: str) -> int:
    """Records in `topic` (the sum of its partitions' end offsets less their start offsets)."""
    consumer = AIOKafkaConsumer(**client_options(settings), group_id=None, enable_auto_commit=False)
    await consumer.start()
    try:
        tps = [TopicPartition(topic, p) for p in range(settings.partitions)]
        ends = await consumer.end_offsets(tps)
        starts = await consumer.beginning_offsets(tps)
        return sum(ends[tp] - starts[tp] for tp in tps)
    finally:
        await consumer.stop()


async def _redis(settings: Settings, built: list[Built], redis: Redis, report: WriteReport) -> None:
    view = RedisView(redis, settings.redis_prefix, settings.scoring.tier_names,
                     cap_types=tuple(settings.scoring.frequency_caps))
    await view.reset_tier_revenue()  # counted again from every profile written below
    for b in built:
        if b.profile is not None or b.state is None:
            view.put(b.customer, b.profile)
            report.profiles += b.profile is not None
        if view.stats.pending >= SEND_BATCH and not await view.flush():
            raise RedisConnectionError(f"write failed: {view.stats.last_error}")
    if not await view.flush():
        raise RedisConnectionError(f"write failed: {view.stats.last_error}")
    if settings.scoring.frequency_caps:
        await _caps(settings, built, view, report)


async def _caps(settings: Settings, built: list[Built], view: RedisView, report: WriteReport) -> None:
    """Each customer's cap keys: deleted, then its sets written whole (ZADD, EXPIRE), in pipelines of SEND_BATCH
    customers. A forgotten customer's went with its profile (`RedisView.put(customer, None)`)."""
    caps = settings.scoring.frequency_caps
    ttl = {kind: cap_ttl_seconds(cap) for kind, cap in caps.items()}
    pipe, queued = view.client.pipeline(transaction=False), 0
    for b in built:
        if b.state is None:
            continue
        pipe.delete(*(view.key("cap", b.customer, kind) for kind in caps))
        sets: dict[str, dict[str, float]] = {}
        for kind, action, at_s in b.caps:
            sets.setdefault(kind, {})[action] = at_s
        for kind, members in sets.items():
            key = view.key("cap", b.customer, kind)
            pipe.zadd(key, members)
            pipe.expire(key, ttl[kind])
            report.cap_keys += 1
        queued += 1
        if queued >= SEND_BATCH:
            await pipe.execute()
            pipe, queued = view.client.pipeline(transaction=False), 0
    await pipe.execute()
