"""Producing benchmark records: as fast as possible, or paced at an offered rate."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable, Sequence

from aiokafka import AIOKafkaProducer

from bench.data import Record

CHUNK = 5_000  # sends in flight before waiting for their acks


def by_type(topics: dict[str, str]) -> Callable[[Record], str]:
    """The input topic of a record's event type, in a worker's `topics`."""
    inputs = {"purchase": topics["purchases"], "return": topics["returns"], "complaint": topics["complaints"],
              "enquiry": topics["enquiries"]}
    return lambda record: inputs[record.type]


def producer(bootstrap: str, linger_ms: int = 5, max_batch: int = 262_144) -> AIOKafkaProducer:
    """Keyed sends use aiokafka's murmur2 partitioner: each customer's canonical partition."""
    return AIOKafkaProducer(bootstrap_servers=bootstrap, acks="all", linger_ms=linger_ms,
                            max_batch_size=max_batch, request_timeout_ms=30_000)


async def produce_all(bootstrap: str, records: Sequence[Record], topic_of: Callable[[Record], str]) -> float:
    """Send every record as fast as the broker acknowledges; seconds taken."""
    client = producer(bootstrap)
    await client.start()
    started = time.perf_counter()
    try:
        for start in range(0, len(records), CHUNK):
            futures = [await client.send(topic_of(r), r.value, key=r.key) for r in records[start:start + CHUNK]]
            await asyncio.gather(*futures)
    finally:
        await client.stop()
    return time.perf_counter() - started


def produce(bootstrap: str, records: Sequence[Record], topic_of: Callable[[Record], str]) -> float:
    return asyncio.run(produce_all(bootstrap, records, topic_of))


async def produce_paced(client: AIOKafkaProducer, records: Sequence[Record], topic_of: Callable[[Record], str],
                        rate: float, on_sent: Callable[[Record, float], None]) -> float:
    """Send `records` at `rate` per second, calling `on_sent(record, t)` at each send; the rate achieved."""
    interval = 1.0 / rate
    started = time.perf_counter()
    pending = []
    for i, record in enumerate(records):
        ahead = started + i * interval - time.perf_counter()
        if ahead > 0.001:
            await asyncio.sleep(ahead)
        on_sent(record, time.perf_counter())
        pending.append(await client.send(topic_of(record), record.value, key=record.key))
    await asyncio.gather(*pending)
    return len(records) / max(1e-9, time.perf_counter() - started)
