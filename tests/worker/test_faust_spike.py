"""Spike: Faust (faust-streaming) workers as subprocesses against the Tansu broker.

Shows how tests run a real Faust worker quickly and reliably:

- topics the test reads or writes are created up front with the aiokafka admin
  client; Faust creates its own internal topics (table changelog, assignor leader);
- the worker is ``python -m faust -A spike_app worker -l warn --web-port N`` with
  the fast group-join settings in ``spike_app.FAST_TEST_SETTINGS``;
- readiness is polled on the app's own ``/ready/`` page (group joined, tables
  recovered, no rebalance running, owns source partitions);
- it stops cleanly on SIGTERM (by its pid) within a couple of seconds.

Timings are printed as ``SPIKE ...`` lines (run pytest with ``-s`` to see them).

Two workers splitting the partitions and a survivor taking over after kill -9 are shown with the real
worker, not this toy app: tests/worker/test_stream_two_workers.py and test_fault_crash.py.
"""

from __future__ import annotations

import asyncio
import json
import os
import sys
import time
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from types import TracebackType
from typing import Any, Self

import aiohttp
import faust
import pytest
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, ConsumerRecord, TopicPartition
from aiokafka.admin import AIOKafkaAdminClient
from aiokafka.partitioner import DefaultPartitioner
from aiokafka.structs import RecordMetadata

from streams.local.embedded import create_topics, free_port
from streams.local.process import ChildProcess

SPIKE_DIR = Path(__file__).resolve().parent
PARTITIONS = 4
ALL_PARTITIONS = list(range(PARTITIONS))
Status = dict[str, Any]


def report(name: str, **values: object) -> None:
    """Print one ``SPIKE name: k=v ...`` line with the measured values."""
    parts = " ".join(f"{k}={v:.2f}" if isinstance(v, float) else f"{k}={v}" for k, v in values.items())
    print(f"\nSPIKE {name}: {parts}")


@dataclass(eq=False, kw_only=True)
class FaustWorker(ChildProcess):
    """A Faust worker subprocess with its web port and captured log."""

    web_port: int

    @property
    def ready_url(self) -> str:
        """URL of the app's readiness page."""
        return f"http://127.0.0.1:{self.web_port}/ready/"

    def log_tail(self, size: int = 3000) -> str:
        """Last ``size`` characters of the worker's output."""
        return super().log_tail(size)

    def timed_stop(self, grace: float = 15.0) -> float:
        """SIGTERM by pid, wait up to ``grace`` s (then SIGKILL); return seconds taken."""
        began = time.monotonic()
        self.stop(grace)
        return time.monotonic() - began


def start_worker(
    bootstrap: str,
    app_id: str,
    topics: dict[str, str],
    workdir: Path,
    name: str,
    timer_partition: int | None = None,
) -> FaustWorker:
    """Start ``spike_app`` as a Faust worker subprocess; output goes to ``workdir/NAME.log``."""
    web_port = free_port()
    env = {
        **os.environ,
        "PYTHONPATH": str(SPIKE_DIR),
        "PYTHONDONTWRITEBYTECODE": "1",
        "SPIKE_BROKER": bootstrap,
        "SPIKE_APP_ID": app_id,
        "SPIKE_IN": topics["in"],
        "SPIKE_OUT": topics["out"],
        "SPIKE_TICKS": topics.get("ticks", ""),
        "SPIKE_TIMER_PARTITION": "" if timer_partition is None else str(timer_partition),
        "SPIKE_WORKER": name,
        "SPIKE_DATADIR": str(workdir / f"data-{name}"),
    }
    argv = [sys.executable, "-m", "faust", "-A", "spike_app", "worker", "-l", "warn"]
    argv += ["--web-host", "127.0.0.1", "--web-port", str(web_port)]
    return FaustWorker.start(name, argv, workdir / f"{name}.log", env=env, cwd=workdir, web_port=web_port)


@pytest.fixture
def worker_pool() -> Iterator[list[FaustWorker]]:
    """A list to register workers in; every one still running is stopped afterwards."""
    workers: list[FaustWorker] = []
    yield workers
    for worker in workers:
        worker.stop(grace=10)


