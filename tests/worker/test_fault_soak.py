"""Soak: steady load at ~80 % of the measured maximum; memory flat, lag back to zero.

One worker (wall clock, sweeps on: as in production) scores a fixed population of customers. First
its maximum rate is measured with a burst (events produced as fast as possible, settled events per
second from /health); then events arrive at 80 % of it for $TIERSTREAM_SOAK_SECONDS (default 30;
set it for a longer soak; production waits while the worker is over BACKLOG_SECONDS behind) while the
worker's resident memory (VmRSS in /proc/<pid>/status) is sampled every second. Then:
- memory is flat: after a warm-up (the first fifth), the median of the last third of the samples is
  within RSS_TOLERANCE of the median of the first third (a leak grows steadily; allocator noise does not);
- after the load stops the consumer lag returns to zero (/metrics `tierstream_consumer_lag`) and
  every produced event has been settled (/health: scored, else counted as a duplicate or dead-lettered;
  none is dead-lettered, and a duplicate, which only a producer retry or a Bloom-filter false positive
  makes here, is rare: this id sequence has one, `soak-180890`, a false positive of its customer's filter
  after ~180 ids, which `scoring.dedupe.Memory` alone reproduces).

A customer's state grows by design until it reaches its bound: every event id is kept exactly up to
`dedupe_exact_ids` (2,048 by default, ~100 bytes each in memory) before a fixed-size Bloom filter takes
over. Over the default a 30 s soak never reaches it, so memory would grow with every event without any
leak (it did: +14 MiB in one CI run). The soak therefore sets `dedupe_exact_ids` to EXACT_IDS and its burst
brings every customer past that bound (about BURST / CUSTOMERS events each) before the samples start:
from then on a flat worker stays flat, and a leak of ~100 bytes per event fails the test (checked by
hand: +18 MiB).
"""

from __future__ import annotations

import asyncio
import json
import os
import random
import statistics
import time
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from tests.kits.faults import metrics_lag, report, rss_kib
from tests.kits.stream import StartStream, Upstream, complaint, enquiry, eventually, purchase, refund

pytestmark = [pytest.mark.integration, pytest.mark.slow]

SOAK_SECONDS = float(os.environ.get("TIERSTREAM_SOAK_SECONDS") or 30)
CUSTOMERS = 1000
EXACT_IDS = 8  # ids kept exactly per customer (then its Bloom filter): the state's bound is reached early
BURST = 24 * CUSTOMERS  # events of the max-rate measurement; brings every customer's state to its bound
LOAD_SHARE = 0.8
RSS_TOLERANCE = 0.10  # relative growth allowed between the first and the last third
RSS_SLACK_KIB = 12 * 1024  # and in absolute terms, for a small worker
BACKLOG_SECONDS = 1.0  # production waits while the worker is more than this many seconds of load behind


class Events:
    """Random typed events for a fixed population, timed just before now (wall clock)."""

    def __init__(self, seed: int, prefix: str) -> None:
        self.rng = random.Random(seed)
        self.customers = [f"{prefix}-{i:05d}" for i in range(CUSTOMERS)]
        self.serial = 0

    def next(self) -> dict[str, Any]:
        self.serial += 1
        customer = self.rng.choice(self.customers)
        at = datetime.now(UTC) - timedelta(seconds=self.rng.uniform(1, 3600))
        event_id = f"soak-{self.serial}"
        roll = self.rng.random()
        if roll < 0.7:
            return purchase(customer, f"{self.rng.lognormvariate(3.5, 0.6):.2f}", at, event_id)
        if roll < 0.8:
            return refund(customer, f"{self.rng.uniform(1, 40):.2f}", at, event_id)
        if roll < 0.88:
            return complaint(customer, self.rng.randint(1, 5), at, event_id)
        return enquiry(customer, at, event_id)


