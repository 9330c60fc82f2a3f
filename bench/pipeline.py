"""Part 2: one worker's full path against the client's ceiling and the framework's floor, same topic.

The mixed stream is produced first; each consumer then reads the same topic
from the start, one at a time so they never share the CPU: a plain aiokafka
consumer, a bare Faust agent that only decodes the JSON (`bench.bare_app`,
the worker's Faust settings), the same with a per-customer Table write, and
the tierstream worker (broker -> state -> outputs -> Redis). Rates run from
the first progress seen to the last event; CPU per event (user + system time
of the process over the same window) is the figure least moved by other load.
"""

from __future__ import annotations

import asyncio
import time
from datetime import UTC, datetime
from typing import Any

from aiokafka import AIOKafkaConsumer

from bench.context import PARTITIONS, Context
from bench.data import Record, days_for, mixed_messages, records_of
from bench.measure import watch
from bench.produce import produce
from bench.profiling import Profiler
from bench.services import Process, wait_ready
from scoring.config import ScoringConfig
from scoring.events import to_ms
from streams.partitioning import canonical_partition
from streams.pipeline import Decoded, Pipeline, Result, Source
from streams.settings import TopicNames

SEED = 7


def make_stream(ctx: Context) -> tuple[list[Any], list[Record]]:
    s = ctx.sizes
    messages = mixed_messages(SEED, s.pipeline_customers, days_for(s.pipeline_customers, s.pipeline_events),
                              datetime.now(UTC))
    return messages, records_of(messages)


def logic_rate(records: list[Record], config: ScoringConfig, now: datetime) -> dict[str, Any]:
    """The worker's per-event logic alone (decode, step, outputs, state bytes), no Faust, no I/O: its rate,
    and what it hands to Kafka per event (output messages by topic, their bytes, the state bytes)."""
    pipeline = Pipeline(config, TopicNames(), PARTITIONS)
    table: dict[str, bytes] = {}
    now_ms = to_ms(now)
    results = []
    started = time.perf_counter()
    for offset, r in enumerate(records):
        src = Source(TopicNames().events, canonical_partition(r.key.decode(), PARTITIONS), offset, r.key, r.value)
        decoded = pipeline.decode(src)
        if isinstance(decoded, Decoded):
            result = pipeline.on_event(decoded, table.get(decoded.customer), now_ms, src)
            results.append(result)
            if isinstance(result, Result) and result.state is not None:
                table[decoded.customer] = result.state
    seconds = time.perf_counter() - started
    n = len(records)
    outputs = [out for res in results if isinstance(res, Result) for out in res.outputs]
    by_topic: dict[str, int] = {}
    for out in outputs:
        by_topic[out.topic] = by_topic.get(out.topic, 0) + 1
    writes = [res.state for res in results if isinstance(res, Result) and res.state is not None]
    return {"events_per_s": n / seconds, "outputs_per_event": len(outputs) / n,
            "output_bytes_per_event": sum(len(o.value) for o in outputs) / n,
            "outputs_by_topic": by_topic, "state_writes_per_event": len(writes) / n,
            "state_bytes_per_event": sum(len(w) for w in writes) / n,
            "redis_profiles_per_event": sum(1 for r in results if isinstance(r, Result) and r.profile) / n}


def run_worker_part(ctx: Context, events_topic: str, count: int) -> tuple[Process, dict[str, Any]]:
    """Start the pipeline worker on the preloaded topic; measure its rate and memory. The worker keeps running."""
    topics = ctx.topics("w1", events=events_topic)
    worker = ctx.start("w1", ctx.config("w1", topics))
    ready_s = wait_ready(worker)
    rss_ready = worker.rss()
    with Profiler(ctx, worker, "pipeline-worker"):
        samples = watch([worker], count)
    health = worker.get("/health") or {}
    return worker, {
        "events": count, "processed": samples.last, "complete": samples.last >= count,
        "events_per_s": samples.rate(), "cpu_us_per_event": samples.cpu_us_per_item(), "ready_s": ready_s,
        "rss_ready": rss_ready, "rss_loaded": worker.rss(),
        "customers_with_deadline": health.get("customers_with_deadline"), "topics": topics,
    }


def run_bare_faust(ctx: Context, events_topic: str, count: int, with_table: bool = False) -> dict[str, Any]:
    name = "bare-table" if with_table else "bare"
    config = ctx.config(name, ctx.topics(name, events=events_topic))
    app = ctx.start(name, config, module="bench.bare_app", args=("--table",) if with_table else ())
    try:
        ready_s = wait_ready(app)
        with Profiler(ctx, app, f"{name}-faust"):
            samples = watch([app], count)
        return {"events_per_s": samples.rate(), "cpu_us_per_event": samples.cpu_us_per_item(),
                "processed": samples.last, "complete": samples.last >= count, "ready_s": ready_s}
    finally:
        app.stop()


async def _consume(bootstrap: str, topic: str, count: int, stall: float = 10.0) -> dict[str, Any]:
    consumer = AIOKafkaConsumer(topic, bootstrap_servers=bootstrap, group_id=None, auto_offset_reset="earliest",
                                enable_auto_commit=False)
    await consumer.start()
    try:
        seen, started = 0, time.perf_counter()  # connected: the clock runs from the first fetch
        last = started
        while seen < count and time.perf_counter() - last < stall:
            batch = await consumer.getmany(timeout_ms=500, max_records=2_000)
            got = sum(len(records) for records in batch.values())
            if got:
                last = time.perf_counter()
                seen += got
    finally:
        await consumer.stop()
    return {"events_per_s": seen / (last - started) if last > started else 0.0, "consumed": seen,
            "complete": seen >= count}


def run_pipeline(ctx: Context, config: ScoringConfig) -> tuple[Process, dict[str, Any], list[Any]]:
    """Returns the still-running pipeline worker (for the latency part), the figures, the messages."""
    messages, records = make_stream(ctx)
    logic = logic_rate(records, config, datetime.now(UTC))
    events_topic = f"bench-{ctx.run}-stream"
    base = ctx.config("w1", ctx.topics("w1", events=events_topic))
    ctx.create_topics(base)
    produce_s = produce(ctx.services.bootstrap, records, lambda _: events_topic)
    plain = asyncio.run(_consume(ctx.services.bootstrap, events_topic, len(records)))
    bare = run_bare_faust(ctx, events_topic, len(records))
    bare_table = run_bare_faust(ctx, events_topic, len(records), with_table=True)
    worker, figures = run_worker_part(ctx, events_topic, len(records))
    figures.update(
        customers=len({m.customer_id for m in messages}), produce_events_per_s=len(records) / produce_s,
        events_topic=events_topic, bare_faust=bare, bare_faust_table=bare_table, aiokafka=plain,
        logic_events_per_s=logic["events_per_s"], logic=logic,
        vs_bare_faust_table=_ratio(figures["events_per_s"], bare_table["events_per_s"]),
        vs_bare_faust=_ratio(figures["events_per_s"], bare["events_per_s"]),
        vs_aiokafka=_ratio(figures["events_per_s"], plain["events_per_s"]),
        cpu_vs_bare_faust=_ratio(bare.get("cpu_us_per_event"), figures.get("cpu_us_per_event")),
        cpu_vs_bare_faust_table=_ratio(bare_table.get("cpu_us_per_event"), figures.get("cpu_us_per_event")))
    return worker, figures, messages


def _ratio(a: float | None, b: float | None) -> float | None:
    return a / b if a and b else None