async def fetch_status(http: aiohttp.ClientSession, worker: FaustWorker) -> Status | None:
    """The worker's ``/ready/`` JSON, or None while its web server is not up."""
    try:
        async with http.get(worker.ready_url, timeout=aiohttp.ClientTimeout(total=2)) as response:
            result: Status = await response.json()
            return result
    except (aiohttp.ClientError, TimeoutError):
        return None


async def wait_for_status(
    http: aiohttp.ClientSession,
    workers: list[FaustWorker],
    predicate: Callable[[list[Status]], bool],
    within: float,
) -> list[Status]:
    """Poll all workers' statuses until ``predicate`` holds; fail with their logs if not."""
    deadline = time.monotonic() + within
    statuses: list[Status | None] = []
    while time.monotonic() < deadline:
        for worker in workers:
            worker.check_alive()
        statuses = [await fetch_status(http, w) for w in workers]
        complete = [s for s in statuses if s is not None]
        if len(complete) == len(workers) and predicate(complete):
            return complete
        await asyncio.sleep(0.05)
    logs = "\n".join(f"--- {w.name}\n{w.log_tail()}" for w in workers)
    raise AssertionError(f"workers not in expected state after {within}s: {statuses}\n{logs}")


async def produce(bootstrap: str, topic: str, items: list[tuple[str, dict[str, int]]]) -> list[RecordMetadata]:
    """Send JSON values with str keys via aiokafka's default partitioner; return metadata."""
    producer = AIOKafkaProducer(bootstrap_servers=bootstrap, linger_ms=5)
    await producer.start()
    try:
        futures = [await producer.send(topic, json.dumps(v).encode(), key=k.encode()) for k, v in items]
        return list(await asyncio.gather(*futures))
    finally:
        await producer.stop()


@dataclass
class TopicReader:
    """Reads every partition of a topic from the beginning, without a consumer group."""

    bootstrap: str
    topic: str
    records: list[ConsumerRecord] = field(default_factory=list)
    _consumer: AIOKafkaConsumer | None = None

    async def __aenter__(self) -> Self:
        self._consumer = AIOKafkaConsumer(
            bootstrap_servers=self.bootstrap, enable_auto_commit=False, auto_offset_reset="earliest"
        )
        await self._consumer.start()
        self._consumer.assign([TopicPartition(self.topic, p) for p in ALL_PARTITIONS])
        return self

    async def __aexit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        assert self._consumer is not None
        await self._consumer.stop()

    async def read_until(self, done: Callable[[list[ConsumerRecord]], bool], within: float) -> list[ConsumerRecord]:
        """Keep reading until ``done(all records so far)``; fail after ``within`` s."""
        assert self._consumer is not None
        deadline = time.monotonic() + within
        while not done(self.records):
            assert time.monotonic() < deadline, f"{self.topic}: only {len(self.records)} records after {within}s"
            batch = await self._consumer.getmany(timeout_ms=100)
            for recs in batch.values():
                self.records.extend(recs)
        return self.records


def outputs(records: list[ConsumerRecord]) -> list[dict[str, Any]]:
    """Decoded output values, each with the partition it was written to as ``out_partition``."""
    return [{**json.loads(r.value), "out_partition": r.partition} for r in records]


def seqs_seen(records: list[ConsumerRecord], wanted: range) -> Callable[[list[ConsumerRecord]], bool]:
    """Reader predicate: every ``seq`` in ``wanted`` has an output."""

    def done(recs: list[ConsumerRecord]) -> bool:
        return set(wanted) <= {o["seq"] for o in outputs(recs)}

    return done


async def describe_partitions(bootstrap: str) -> dict[str, int]:
    """{topic: partition count} for every topic on the broker."""
    admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap)
    await admin.start()
    try:
        return {d["topic"]: len(d["partitions"]) for d in await admin.describe_topics()}
    finally:
        await admin.close()


