"""The real-service fixtures work: Tansu speaks Kafka to aiokafka, Redis answers, stop frees ports."""

from __future__ import annotations

import asyncio
import json
import logging
import os
import socket
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

import pytest
import redis.asyncio as aioredis
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, ConsumerRecord, TopicPartition
from aiokafka.admin import AIOKafkaAdminClient
from aiokafka.partitioner import DefaultPartitioner

from streams.local.embedded import (
    EmbeddedProcess,
    EmbeddedStartError,
    create_topics,
    free_port,
    kafka_metadata_brokers,
    port_is_listening,
    redis_ping,
    start_redis,
    start_tansu,
)

ROOT = Path(__file__).resolve().parents[2]

PARTITIONS = 4


async def produce_keyed(bootstrap: str, topic: str, items: list[tuple[str, dict[str, int]]]) -> None:
    """Send JSON values with string keys through aiokafka's default partitioner."""
    producer = AIOKafkaProducer(bootstrap_servers=bootstrap, linger_ms=5)
    await producer.start()
    try:
        futures = [await producer.send(topic, json.dumps(v).encode(), key=k.encode()) for k, v in items]
        await asyncio.gather(*futures)
    finally:
        await producer.stop()


async def consume_all(bootstrap: str, topic: str, expected: int, within: float = 15.0) -> list[ConsumerRecord]:
    """Read ``expected`` records from all partitions of ``topic`` from the beginning (no group)."""
    consumer = AIOKafkaConsumer(bootstrap_servers=bootstrap, enable_auto_commit=False, auto_offset_reset="earliest")
    await consumer.start()
    records: list[ConsumerRecord] = []
    try:
        consumer.assign([TopicPartition(topic, p) for p in range(PARTITIONS)])
        loop = asyncio.get_running_loop()
        deadline = loop.time() + within
        while len(records) < expected and loop.time() < deadline:
            batch = await consumer.getmany(timeout_ms=200)
            for recs in batch.values():
                records.extend(recs)
    finally:
        await consumer.stop()
    return records


def assert_stopped(proc: EmbeddedProcess) -> None:
    """The process is reaped, its pid is gone and nothing listens on its port."""
    assert proc.popen.returncode is not None
    with pytest.raises(ProcessLookupError):
        os.kill(proc.pid, 0)
    assert not port_is_listening(proc.port)


async def test_kafka_fixture_roundtrip_with_plain_aiokafka(
    kafka_bootstrap: str, make_topic_names: Callable[..., list[str]]
) -> None:
    """Create a 4-partition topic, produce 200 keyed records, consume every one back."""
    (topic,) = make_topic_names("roundtrip")
    assert await create_topics(kafka_bootstrap, [topic], partitions=PARTITIONS) == {topic: PARTITIONS}
    items = [(f"cust-{i % 23}", {"seq": i}) for i in range(200)]
    await produce_keyed(kafka_bootstrap, topic, items)

    records = await consume_all(kafka_bootstrap, topic, expected=len(items))

    assert sorted(json.loads(r.value)["seq"] for r in records) == list(range(200))
    partitioner = DefaultPartitioner()
    all_parts = list(range(PARTITIONS))
    for record in records:  # the broker keeps the partition the murmur2 partitioner chose
        assert record.partition == partitioner(record.key, all_parts, all_parts)
    assert {r.partition for r in records} == set(all_parts)


async def test_admin_sees_created_topic(kafka_bootstrap: str, make_topic_names: Callable[..., list[str]]) -> None:
    """create_topics is idempotent and the admin client lists the topic."""
    (topic,) = make_topic_names("admin")
    await create_topics(kafka_bootstrap, [topic])
    assert await create_topics(kafka_bootstrap, [topic]) == {topic: PARTITIONS}
    admin = AIOKafkaAdminClient(bootstrap_servers=kafka_bootstrap)
    await admin.start()
    try:
        assert topic in await admin.list_topics()
    finally:
        await admin.close()


async def test_redis_fixture_set_get(redis_url: str, key_prefix: str) -> None:
    """SET/GET under the run's key prefix works against the fixture's Redis."""
    client = aioredis.Redis.from_url(redis_url)
    try:
        await client.set(f"{key_prefix}hello", "world")
        assert await client.get(f"{key_prefix}hello") == b"world"
    finally:
        await client.aclose()


