"""Fixtures (a pytest plugin) of the streaming integration tests (real Tansu broker, real Redis, real workers).

- `start_stream`: factory; `async with start_stream("name", workers=N, unread=(), prepare=None, **settings) as
  group:` writes one YAML config (unique topics, app id and Redis prefix), creates every topic
  with `streams.kafka.ensure_topics` before anything else touches them, awaits `prepare(settings, config_path)`
  when given (what runs before any worker: `tierstream bootstrap`), starts N
  `tierstream worker` subprocesses, starts an `OutputReader` on the output topics
  (`group.outputs`), and waits until the workers own all partitions between them.
  Modules share one group through a module-scoped fixture; workers are stopped
  (SIGTERM by pid, then SIGKILL) when the block ends.
- `default_stream`: one such group with the default settings (and a retention rule), shared by several modules.
- `redis`: a client of the session's Redis.
- `upstream`: a plain aiokafka producer (JSON bytes, key = customer id, murmur2).

When a test fails, the tail of every running worker's log is added to its report.
"""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
import redis.asyncio as aioredis

from streams.settings import Settings
from tests.kits.stream import DEFAULT_FORGET_DAYS, RUNNING, StartStream, StreamGroup, Upstream, run_group, stream_config


@pytest.hookimpl(wrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo[None]) -> Any:
    report = yield
    if report.when == "call" or (report.when == "setup" and report.failed):
        from tests.kits.faults import write_reports  # a fault test's rows, with its outcome

        write_reports("pass" if report.passed else "xfail (known defect)" if hasattr(report, "wasxfail") else "fail")
    if report.failed:
        for worker in list(RUNNING):
            report.sections.append((f"worker {worker.name} (pid {worker.pid}) log tail, {worker.log_path}",
                                    worker.log_tail()))
    return report


@pytest.fixture(scope="session")
def start_stream(kafka_bootstrap: str, redis_url: str, key_prefix: str,
                 tmp_path_factory: pytest.TempPathFactory) -> Iterator[StartStream]:
    """Factory of worker groups; see the module docstring."""

    @contextlib.asynccontextmanager
    async def start(name: str, *, workers: int = 1, unread: tuple[str, ...] = (),
                    prepare: Callable[[Settings, Path], Awaitable[None]] | None = None,
                    **settings: Any) -> AsyncIterator[StreamGroup]:
        workdir = tmp_path_factory.mktemp(f"stream-{name}")
        doc = stream_config(name, kafka_bootstrap, redis_url, key_prefix, workdir, **settings)
        async with run_group(name, doc, workdir, kafka_bootstrap, workers, unread, prepare) as group:
            yield group

    yield start
    for worker in list(RUNNING):  # safety net: nothing outlives the session
        worker.stop()


@pytest.fixture(scope="session")
async def default_stream(start_stream: StartStream) -> AsyncIterator[StreamGroup]:
    """One worker with the default settings (wall clock, default rules), shared by the modules
    that need nothing else (they use unique customer ids): saves a worker start per module. It forgets
    customers idle for `DEFAULT_FORGET_DAYS` (only test_stream_retention sends events that old)."""
    async with start_stream("default", scoring={"retention": {"forget_after_days": DEFAULT_FORGET_DAYS}}) as group:
        yield group


@pytest.fixture
async def redis(redis_url: str) -> AsyncIterator[aioredis.Redis]:
    """A client of the session's Redis (str replies); tests read keys under their stream's prefix."""
    client = aioredis.Redis.from_url(redis_url, decode_responses=True)
    try:
        yield client
    finally:
        await client.aclose()


@pytest.fixture(scope="session")
async def upstream(kafka_bootstrap: str) -> AsyncIterator[Upstream]:
    """A plain aiokafka producer of input events (JSON bytes, key = customer id, murmur2)."""
    producer = Upstream(kafka_bootstrap)
    await producer.start()
    try:
        yield producer
    finally:
        await producer.stop()
