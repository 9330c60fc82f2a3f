"""Records handed to the producer a batch per partition, not one `send` each.

A flush writes about two records per customer it saw (its state to the changelog, its score snapshot).
Through `producer.send` each costs ~20-25 us of Python in aiokafka and Faust (serialise, partition, find the
batch, make a future); appended to a `BatchBuilder` and queued with `send_batch` a record costs ~4 us. The
records and their order in a partition are the same: aiokafka queues a batch only once the partition's
earlier batches were drained to the broker, and delivers a partition's batches in order.
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterable
from typing import Any

Keyed = tuple[int | None, bytes | None, bytes | None]  # (partition or None: the producer's partitioner, key, value)


async def send_in_batches(producer: Any, topic: str, records: Iterable[Keyed]) -> list[asyncio.Future[Any]]:
    """Queue `records` to `topic` (an aiokafka producer's `create_batch`/`send_batch`), in order within each
    partition; a record without a partition goes where `producer.send` would put it (the producer's
    partitioner over the topic's partitions), and a record `send` would refuse for its size is refused the
    same way, before any is queued. The futures are set when their batch is delivered (or failed)."""
    by_partition: dict[int, list[tuple[bytes | None, bytes | None]]] = {}
    await producer.client._wait_on_metadata(topic)  # what `send` and `send_batch` do first
    for fixed, key, value in records:
        # as `send`: a record over `max_request_size` raises MessageSizeTooLargeError (before anything is queued)
        key_bytes, value_bytes = producer._serialize(key, value, [])
        partition = producer._partition(topic, None, key, value, key_bytes, value_bytes) if fixed is None else fixed
        by_partition.setdefault(partition, []).append((key, value))
    futures: list[asyncio.Future[Any]] = []
    for partition, items in by_partition.items():
        batch = producer.create_batch()
        for key, value in items:
            if batch.append(key=key, value=value, timestamp=None) is not None:
                continue
            if batch.record_count():  # full: queue it, the record starts the next one
                futures.append(await producer.send_batch(batch, topic, partition=partition))
                batch = producer.create_batch()
                if batch.append(key=key, value=value, timestamp=None) is not None:
                    continue
            # a fresh batch takes any one record; should it not, `send` queues (or refuses) it alone
            futures.append(await producer.send(topic, value, key=key, partition=partition))
        if batch.record_count():
            futures.append(await producer.send_batch(batch, topic, partition=partition))
    return futures
