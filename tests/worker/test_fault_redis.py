"""Redis goes away mid-stream and comes back empty: no crash, no output lost, the view converges.

A worker is pointed at a Redis started for this test (never the shared one) and scores a seeded
history (mixed `customer-events` topic, `clock: event`, sweep on). When a sixth
of the outputs have been read, that Redis is stopped (SIGTERM by pid) while the rest of the
history is produced; the worker keeps scoring (outputs keep arriving, /health answers and says Redis
is unreachable, profiles wait in its buffer). Then a new Redis is started on the same port; it is
empty (no persistence), like a Redis that restarted or failed over without its data.

Then: the worker is alive, every output id a clean run produces is on Kafka and the table equals the
replay; and the serving view converges to the table key by key: for every customer in the table,
the Redis hash's tier equals the evaluation of the table state as of its `scored_day` (what
`streams.serving.resync` writes), and its score equals it to the hundredth (a snapshot is published when the
score moves by 0.01 or more, so a later step that moved it less leaves the hash as it was).
Recovery time in the faults report: from the new Redis's start until the view matched.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
import redis.asyncio as aioredis

from scoring.step import evaluate
from streams.local.embedded import EmbeddedProcess, start_redis
from tests.kits.faults import (
    OutputIndex,
    assert_nothing_lost,
    expect,
    history,
    last_day,
    report,
    settle,
    start_group,
    table_states,
    wait_progress,
    with_closers,
)
from tests.kits.stream import PARTITIONS, StreamGroup, Upstream, eventually

pytestmark = [pytest.mark.integration, pytest.mark.slow]

SETTINGS = {"clock": "event", "review_interval_seconds": 0.5}


@pytest.fixture
def own_redis() -> Iterator[list[EmbeddedProcess]]:
    """A Redis of this test's own on a free port (a list: the test replaces it); stopped at the end."""
    servers = [start_redis()]
    try:
        yield servers
    finally:
        for server in servers:
            server.stop()


async def view_mismatches(group: StreamGroup, client: aioredis.Redis) -> list[str]:
    """Customers of the table whose Redis hash disagrees with the table's state (tier, score to 0.01)."""
    config = group.settings.scoring
    states = await table_states(group.settings)
    pipe = client.pipeline(transaction=False)
    customers = sorted(states)
    for customer in customers:
        pipe.hmget(f"{group.prefix}customer:{customer}", "tier", "score")
    found = await pipe.execute()
    wrong = []
    for customer, (tier, score) in zip(customers, found, strict=True):
        state = states[customer]
        assert state.scored_day is not None
        ev = evaluate(state, state.scored_day, config)
        if tier != ev.tier or score is None or round(float(score) * 100) != round(ev.score.composite * 100):
            wrong.append(f"{customer}: redis {tier}/{score}, table {ev.tier}/{ev.score.composite}")
    return wrong


async def test_a_redis_outage_loses_nothing(kafka_bootstrap: str, key_prefix: str, upstream: Upstream,
                                            own_redis: list[EmbeddedProcess], tmp_path: Path) -> None:
    port = own_redis[0].port
    events = with_closers(history(31, customers=400, min_events=4000), PARTITIONS, "f31-")
    third = len(events) // 3
    async with start_group("redisout", kafka_bootstrap, own_redis[0].url, key_prefix, tmp_path,
                           **SETTINGS) as group:
        worker = group.worker
        expected = expect(events, group.settings.scoring, group.topics, last_day(events))
        index = OutputIndex(group)
        total = len(expected.outputs)

        async def found() -> int:
            return total - len(index.missing(expected))

        await upstream.send_all(group.topics.events, events[:third])
        await wait_progress(found, total // 6, "outputs before the outage", interval=0.05)
        own_redis[0].stop()  # SIGTERM by pid
        producing = asyncio.create_task(upstream.send_all(group.topics.events, events[third:]))
        at_stop = await found()
        await wait_progress(found, at_stop + total // 10, "outputs while Redis is away", interval=0.05)

        async def unreachable() -> dict[str, object] | None:
            health = await worker.health()
            return health if health is not None and health["redis"] == "unreachable" else None

        health = await eventually(unreachable, "/health to say Redis is unreachable")
        assert health["status"] == "degraded" and any("redis" in r for r in health["reasons"]), health
        assert worker.alive()
        own_redis.append(start_redis(port=port))  # a new, empty Redis where the old one was
        restarted = time.monotonic()
        await producing
        states, check = await settle(group, index, expected)

        client = aioredis.Redis.from_url(own_redis[-1].url, decode_responses=True)
        wrong: list[str] = []
        try:
            async def converged() -> bool:
                wrong[:] = await view_mismatches(group, client)
                return not wrong

            try:
                await eventually(converged, "the Redis view to equal the table", within=120, interval=1.0)
            except AssertionError:
                raise AssertionError(f"{len(wrong)} customers differ in Redis, e.g. {wrong[:5]}") from None
            recovery = time.monotonic() - restarted
        finally:
            await client.aclose()
        health = await worker.health()
        assert worker.alive() and health is not None and health["redis"] == "ok", health
        report("test_fault_redis", "Redis stopped mid-stream, restarted empty on the same port",
               faults_injected=1, events_produced=len(events), scored=states.applied,
               dead_lettered=len(index.dlq), outputs_expected=check.expected, outputs_found=check.found,
               duplicates=check.duplicates, recovery_s=recovery, view_customers=len(expected.states))
        assert_nothing_lost(states, check, expected, index)
