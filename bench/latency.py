"""Part 3: latency from an event's produce to its TierChanged on the output topic, at offered loads.

The running pipeline worker gets a paced stream at 25, 50 and 75 % of the
rate it reached in part 2: the generator's mixed events for its existing
customers, with every `PROBE_EVERY`-th event the first purchase of a brand-new
customer, which always causes a TierChanged ("new"). Latency is the time from
handing the probe to the producer to reading its TierChanged back, both in this
process (one clock); it includes the worker's producer linger.

Then the floor: the same 50 % load (the same mix, the same probes) through `bench.echo`, a process on topics
of its own that forwards every input record to its output with the worker's fetch wait, producer linger and
batch size and does nothing else; its p99 is what the broker and the clients add on this box before any
scoring (the worker, idle meanwhile, keeps its own topics).
"""

from __future__ import annotations

import asyncio
import time
from datetime import UTC, datetime
from typing import Any

from aiokafka import AIOKafkaConsumer

from bench.context import Context
from bench.data import Record, days_for, first_purchase, mixed_messages, records_of
from bench.measure import percentiles, processed, total, wait_idle
from bench.produce import by_type, produce_paced, producer
from bench.profiling import Profiler
from bench.services import Process, wait_ready
from streams.kafka import ensure_topics
from streams.settings import Settings

LOADS = (0.25, 0.50, 0.75)
FLOOR_LOAD = 0.50  # the load also sent through bench.echo
PROBE_EVERY = 4
SEED = 8  # another seed than part 2's: new event ids for the same customers


def paced_stream(background: list[Record], count: int, tag: str) -> tuple[list[Record], set[bytes]]:
    """`count` records: background events with every PROBE_EVERY-th one a new customer's first purchase."""
    now = datetime.now(UTC)
    out, probes = [], set()
    for i in range(count):
        if i % PROBE_EVERY == 0 or not background:
            probe = first_purchase(f"L{tag}-{i:07d}", now)
            probes.add(probe.key)
            out.append(probe)
        else:
            out.append(background.pop())
    return out, probes


class TierChanges:
    """Reads the tier-changes topic from its end and timestamps each probe's first TierChanged."""

    def __init__(self, bootstrap: str, topic: str) -> None:
        self.consumer = AIOKafkaConsumer(topic, bootstrap_servers=bootstrap, group_id=None,
                                         auto_offset_reset="latest", enable_auto_commit=False, fetch_max_wait_ms=5)
        self.seen: dict[bytes, float] = {}
        self._task: asyncio.Task[None] | None = None

    async def start(self) -> None:
        await self.consumer.start()
        await self.consumer.seek_to_end()
        self._task = asyncio.create_task(self._run())

    async def _run(self) -> None:
        while True:
            batch = await self.consumer.getmany(timeout_ms=50)
            now = time.perf_counter()
            for records in batch.values():
                for record in records:
                    if record.key is not None:
                        self.seen.setdefault(record.key, now)

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
        await self.consumer.stop()


async def one_load(ctx: Context, topics: dict[str, str], rate: float, records: list[Record], probes: set[bytes],
                   changes: TierChanges) -> dict[str, Any]:
    sent: dict[bytes, float] = {}
    client = producer(ctx.services.bootstrap, linger_ms=0)
    await client.start()
    try:
        def on_sent(record: Record, at: float) -> None:
            if record.key in probes:
                sent.setdefault(record.key, at)

        achieved = await produce_paced(client, records, by_type(topics), rate, on_sent)
    finally:
        await client.stop()
    deadline = time.perf_counter() + 15
    while time.perf_counter() < deadline and not probes <= changes.seen.keys():  # noqa: ASYNC110 - polls a dict
        await asyncio.sleep(0.05)
    latencies = [(changes.seen[k] - t) * 1000 for k, t in sent.items() if k in changes.seen]
    return {"offered_per_s": rate, "achieved_per_s": achieved, "probes": len(probes),
            "answered": len(latencies), **percentiles(latencies), "max": max(latencies, default=float("nan"))}


async def _run_loads(ctx: Context, worker: Process, topics: dict[str, str], max_rate: float) -> dict[str, Any]:
    s = ctx.sizes
    counts = [max(8, int(max_rate * load * s.latency_seconds)) for load in LOADS]
    customers = s.pipeline_customers
    messages = mixed_messages(SEED, customers, days_for(customers, sum(counts) * 2), datetime.now(UTC))
    background = records_of(messages)[::-1]
    changes = TierChanges(ctx.services.bootstrap, topics["tier_changes"])
    await changes.start()
    out: dict[str, Any] = {}
    try:
        for load, count in zip(LOADS, counts, strict=True):
            records, probes = paced_stream(background, count, f"{ctx.run}-{int(load * 100)}")
            with Profiler(ctx, worker, f"latency-{int(load * 100)}"):
                out[f"{int(load * 100)}%"] = await measured_load(ctx, worker, topics, max_rate * load, records,
                                                                 probes, changes)
    finally:
        await changes.stop()
    out["floor"] = await _floor(ctx, max_rate * FLOOR_LOAD, counts[LOADS.index(FLOOR_LOAD)], background)
    return out


async def measured_load(ctx: Context, proc: Process, topics: dict[str, str], rate: float, records: list[Record],
                        probes: set[bytes], changes: TierChanges) -> dict[str, Any]:
    """`one_load`'s figures and the CPU per event `proc` spent on the load (live traffic: small fetches,
    little to coalesce per flush), counted until it has handled every record of it."""
    base, cpu = total([proc], processed) or 0, proc.cpu_seconds()
    figures = await one_load(ctx, topics, rate, records, probes, changes)
    done = await asyncio.to_thread(wait_idle, proc, base + len(records))
    figures["cpu_us_per_event"] = (proc.cpu_seconds() - cpu) / max(1, done - base) * 1e6
    return figures


async def _floor(ctx: Context, rate: float, count: int, background: list[Record]) -> dict[str, Any]:
    """The load's latency through `bench.echo` (see the module docstring), on topics of its own."""
    topics = ctx.topics("echo")
    config = ctx.config("echo", topics)
    await ensure_topics(Settings(**config))
    echo = ctx.start("echo", config, module="bench.echo")
    changes = TierChanges(ctx.services.bootstrap, topics["tier_changes"])
    try:
        await asyncio.to_thread(wait_ready, echo)
        await changes.start()
        records, probes = paced_stream(background, count, f"{ctx.run}-floor")
        figures = await measured_load(ctx, echo, topics, rate, records, probes, changes)
        return {**figures, "load": f"{int(FLOOR_LOAD * 100)}%"}
    finally:
        await changes.stop()
        echo.stop()


def run_latency(ctx: Context, worker: Process, topics: dict[str, str], max_rate: float) -> dict[str, Any]:
    if max_rate <= 0:
        raise RuntimeError("latency: the pipeline part measured no rate to offer a share of")
    return asyncio.run(_run_loads(ctx, worker, topics, max_rate))
