"""`send_in_batches` against the session's real broker: every record arrives, in order within its partition,
where `producer.send` would have put it; a record larger than a batch still goes (or fails as `send` fails)."""

from __future__ import annotations

from collections.abc import Callable

from aiokafka import AIOKafkaConsumer, AIOKafkaProducer
from aiokafka.admin import AIOKafkaAdminClient, NewTopic
from aiokafka.errors import MessageSizeTooLargeError

from streams.partitioning import canonical_partition
from streams.worker.batches import send_in_batches

PARTITIONS = 4


async def _topic(bootstrap: str, name: str) -> None:
    admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap)
    await admin.start()
    try:
        await admin.create_topics([NewTopic(name, PARTITIONS, 1)])
    finally:
        await admin.close()


async def _read(bootstrap: str, topic: str, count: int) -> list[tuple[int, bytes | None, bytes | None]]:
    consumer = AIOKafkaConsumer(topic, bootstrap_servers=bootstrap, auto_offset_reset="earliest",
                                enable_auto_commit=False, fetch_max_wait_ms=50)
    await consumer.start()
    got: list[tuple[int, bytes | None, bytes | None]] = []
    try:
        while len(got) < count:
            batches = await consumer.getmany(timeout_ms=5_000)
            if not batches:
                break
            for tp, records in sorted(batches.items(), key=lambda item: item[0].partition):
                got += [(tp.partition, r.key, r.value) for r in records]
    finally:
        await consumer.stop()
    return got


async def test_records_arrive_in_order_on_the_partition_send_would_choose(
    kafka_bootstrap: str, make_topic_names: Callable[..., list[str]],
) -> None:
    (topic,) = make_topic_names("batches")
    await _topic(kafka_bootstrap, topic)
    producer = AIOKafkaProducer(bootstrap_servers=kafka_bootstrap, max_batch_size=4_096, linger_ms=5)
    await producer.start()
    try:
        # 30 customers x 20 versions, interleaved as a flush's states are; ~300 bytes each: several batches a
        # partition; half sent to their partition explicitly, half left to the partitioner; one tombstone each
        records = []
        for version in range(20):
            for c in range(30):
                key = f"customer-{c}".encode()
                value = None if version == 19 else f"{c}:{version}:".encode() + b"x" * 300
                records.append((canonical_partition(key.decode(), PARTITIONS) if c % 2 else None, key, value))
        futures = await send_in_batches(producer, topic, records)
        for future in futures:
            await future
    finally:
        await producer.stop()
    got = await _read(kafka_bootstrap, topic, len(records))
    assert len(got) == len(records)
    for partition in range(PARTITIONS):
        expected = [(key, value) for _, key, value in records
                    if canonical_partition(key.decode(), PARTITIONS) == partition]
        assert [(key, value) for p, key, value in got if p == partition] == expected


async def test_a_record_larger_than_a_batch_goes_alone_or_fails_as_send_fails(
    kafka_bootstrap: str, make_topic_names: Callable[..., list[str]],
) -> None:
    (topic,) = make_topic_names("batches-large")
    await _topic(kafka_bootstrap, topic)
    producer = AIOKafkaProducer(bootstrap_servers=kafka_bootstrap, max_batch_size=1_024, max_request_size=8_192)
    await producer.start()
    try:
        records = [(0, b"a", b"small 1"), (0, b"b", b"L" * 4_000), (0, b"c", b"small 2")]
        for future in await send_in_batches(producer, topic, records):
            await future
        try:
            await send_in_batches(producer, topic, [(1, b"d", b"H" * 20_000)])
        except MessageSizeTooLargeError:
            pass
        else:
            raise AssertionError("a record over max_request_size was accepted")
    finally:
        await producer.stop()
    assert await _read(kafka_bootstrap, topic, 3) == records
