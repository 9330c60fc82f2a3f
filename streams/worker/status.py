"""What the web views, /metrics and the heartbeat read of a worker: counters and callables, not the app.

`Tierstream.status()` builds one; `streams.worker.views`, `streams.worker.ops` and the metrics
collector take it, so none of them reaches into Faust, the table or the handler.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass

from streams.profile import CustomerProfile
from streams.serving.redis_view import RedisView
from streams.settings import Settings
from streams.worker.handler import Counters
from streams.worker.metrics import WorkerMetrics

Lag = dict[tuple[str, int], int]  # (topic, partition) -> records not yet committed


@dataclass(frozen=True)
class WorkerStatus:
    settings: Settings
    counters: Counters
    metrics: WorkerMetrics
    redis: RedisView
    partitions: Callable[[], list[int]]  # the partitions this worker owns
    lag: Callable[[], Lag]
    table_customers: Callable[[], int]
    deadlines: Callable[[], int]  # customers with a review day
    unwritten: Callable[[], int]  # customers stepped since the last flush
    lookup: Callable[[str], CustomerProfile | None]  # a customer owned here, as of now; None when unknown
    lookup_document: Callable[[str], dict[str, object] | None]  # the query API's document
    owns: Callable[[str], bool]  # whether the customer's canonical partition is owned here
    owner_url: Callable[[str], str | None]  # the web URL of the worker that owns a customer
    wall_ms: Callable[[], int]
    advance_clock: Callable[[int], None]
    redis_ok: Callable[[], Awaitable[bool]]
    send_heartbeat: Callable[[bytes, str], Awaitable[None]]  # (value, key) to the metrics topic
    calibration_version: Callable[[], str | None] = lambda: None
    event_clock: Callable[[], dict[str, object] | None] = lambda: None  # clock: event: held events, watermark
    model_version: Callable[[], str | None] = lambda: None
