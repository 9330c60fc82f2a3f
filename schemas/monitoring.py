"""Messages about the workers themselves (topic `tierstream-metrics`)."""

from __future__ import annotations

from pydantic import AwareDatetime, Field

from schemas.base import Message


class WorkerHeartbeat(Message):
    """A worker's periodic report, every few seconds (topic `tierstream-metrics`, key = `worker_id`).

    Counts are totals since the worker process started; they restart at 0 with it.
    """

    worker_id: str = Field(min_length=1, description="host:port of the worker's web server; also the message key.")
    app_id: str = Field(description="Kafka consumer group (app id) the worker belongs to.")
    emitted_at: AwareDatetime = Field(description="When the heartbeat was sent (UTC).")
    interval_seconds: float = Field(ge=0, description="Seconds since this worker's previous heartbeat (or start).")
    events_total: int = Field(ge=0, description="Messages handled since start: input events and review ticks.")
    events_per_second: float = Field(ge=0, description="Messages handled per second over `interval_seconds`.")
    partitions: list[int] = Field(description="Partitions the worker owns now (active, not standby).")
    lag: dict[int, int] = Field(
        description=(
            "Partition -> messages not yet committed (highwater - committed offset), summed over the input "
            "topics (including the mixed and review topics); a partition not fetched yet is absent."
        )
    )
    lag_total: int = Field(ge=0, description="Sum of `lag`, messages.")
    tiers: dict[str, int] | None = Field(
        default=None,
        description=(
            "Tier -> customers, from the Redis serving view (all workers'); absent when Redis is unreachable."
        ),
    )
    scored: int = Field(ge=0, description="Input events applied to a customer since start.")
    dead_lettered: int = Field(ge=0, description="Inputs sent to the dead-letter topic since start.")
    redis_errors: int = Field(ge=0, description="Failed Redis pipeline writes since start.")
    redis_retries: int = Field(ge=0, description="Redis write retries since start.")
    redis_pending_writes: int = Field(ge=0, description="Customer profiles waiting to be written to Redis now.")
    config_version: str = Field(description="Version of the scoring rules in force.")
