"""Produce input messages to Kafka the way the worker expects them.

Key = the customer id's UTF-8 bytes, partition = aiokafka's default murmur2
partitioner (the customer's canonical partition, `streams.partitioning`).
`mixed` sends every type to the `customer-events` topic, which keeps one
customer's order across types; `per-type` sends to purchases/returns/...
Used by `tierstream generate`, `tierstream backfill` and the demo.
"""

from __future__ import annotations

import asyncio
import time
from typing import Literal

from aiokafka import AIOKafkaProducer

from streams.convert import InputMessage
from streams.kafka import client_options
from streams.settings import Settings

TopicMode = Literal["mixed", "per-type"]
MAX_UNACKED = 2000  # sends in flight before waiting for their acks


class Pacer:
    """Spaces calls `1/rate` seconds apart on average (None: no limit); sleeps only when > 5 ms ahead."""

    def __init__(self, rate: float | None) -> None:
        self.interval = 1.0 / rate if rate else 0.0
        self._next = 0.0

    async def wait(self) -> None:
        if not self.interval:
            return
        now = time.monotonic()
        self._next = max(self._next, now - 1.0) + self.interval  # at most 1 s of catch-up burst
        ahead = self._next - now
        if ahead > 0.005:
            await asyncio.sleep(ahead)


class Publisher:
    """An aiokafka producer that sends input messages keyed by customer id."""

    def __init__(self, settings: Settings, mode: TopicMode = "mixed") -> None:
        self.settings, self.mode = settings, mode
        self._producer: AIOKafkaProducer | None = None
        self._pending: list[asyncio.Future[object]] = []
        self.sent = 0
        self.by_topic: dict[str, int] = {}

    def topic_of(self, message: InputMessage) -> str:
        topics = self.settings.topics
        # erasure requests have no typed topic: the mixed one carries them in either mode
        return topics.inputs().get(message.type, topics.events) if self.mode != "mixed" else topics.events

    def topics(self) -> list[str]:
        t = self.settings.topics
        return [t.events] if self.mode == "mixed" else list(t.inputs().values())

    @property
    def producer(self) -> AIOKafkaProducer:
        if self._producer is None:
            raise RuntimeError("Publisher.start() was not called")
        return self._producer

    async def start(self) -> None:
        s = self.settings
        self._producer = AIOKafkaProducer(
            **client_options(s), acks="all", linger_ms=int(s.producer_linger_seconds * 1000),
            max_batch_size=max(16_384, s.producer_max_batch_size), request_timeout_ms=30_000)
        await self._producer.start()

    async def send(self, message: InputMessage) -> None:
        topic = self.topic_of(message)
        value = message.model_dump_json(exclude_none=True).encode()
        self._pending.append(await self.producer.send(topic, value, key=message.customer_id.encode()))
        self.sent += 1
        self.by_topic[topic] = self.by_topic.get(topic, 0) + 1
        if len(self._pending) >= MAX_UNACKED:
            await self.flush()

    async def flush(self) -> None:
        """Wait until every message sent so far is acknowledged (raises the first send error)."""
        pending, self._pending = self._pending, []
        if pending:
            await asyncio.gather(*pending)

    async def stop(self) -> None:
        try:
            await self.flush()
        finally:
            await self.producer.stop()

    async def __aenter__(self) -> Publisher:
        await self.start()
        return self

    async def __aexit__(self, *exc: object) -> None:
        if exc[0] is not None:
            self._pending.clear()
        await self.stop()
