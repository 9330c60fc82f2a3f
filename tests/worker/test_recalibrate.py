"""The recalibration rounds against a real Redis, without Kafka: workers owning parts of the partitions
converge on the calibration of the whole population; a round missing a partition gives nothing."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator

import pytest
from redis.asyncio import Redis

from scoring import NEW_STATE, CoreEvent, Kind, fold
from scoring.calibrate import CustomerFigures, calibrate
from scoring.calibration import Calibration
from scoring.config import ScoringConfig
from scoring.events import MS_PER_DAY
from scoring.state import CustomerState
from streams.partitioning import canonical_partition
from streams.worker.recalibrate import Figures, Recalibrator, partition_figures

pytestmark = pytest.mark.integration

PARTITIONS = 4
DAY = 20_000
CONFIG = ScoringConfig(tiering="calibrated")
INTERVAL = 60.0
NOW = 1_000 * INTERVAL + 1  # inside round 1000


def population(customers: int = 60) -> dict[str, CustomerState]:
    """Customers with 1-6 purchases of varied amounts in the year to DAY."""
    states = {}
    for i in range(customers):
        events = [CoreEvent(Kind.PURCHASE, f"p{i}-{k}", (DAY - (i * 7 + k * 31) % 360) * MS_PER_DAY,
                            (1_000 + (i * 337 + k * 101) % 50_000) * 100, "", 0) for k in range(1 + i % 6)]
        states[f"c{i}"], _, _ = fold(NEW_STATE, events, (DAY + 1) * MS_PER_DAY - 1, CONFIG)
    return states


def figures_of(states: dict[str, CustomerState]) -> Figures:
    async def figures(partitions: set[int], day: int) -> dict[int, list[CustomerFigures]]:
        return partition_figures(states.items(), partitions, PARTITIONS, day, CONFIG)

    return figures


@pytest.fixture
async def client(redis_url: str) -> AsyncIterator[Redis]:
    redis = Redis.from_url(redis_url)
    try:
        yield redis
    finally:
        await redis.aclose()


def worker(client: Redis, key_prefix: str, run: str) -> Recalibrator:
    return Recalibrator(client, f"{key_prefix}{run}:", PARTITIONS, INTERVAL, CONFIG)


async def steps(workers: list[tuple[Recalibrator, set[int]]], states: dict[str, CustomerState],
                rounds: int = 4) -> list[Calibration | None]:
    """Each worker steps `rounds` times, in turn; what each got last."""
    got: list[Calibration | None] = [None] * len(workers)
    for _ in range(rounds):
        for i, (w, owned) in enumerate(workers):
            got[i] = await w.step(NOW, DAY, owned, figures_of(states)) or got[i]
    return got


async def test_two_workers_converge_on_the_calibration_of_the_whole_population(client: Redis,
                                                                                key_prefix: str) -> None:
    states, run = population(), uuid.uuid4().hex[:8]
    a, b = worker(client, key_prefix, run), worker(client, key_prefix, run)
    got = await steps([(a, {0, 1}), (b, {2, 3})], states)
    whole = calibrate(states.values(), DAY, CONFIG)
    assert got == [whole, whole]
    assert await a.step(NOW, DAY, {0, 1}, figures_of(states)) is None  # one calibration per round


async def test_the_first_summary_of_a_partition_is_the_rounds_on_every_worker(client: Redis,
                                                                                key_prefix: str) -> None:
    """Partition 0 published twice in a round with different customers (it moved during a rebalance, the new
    owner had not recovered it): the first summary counts, its writer gives the histogram too (both phases
    count the same customers), and every worker gets the same calibration."""
    states, run = population(), uuid.uuid4().hex[:8]
    stale, a, b = (worker(client, key_prefix, run) for _ in range(3))
    assert await stale.step(NOW, DAY, {0}, figures_of({})) is None  # partition 0, nobody on it
    owners = [(a, {0, 1}), (b, {2, 3})]
    assert await steps(owners, states) == [None, None]  # partition 0's histogram is the stale worker's to give
    got = [await stale.step(NOW, DAY, set(), figures_of({})), *await steps(owners, states)]  # it moved away
    without_0 = {c: s for c, s in states.items() if canonical_partition(c, PARTITIONS) != 0}
    assert got == [calibrate(without_0.values(), DAY, CONFIG)] * 3
    assert got[0] != calibrate(states.values(), DAY, CONFIG)
    assert got[0] is not None and got[0].customers == len(without_0)


async def test_a_round_missing_a_partition_gives_nothing(client: Redis, key_prefix: str) -> None:
    states, run = population(), uuid.uuid4().hex[:8]
    got = await steps([(worker(client, key_prefix, run), {0, 1, 2})], states)
    assert got == [None]