def test_make_topic_names_unique_and_legal(make_topic_names: Callable[..., list[str]]) -> None:
    """Names differ per call, keep their base, and use only legal Kafka characters."""
    first = make_topic_names("a b", "c")
    second = make_topic_names("a b", "c")
    assert len(set(first + second)) == 4
    assert first[0].startswith("a-b-")
    assert all(len(n) < 200 and all(ch.isalnum() or ch in "._-" for ch in n) for n in first)


def test_free_port_is_bindable() -> None:
    """free_port returns a loopback port nobody is listening on."""
    port = free_port()
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", port))


def test_tansu_start_stop_leaves_nothing_listening(caplog: pytest.LogCaptureFixture) -> None:
    """A context-managed broker answers Kafka metadata, then its port is closed. Waiting for it logs nothing
    (aiokafka's "Unable connect to ..." was the first line `tierstream demo` printed)."""
    with caplog.at_level(logging.INFO, logger="aiokafka"), start_tansu() as broker:
        assert [r.getMessage() for r in caplog.records if r.levelno >= logging.WARNING] == []
        assert broker.bootstrap == f"127.0.0.1:{broker.port}"
        assert broker.url == f"kafka://127.0.0.1:{broker.port}"
        assert [(h, p) for _, h, p in kafka_metadata_brokers("127.0.0.1", broker.port)] == [("127.0.0.1", broker.port)]
        assert broker.log_path.exists()
    assert_stopped(broker)
    assert not broker.log_path.exists()  # temp log removed on stop
    assert broker.stop() == broker.popen.returncode  # idempotent


def test_redis_start_stop_leaves_nothing_listening() -> None:
    """A started redis-server answers PING, then its port is closed."""
    with start_redis() as server:
        assert server.url == f"redis://127.0.0.1:{server.port}/0"
        assert redis_ping("127.0.0.1", server.port)
    assert_stopped(server)


_CHILD_SCRIPT = """
import sys, time
from streams.local.embedded import start_redis, start_tansu
broker, server = start_tansu(), start_redis()
print(broker.pid, broker.port, server.pid, server.port, flush=True)
print(broker.log_path, server.log_path, flush=True)
if sys.argv[1] == "hang":
    time.sleep(60)
"""


def _run_child(mode: str) -> tuple[subprocess.Popen[str], list[int], list[Path]]:
    """Start a Python child that starts Tansu + Redis; return it, [pid, port, pid, port], log paths."""
    child = subprocess.Popen(
        [sys.executable, "-c", _CHILD_SCRIPT, mode],
        stdout=subprocess.PIPE,
        text=True,
        env={**os.environ, "PYTHONPATH": str(ROOT)},
    )
    assert child.stdout is not None
    numbers = [int(x) for x in child.stdout.readline().split()]
    assert len(numbers) == 4, numbers
    return child, numbers, [Path(p) for p in child.stdout.readline().split()]


def _wait_gone(pid: int, port: int, timeout: float = 10.0) -> bool:
    """True once ``pid`` no longer exists (or is a zombie) and ``port`` is closed."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            os.kill(pid, 0)
            alive = Path(f"/proc/{pid}/stat").read_text().split()[2] != "Z"
        except (ProcessLookupError, FileNotFoundError):
            alive = False
        if not alive and not port_is_listening(port):
            return True
        time.sleep(0.05)
    return False


def test_services_stopped_at_interpreter_exit() -> None:
    """stop_all runs at exit: a program that forgets stop() leaves nothing behind."""
    child, (b_pid, b_port, r_pid, r_port), logs = _run_child("exit")
    assert child.wait(timeout=20) == 0
    assert _wait_gone(b_pid, b_port)
    assert _wait_gone(r_pid, r_port)
    assert not any(log.exists() for log in logs)


def test_services_die_with_a_killed_parent() -> None:
    """kill -9 of the owning process still takes the services down (PDEATHSIG)."""
    child, (b_pid, b_port, r_pid, r_port), logs = _run_child("hang")
    child.kill()
    child.wait(timeout=10)
    assert _wait_gone(b_pid, b_port)
    assert _wait_gone(r_pid, r_port)
    for log in logs:  # a killed owner cannot remove its services' temp logs
        log.unlink(missing_ok=True)


def test_start_on_busy_port_fails() -> None:
    """An explicit port that is already taken is an error, not a silent reuse."""
    with start_redis() as server, pytest.raises(EmbeddedStartError):
        start_tansu(port=server.port)
