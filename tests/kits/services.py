"""Session fixtures (a pytest plugin) for tests that use real services: a Tansu Kafka broker and Redis.

Nothing here ever skips a test: if a service cannot be had, the fixture fails.

- ``kafka_bootstrap``: a Tansu broker started for the session on a free port.
- ``redis_url``: $REDIS_URL, else the local Redis on 6379 if it answers PING,
  else a redis-server started for the session on a free port.
- ``key_prefix``: a per-run Redis key prefix; its keys are deleted at session end.
- ``make_topic_names``: per-test unique Kafka topic names on the shared broker.
"""

from __future__ import annotations

import os
import re
import uuid
from collections.abc import Callable, Iterator

import pytest
import redis

from streams.local.embedded import (
    EmbeddedProcess,
    redis_ping,
    start_redis,
    start_tansu,
    stop_all,
)

LOCAL_REDIS_HOST = "127.0.0.1"
LOCAL_REDIS_PORT = 6379
_TOPIC_UNSAFE = re.compile(r"[^a-zA-Z0-9._-]+")


@pytest.fixture(scope="session")
def tansu_broker() -> Iterator[EmbeddedProcess]:
    """The session's Tansu broker process (for its pid, port and log)."""
    broker = start_tansu()
    try:
        yield broker
    finally:
        broker.stop()


@pytest.fixture(scope="session")
def kafka_bootstrap(tansu_broker: EmbeddedProcess) -> str:
    """Bootstrap servers string "127.0.0.1:PORT" of the session's Tansu broker."""
    return tansu_broker.bootstrap


@pytest.fixture(scope="session")
def redis_url() -> Iterator[str]:
    """A Redis URL: $REDIS_URL, else local 6379 if it answers, else our own server."""
    env_url = _env_redis_url()
    if env_url:
        yield env_url
        return
    if redis_ping(LOCAL_REDIS_HOST, LOCAL_REDIS_PORT):
        yield f"redis://{LOCAL_REDIS_HOST}:{LOCAL_REDIS_PORT}/0"
        return
    server = start_redis()
    try:
        yield server.url
    finally:
        server.stop()


def _env_redis_url() -> str | None:
    """The REDIS_URL environment variable, if set and non-empty."""
    return os.environ.get("REDIS_URL") or None


def delete_keys_with_prefix(url: str, prefix: str) -> int:
    """Delete every key starting with ``prefix`` (SCAN + DEL); return how many."""
    pattern = re.sub(r"([*?\[\]\\])", r"\\\1", prefix) + "*"
    client = redis.Redis.from_url(url)
    deleted = 0
    try:
        batch: list[bytes] = []
        for key in client.scan_iter(match=pattern, count=500):
            batch.append(key)
            if len(batch) >= 500:
                deleted += int(client.delete(*batch))
                batch.clear()
        if batch:
            deleted += int(client.delete(*batch))
    finally:
        client.close()
    return deleted


@pytest.fixture(scope="session")
def key_prefix(redis_url: str) -> Iterator[str]:
    """A Redis key prefix unique to this test run; its keys are removed at the end."""
    prefix = f"ts-test-{uuid.uuid4().hex[:12]}:"
    try:
        yield prefix
    finally:
        delete_keys_with_prefix(redis_url, prefix)


@pytest.fixture
def make_topic_names(request: pytest.FixtureRequest) -> Callable[..., list[str]]:
    """Factory: ``make_topic_names("events", "scores")`` -> unique names for this test.

    Names look like ``events-test_foo-1a2b3c4d``: legal Kafka topic characters,
    short, and different on every call, so tests never collide on the broker.
    """
    test_slug = _TOPIC_UNSAFE.sub("-", request.node.name)[:60].strip("-") or "test"

    def make(*bases: str) -> list[str]:
        suffix = uuid.uuid4().hex[:8]
        return [f"{_TOPIC_UNSAFE.sub('-', base)}-{test_slug}-{suffix}" for base in bases]

    return make


def pytest_sessionfinish(session: pytest.Session, exitstatus: int) -> None:
    """Safety net: stop any embedded service a test or fixture left running."""
    stop_all()