async def test_memory_is_flat_and_lag_returns_to_zero(start_stream: StartStream, upstream: Upstream) -> None:
    async with start_stream("soak", scoring={"dedupe_exact_ids": EXACT_IDS}) as group:
        worker, topic = group.worker, group.topics.events
        events = Events(7, f"soak-{group.settings.app_id[-8:]}")
        produced = 0

        async def settled() -> int:
            """Events scored, or counted as a duplicate or a dead letter."""
            health = await worker.health() or {}
            return sum(int(health.get(k, 0)) for k in ("events_scored", "duplicates", "dead_lettered"))

        # 1. the maximum rate: a burst, timed from the first settled event to the last
        await upstream.send_all(topic, [events.next() for _ in range(BURST)])
        produced += BURST
        await eventually(lambda: _at_least(settled, 1), "the first settled event", within=60, interval=0.05)
        started = time.monotonic()
        await eventually(lambda: _at_least(settled, produced), "the burst to be settled", within=300, interval=0.1)
        max_rate = (BURST - 1) / max(time.monotonic() - started, 1e-3)
        rate = LOAD_SHARE * max_rate

        # 2. steady load at `rate` for SOAK_SECONDS, RSS sampled every second
        load = SteadyLoad(rate)
        produced += await load.run(worker, upstream, topic, events, produced, settled)
        samples, backlogs, held = load.samples, load.backlogs, load.held
        load_stopped = time.monotonic()

        # 3. lag back to zero, every event settled
        seen: dict[str, Any] = {}

        async def drained() -> bool:
            seen.update(settled=await settled(), lag=await metrics_lag(worker), health=await worker.health())
            return bool(seen["settled"] >= produced and seen["lag"] == 0)

        try:
            await eventually(drained, f"lag 0 and {produced} events settled", within=300, interval=0.5)
        except AssertionError as exc:
            raise AssertionError(f"{exc} (last seen: {seen}; held {held:.1f}s; backlog at each sample: "
                                 f"{backlogs}; worker log: {worker.log_tail()})") from None
        drain = time.monotonic() - load_stopped

        warm = samples[len(samples) // 5:]
        third = max(1, len(warm) // 3)
        first, last = statistics.median(warm[:third]), statistics.median(warm[-third:])
        health = await worker.health() or {}
        dead, duplicates = int(health.get("dead_lettered", -1)), int(health.get("duplicates", -1))
        report("test_fault_soak", f"soak {SOAK_SECONDS:.0f}s at {LOAD_SHARE:.0%} of {max_rate:.0f} events/s",
               faults_injected=0, events_produced=produced, scored=int(health.get("events_scored", -1)),
               dead_lettered=dead, outputs_expected=None, outputs_found=None, duplicates=None, recovery_s=drain,
               input_duplicates=duplicates,
               max_rate=round(max_rate), rate=round(rate), rss_first_mib=round(first / 1024, 1),
               rss_last_mib=round(last / 1024, 1), rss_samples=len(samples), held_s=round(held, 1),
               backlog_max=max(backlogs, default=0))
        print(f"{produced:,} produced, {duplicates} duplicates, {dead} dead-lettered; "
              f"max {max_rate:.0f}/s, load {rate:.0f}/s (held {held:.1f}s), RSS {first / 1024:.1f} -> "
              f"{last / 1024:.1f} MiB, drained in {drain:.1f}s; {[round(s / 1024) for s in samples]}; "
              f"backlog {backlogs}", flush=True)
        assert dead == 0, f"{dead} events dead-lettered (every event is valid): {health}"
        assert 0 <= duplicates <= max(3, produced // 10_000), f"{duplicates} duplicates among unique ids: {health}"
        assert last - first <= max(RSS_TOLERANCE * first, RSS_SLACK_KIB), (
            f"RSS grew from {first / 1024:.1f} to {last / 1024:.1f} MiB: {[round(s / 1024) for s in samples]}; "
            f"backlog (events produced, not yet settled) at each sample: {backlogs}")


class SteadyLoad:
    """Events at `rate` for SOAK_SECONDS, the worker's RSS and backlog sampled every second. When the worker
    falls behind (a box shared with other tests is slower than during the burst), production waits: a backlog
    held in the consumer's buffers grows RSS without any leak, and is not what the soak measures."""

    def __init__(self, rate: float) -> None:
        self.rate = rate
        self.samples: list[int] = []  # RSS, KiB
        self.backlogs: list[int] = []  # events produced and not yet settled
        self.held = 0.0  # seconds production waited

    async def run(self, worker: Any, upstream: Upstream, topic: str, events: Events, produced: int,
                  settled: Callable[[], Awaitable[int]]) -> int:
        """Produce for SOAK_SECONDS; how many events it produced (`produced` before it)."""
        started = ticked = next_sample = time.monotonic()
        offered, sent, limit = 0.0, 0, max(100, int(self.rate * BACKLOG_SECONDS))
        while (now := time.monotonic()) - started < SOAK_SECONDS:
            backlog = produced + sent - await settled()
            if backlog > limit:
                self.held += now - ticked
            else:
                offered += (now - ticked) * self.rate
            ticked = now
            if (due := int(offered) - sent) > 0:
                futures = [await upstream.producer.send(topic, json.dumps(e).encode(), key=e["customer_id"].encode())
                           for e in (events.next() for _ in range(due))]
                sent += due
                await asyncio.gather(*futures)
            if now >= next_sample:
                assert worker.alive(), worker.log_tail()
                self.samples.append(rss_kib(worker.pid))
                self.backlogs.append(backlog)
                next_sample += 1.0
            await asyncio.sleep(0.1)
        return sent


async def _at_least(probe: Any, target: int) -> bool:
    return bool(await probe() >= target)
