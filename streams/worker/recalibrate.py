"""Scheduled recalibration from the live population of every partition, through Redis.

A worker sees only its partitions; the calibration must be of all of them, the same on every worker.
Time is cut into rounds of `recalibrate_interval_seconds` (round = floor(unix time / interval)). On its
timer, each worker with recalibration on takes part in the current round (keys under
`{redis_prefix}recal:{round}:`, expiring after a few rounds):

1. `day`: the population's as-of day, set once (SET NX) by the first worker to reach the round (its wall
   clock day, or with `clock: event` its event watermark's day); every worker uses that one.
2. `a`: a hash partition -> phase (a) summary (`scoring.recalibrate.summary_doc`) of the customers the
   partition's owner holds, written with HSETNX: the first summary of a partition is the round's.
3. once `a` holds every partition: everyone merges it into the same cut tables; `b`: each partition's
   phase (b) histogram under those tables, written by the worker whose summary of it is the round's (so
   both phases count the same customers, even when the partition moved meanwhile), HSETNX again.
4. once `b` holds every partition: everyone merges it and makes the calibration
   (`scoring.calibrate.calibration_of`): the same documents give the same artefact and content version
   on every worker. Each worker applies it at its customers' next evaluations, as a new calibration file.

A round that does not complete (a partition unowned during a rebalance, Redis away) is left; the next
round starts over. Computing a partition's figures reads its owner's states once per round.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable, Iterable
from dataclasses import dataclass, field

from redis.asyncio import Redis

from scoring.calibrate import CustomerFigures, calibration_of, customer_figures, cut_tables
from scoring.calibration import Calibration
from scoring.config import ScoringConfig
from scoring.errors import CalibrationError
from scoring.recalibrate import histogram_doc, merged_histogram, merged_summary, round_of, summary_doc
from scoring.state import CustomerState
from streams.partitioning import canonical_partition
from streams.settings import Settings

log = logging.getLogger("tierstream.worker")
ROUNDS_KEPT = 4  # a round's keys expire after this many intervals

Figures = Callable[[set[int], int], Awaitable[dict[int, list[CustomerFigures]]]]
"""(partitions, as-of day) -> each partition's customers' figures as of that day (read in chunks, yielding to
the event loop between them: a worker keeps scoring while it reads a million states)."""


def partition_figures(customers: Iterable[tuple[str, CustomerState | None]], partitions: set[int], count: int,
                      day: int, config: ScoringConfig) -> dict[int, list[CustomerFigures]]:
    """The figures as of `day` of the customers on `partitions` (of `count`), by partition."""
    out: dict[int, list[CustomerFigures]] = {p: [] for p in partitions}
    for customer, state in customers:
        partition = canonical_partition(customer, count)
        if partition in out and state is not None:
            out[partition].append(customer_figures(state, day, config))
    return out


def recalibrator(settings: Settings, redis: Redis) -> Recalibrator | None:
    """The worker's part in the rounds, or None when recalibration is off (interval 0, or absolute tiering)."""
    interval = settings.recalibrate_interval_seconds
    if not interval or settings.scoring.tiering != "calibrated":
        return None
    return Recalibrator(redis, settings.redis_prefix, settings.partitions, interval, settings.scoring)


@dataclass
class Recalibrator:
    """One worker's part in the rounds (see the module doc); `step` moves it on, the app applies what it gives."""

    redis: Redis
    prefix: str
    partitions: int
    interval: float
    config: ScoringConfig  # calibrated tiering, without a calibration
    round: int = -1
    done: int = -1  # the last round that gave a calibration (or failed for good)
    day: int | None = None
    figures: dict[int, list[CustomerFigures]] = field(default_factory=dict)
    summaries: dict[int, str] = field(default_factory=dict)  # the phase (a) documents this worker published
    published_b: set[int] = field(default_factory=set)

    @property
    def poll_seconds(self) -> float:
        """How often a worker moves its part on: a few times per round (a round has two exchanges)."""
        return min(1.0, self.interval / 4)

    def key(self, part: str) -> str:
        return f"{self.prefix}recal:{self.round}:{part}"

    async def step(self, now_seconds: float, today: int | None, owned: set[int],
                   figures_of: Figures) -> Calibration | None:
        """Take part in the current round; the round's calibration once every partition's phases are in."""
        current = round_of(now_seconds, self.interval)
        if current == self.done:
            return None
        if current != self.round:
            self.round, self.day, self.figures = current, None, {}
            self.summaries, self.published_b = {}, set()
        ttl = max(1, int(self.interval * ROUNDS_KEPT))
        if self.day is None:
            if today is None:
                return None
            await self.redis.set(self.key("day"), today, nx=True, ex=ttl)
            self.day = int(await self.redis.get(self.key("day")) or today)
        if missing := owned - set(self.figures):
            self.figures.update(await figures_of(missing, self.day))
        mine = {p: summary_doc(self.figures[p]) for p in owned - set(self.summaries)}
        await self._publish("a", mine, ttl)
        self.summaries.update(mine)
        stored = {int(p): _text(doc) for p, doc in (await self.redis.hgetall(self.key("a"))).items()}
        if len(stored) < self.partitions:
            return None
        try:
            summary = merged_summary(stored)
            tables = cut_tables(summary)
        except CalibrationError as exc:
            self.done = current
            log.warning("recalibration round %d: %s; calibration kept", current, exc)
            return None
        # a partition's histogram comes from the worker whose summary of it is the round's (same customers)
        won = {p for p, doc in self.summaries.items() if stored.get(p) == doc} - self.published_b
        await self._publish("b", {p: histogram_doc(self.figures[p], tables, self.config.weights) for p in won}, ttl)
        self.published_b |= won
        histograms = await self.redis.hgetall(self.key("b"))
        if len(histograms) < self.partitions:
            return None
        self.done = current
        try:
            histogram = merged_histogram({int(p): doc for p, doc in histograms.items()})
            return calibration_of(summary, tables, histogram, self.day, self.config)
        except CalibrationError as exc:
            log.warning("recalibration round %d: %s; calibration kept", current, exc)
            return None

    async def _publish(self, part: str, docs: dict[int, str], ttl: int) -> None:
        """Each partition's document, unless one is there already (the first written is the round's)."""
        if not docs:
            return
        key = self.key(part)
        async with self.redis.pipeline(transaction=False) as pipe:
            for p, doc in sorted(docs.items()):
                pipe.hsetnx(key, str(p), doc)
            pipe.expire(key, ttl)
            await pipe.execute()


def _text(value: bytes | str) -> str:
    return value.decode() if isinstance(value, bytes) else value
