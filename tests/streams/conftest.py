"""Fixtures of the streaming integration tests (real Tansu broker, real Redis, real workers).

- `start_stream`: factory; `async with start_stream("name", workers=N, **settings) as group:`
  writes one YAML config (unique topics, app id and Redis prefix), creates every topic
  with `streams.kafka.ensure_topics` before anything else touches them, starts N
  `tierstream worker` subprocesses, starts an `OutputReader` on the output topics
  (`group.outputs`), and waits until the workers own all partitions between them.
  Modules share one group through a module-scoped fixture; workers are stopped
  (SIGTERM by pid, then SIGKILL) when the block ends.
- `default_stream`: one such group with the default settings, shared by several modules.
- `upstream`: a plain aiokafka producer (JSON bytes, key = customer id, murmur2).

When a test fails, the tail of every running worker's log is added to its report.
"""

from __future__ import annotations

import contextlib
import uuid
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import pytest
from streamkit import (
    PARTITIONS,
    RUNNING,
    OutputReader,
    StartStream,
    StreamGroup,
    Upstream,
    spawn_worker,
    topic_names,
    write_config,
)

from streams.embedded import free_port
from streams.kafka import ensure_topics


@pytest.hookimpl(wrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo[None]) -> Any:
    report = yield
    if report.failed:
        for worker in list(RUNNING):
            report.sections.append((f"worker {worker.name} (pid {worker.pid}) log tail, {worker.log_path}",
                                    worker.log_tail()))
    return report


def stream_config(name: str, bootstrap: str, redis_url: str, prefix: str, workdir: Path,
                  **settings: Any) -> dict[str, Any]:
    """The YAML document of a worker group: unique topics, app id, Redis prefix; fast test timings."""
    suffix = uuid.uuid4().hex[:8]
    doc: dict[str, Any] = {
        "app_id": f"ts-{name}-{suffix}",
        "kafka_bootstrap": bootstrap,
        "redis_url": redis_url,
        "redis_prefix": f"{prefix}{name}-{suffix}:",
        "partitions": PARTITIONS,
        "fast_join": True,
        "commit_interval_seconds": 0.5,
        "review_interval_seconds": 0.2,
        "redis_flush_seconds": 0.02,
        "log_level": "info",
        "data_dir": str(workdir / "data"),
        "topics": topic_names(name),
    }
    doc.update(settings)
    return doc


@pytest.fixture(scope="session")
def start_stream(kafka_bootstrap: str, redis_url: str, key_prefix: str,
                 tmp_path_factory: pytest.TempPathFactory) -> Iterator[StartStream]:
    """Factory of worker groups; see the module docstring."""

    @contextlib.asynccontextmanager
    async def start(name: str, *, workers: int = 1, **settings: Any) -> AsyncIterator[StreamGroup]:
        workdir = tmp_path_factory.mktemp(f"stream-{name}")
        config_path = workdir / "tierstream.yaml"
        doc = stream_config(name, kafka_bootstrap, redis_url, key_prefix, workdir, **settings)
        loaded = write_config(config_path, doc)
        await ensure_topics(loaded)  # every topic exists, with the right count, before anyone touches it
        group = StreamGroup(name, loaded, config_path, workdir)
        reader = OutputReader(kafka_bootstrap, loaded.topics, loaded.partitions)
        try:
            for i in range(workers):
                wname = f"{name}-w{i + 1}"
                group.workers.append(spawn_worker(config_path, free_port(), workdir / f"{wname}.log", wname))
            await reader.start()
            group.outputs = reader
            await group.wait_ready()
            yield group
        finally:
            await reader.stop()
            group.stop()

    yield start
    for worker in list(RUNNING):  # safety net: nothing outlives the session
        worker.stop()


@pytest.fixture(scope="session")
async def default_stream(start_stream: StartStream) -> AsyncIterator[StreamGroup]:
    """One worker with the default settings (wall clock, default rules), shared by the modules
    that need nothing else (they use unique customer ids): saves a worker start per module."""
    async with start_stream("default") as group:
        yield group


@pytest.fixture(scope="session")
async def upstream(kafka_bootstrap: str) -> AsyncIterator[Upstream]:
    """A plain aiokafka producer of input events (JSON bytes, key = customer id, murmur2)."""
    producer = Upstream(kafka_bootstrap)
    await producer.start()
    try:
        yield producer
    finally:
        await producer.stop()