async def test_single_worker_table_positions_and_timer(
    kafka_bootstrap: str,
    make_topic_names: Callable[..., list[str]],
    worker_pool: list[FaustWorker],
    tmp_path: Path,
) -> None:
    """One worker: 1,000 events -> 1,000 outputs with exact per-key table counts.

    Also checks that the event's source partition/offset is visible in the agent,
    that Faust's ``topic.send(key=...)`` lands on the same partition aiokafka's
    producer chose for the same key, that ``app.timer`` can send to an explicit
    partition, that Faust created its own internal topics, and a clean SIGTERM.
    """
    in_t, out_t, ticks_t = make_topic_names("in", "out", "ticks")
    await create_topics(kafka_bootstrap, [in_t, out_t, ticks_t], partitions=PARTITIONS)
    app_id = f"spike-{uuid.uuid4().hex[:8]}"
    worker = start_worker(
        kafka_bootstrap, app_id, {"in": in_t, "out": out_t, "ticks": ticks_t}, tmp_path, "w1", timer_partition=2
    )
    worker_pool.append(worker)
    await produce(kafka_bootstrap, in_t, [("probe", {"seq": -1})])  # sent before the worker is ready

    async with TopicReader(kafka_bootstrap, out_t) as out, aiohttp.ClientSession() as http:
        await wait_for_status(http, [worker], lambda s: s[0]["ready"], within=30)
        ready_s = time.perf_counter() - worker.started
        await out.read_until(lambda recs: len(recs) >= 1, within=30)
        first_output_s = time.perf_counter() - worker.started

        items = [(f"cust-{i % 50}", {"seq": i}) for i in range(1000)]
        began = time.monotonic()
        metas = await produce(kafka_bootstrap, in_t, items)
        produced_s = time.monotonic() - began
        await out.read_until(seqs_seen(out.records, range(1000)), within=30)
        processed_s = time.monotonic() - began

    results = [o for o in outputs(out.records) if o["seq"] >= 0]
    assert sorted(o["seq"] for o in results) == list(range(1000))  # exactly once, no failure here
    for o in results:
        meta = metas[o["seq"]]
        assert (o["partition"], o["offset"]) == (meta.partition, meta.offset)  # event.message.*
        assert o["out_partition"] == meta.partition  # Faust key placement == aiokafka's
    per_key: dict[str, list[int]] = {}
    for o in results:
        per_key.setdefault(o["key"], []).append(o["count"])
    assert {k: sorted(v) for k, v in per_key.items()} == {f"cust-{k}": list(range(1, 21)) for k in range(50)}

    async with TopicReader(kafka_bootstrap, ticks_t) as ticks:
        tick_records = await ticks.read_until(lambda recs: len(recs) >= 3, within=10)
    assert {r.partition for r in tick_records} == {2}

    topics = await describe_partitions(kafka_bootstrap)
    assert topics[f"{app_id}-counts-changelog"] == PARTITIONS  # created by Faust itself
    assert f"{app_id}-__assignor-__leader" in topics

    stop_s = worker.timed_stop()
    assert worker.popen.returncode == 0, worker.log_tail()
    assert stop_s < 10
    report(
        "single-worker",
        ready_s=ready_s,
        first_output_s=first_output_s,
        produce_1000_s=produced_s,
        produce_to_all_1000_outputs_s=processed_s,
        sigterm_stop_s=stop_s,
    )


def test_faust_and_aiokafka_place_str_keys_alike() -> None:
    """Faust's key bytes for a str key are its UTF-8 bytes and its partitioner is aiokafka's."""
    app = faust.App(f"partitioner-{uuid.uuid4().hex[:6]}", broker="kafka://127.0.0.1:1")
    topic = app.topic("t", key_type=str)
    partitioner = DefaultPartitioner()
    placed = {}
    for key in ["cust-1", "cust-2", "cust-42", "alice", "bob", "c0ffee"]:
        key_bytes, _ = topic.prepare_key(key, None)
        assert key_bytes == key.encode()
        placed[key] = partitioner(key_bytes, ALL_PARTITIONS, ALL_PARTITIONS)
    # None -> Faust's producer falls back to aiokafka's DefaultPartitioner() (murmur2).
    assert app.conf.producer_partitioner is None  # type: ignore[misc]
    report("partitions-of-4", **placed)
