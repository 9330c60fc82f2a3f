"""Part 6: time-driven re-scoring when many customers come due at once, and that its cost follows the due count.

A worker with the wall clock and clock control gets `due` new customers (one
purchase now); they all share their next review day, `r` days ahead. A second
table holds the same `due` customers plus `due x (factor - 1)` loaded one day
later, so due one day after them. Jumping the clock (POST /clock) to the first
group's review day makes exactly `due` customers due in both tables; the rate
is re-scored customers per second, from the first re-score seen to the last.
The pure index cost (DeadlineIndex.pop_due) is measured alongside.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any

from bench.context import Context
from bench.data import first_purchases
from bench.measure import Samples, processed, reviewed, total, watch
from bench.produce import produce
from bench.profiling import Profiler
from bench.services import Process, get_json, wait_ready
from scoring.config import ScoringConfig
from scoring.events import MS_PER_DAY, CoreEvent, Kind, to_ms
from scoring.state import NEW_STATE
from scoring.step import step
from streams.partitioning import canonical_partition
from streams.settings import TopicNames
from streams.worker.deadlines import DeadlineIndex
from streams.worker.handler import Handler, Record
from streams.worker.states import StateCache
from streams.worker.store import DictStore

PARTITIONS = 4


def review_offset_days(config: ScoringConfig, now: datetime) -> int:
    """Days from a first purchase now to that customer's next review day."""
    at = to_ms(now)
    state = step(NEW_STATE, CoreEvent(Kind.PURCHASE, "probe", at, 42_5000, "USD"), at, "probe", config).state
    assert state.review_day is not None
    return state.review_day - at // MS_PER_DAY


def review_logic_rate(config: ScoringConfig, now: datetime, customers: int, offset: int) -> float:
    """Customers/s of the worker's per-customer review logic alone (`Handler.review`, then the flush that
    encodes the states and builds the snapshots and profiles): no I/O."""
    topics = TopicNames()
    handler = Handler(config, topics, PARTITIONS, StateCache(DictStore()))
    handler.owned = set(range(PARTITIONS))
    at = now.replace(microsecond=0)
    by_partition: dict[int, list[Record]] = {}
    names: dict[int, list[str]] = {}
    for r in first_purchases("P", customers, at):
        partition = canonical_partition(r.key.decode(), PARTITIONS)
        queue = by_partition.setdefault(partition, [])
        queue.append(Record(topics.purchases, partition, len(queue), r.key, r.value))
        names.setdefault(partition, []).append(r.key.decode())
    for partition, records in by_partition.items():
        effects = handler.on_batch(partition, records, to_ms(at))
        if len(effects.deadlines) != len(records):
            raise RuntimeError(f"review bench: {len(records) - len(effects.deadlines)} first purchases not scored")
    handler.take_flush()
    later = to_ms(at) + offset * MS_PER_DAY
    started = time.perf_counter()
    for partition, due in names.items():
        handler.review(partition, due, later)
    handler.take_flush()
    seconds = time.perf_counter() - started
    if handler.counters.reviewed != customers:
        raise RuntimeError(f"review bench: {handler.counters.reviewed} of {customers} customers reviewed")
    return customers / seconds


def index_cost(sizes: tuple[int, ...], due: int) -> dict[str, Any]:
    """Seconds DeadlineIndex.pop_due takes to pop `due` customers out of indexes of `sizes` entries."""
    out = {}
    for size in sizes:
        index = DeadlineIndex()
        for i in range(size):
            index.set(i % PARTITIONS, f"C{i:09d}", 100 if i % (size // due) == 0 else 101 + i % 365)
        started = time.perf_counter()
        popped = sum(len(index.pop_due(p, 100, limit=size)) for p in range(PARTITIONS))
        seconds = time.perf_counter() - started
        out[str(size)] = {"due": popped, "seconds": seconds, "popped_per_s": popped / seconds}
    return out


def load(ctx: Context, worker: Process, topic: str, prefix: str, count: int, at: datetime) -> None:
    """`count` new customers, one purchase each at `at`, fully processed by `worker`."""
    base = total([worker], processed) or 0
    produce(ctx.services.bootstrap, first_purchases(prefix, count, at), lambda _: topic)
    samples = watch([worker], base + count, poll=0.2, stall=30.0)
    if samples.last < base + count:
        raise RuntimeError(f"{worker.name}: processed {samples.last - base} of {count} customers")


def advance(worker: Process, days: int) -> None:
    if get_json(worker.url("/clock"), body={"advance_days": days}) is None:
        raise RuntimeError(f"{worker.name}: POST /clock failed (is clock_control on?)")


def rescore(ctx: Context, worker: Process, days: int, due: int) -> dict[str, Any]:
    """Jump `days` ahead; watch the reviewed count until `due` more or it stops growing."""
    base = total([worker], reviewed) or 0
    samples = Samples()
    advance(worker, days)
    with Profiler(ctx, worker, f"rescore-{worker.name.split('-', 1)[1]}"):
        watch([worker], base + due, counter=reviewed, poll=0.05, stall=5.0, samples=samples)
    done = samples.last - base
    first = samples.first_growth()
    return {"due": due, "reviewed": done, "reviewed_per_s": samples.rate(),
            "cpu_us_per_customer": samples.cpu_us_per_item(),
            "seconds_first_to_last": samples.done_at() - (first or 0.0), "seconds_from_jump": samples.done_at()}


def table_config(ctx: Context, name: str) -> dict[str, Any]:
    # The worker's own producer settings (part 2's): Tansu's ListOffsets answers wrongly after multi-record
    # batches, but every flush ends each changelog partition with its last record again, alone in its batch,
    # so a recovering worker (part 7 restarts the larger one) still reads the changelog to its end.
    config = ctx.config(name, ctx.topics(name), clock_control=True, clock="wall")
    ctx.create_topics(config)
    return config


def run_small(ctx: Context, offset: int) -> dict[str, Any]:
    """`due` customers, all due."""
    config = table_config(ctx, "due-small")
    worker = ctx.start("due-small", config)
    try:
        wait_ready(worker)
        load(ctx, worker, config["topics"]["purchases"], f"S{ctx.run}-", ctx.sizes.due_customers, datetime.now(UTC))
        return {"table": ctx.sizes.due_customers, **rescore(ctx, worker, offset, ctx.sizes.due_customers)}
    finally:
        worker.stop()


def run_big(ctx: Context, offset: int, before_rescore: Callable[[], None] = lambda: None,
            ) -> tuple[Process, dict[str, Any], dict[str, Any]]:
    """`due` customers due among `due x factor`; returns the worker (still running), its config, figures."""
    s = ctx.sizes
    config = table_config(ctx, "due-big")
    worker = ctx.start("due-big", config)
    ready_s = wait_ready(worker)
    rss_empty = worker.rss()
    topic, now = config["topics"]["purchases"], datetime.now(UTC)
    load(ctx, worker, topic, f"D{ctx.run}-", s.due_customers, now)
    advance(worker, 1)
    load(ctx, worker, topic, f"F{ctx.run}-", s.due_customers * (s.table_factor - 1), now + timedelta(days=1))
    table = s.due_customers * s.table_factor
    rss_loaded = worker.rss()
    before_rescore()
    figures = {"table": table, **rescore(ctx, worker, offset - 1, s.due_customers), "ready_empty_s": ready_s,
               "rss_empty": rss_empty, "rss_loaded": rss_loaded, "rss_per_customer": (rss_loaded - rss_empty) / table}
    return worker, config, figures
