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
from bench.measure import Samples, processed, watch
from bench.peers.run import run_peers
from bench.produce import produce
from bench.profiling import Profiler
from bench.services import Process, wait_ready, wait_until
from scoring.config import ScoringConfig
from scoring.events import to_ms
from streams.partitioning import canonical_partition
from streams.settings import TopicNames
from streams.worker.handler import Handler, Outgoing
from streams.worker.handler import Record as HandlerRecord
from streams.worker.states import StateCache
from streams.worker.store import DictStore

SEED = 7


def make_stream(ctx: Context) -> tuple[list[Any], list[Record]]:
    s = ctx.sizes
    messages = mixed_messages(SEED, s.pipeline_customers, days_for(s.pipeline_customers, s.pipeline_events),
                              datetime.now(UTC))
    return messages, records_of(messages)


def logic_rate(records: list[Record], config: ScoringConfig, now: datetime, batch: int = 500,
               flush_every: int = 5_000) -> dict[str, Any]:
    """The worker's per-event logic alone (`Handler.on_batch` on fetched batches of one partition, flushes of
    states, snapshots and profiles), no Faust, no I/O: its rate, CPU per event, and what it hands to Kafka per
    event when the partitions' batches interleave (as live traffic does) and a flush comes every
    `flush_every` events (the worker flushes every second: ~that many events at its rate). A preloaded topic
    is read partition by partition instead, so the running worker coalesces more (its figure is counted on
    the topics, see `produced`)."""
    topics = TopicNames()
    handler = Handler(config, topics, PARTITIONS, StateCache(DictStore()))
    handler.owned = set(range(PARTITIONS))
    by_partition: dict[int, list[HandlerRecord]] = {p: [] for p in range(PARTITIONS)}
    for r in records:
        partition = canonical_partition(r.key.decode(), PARTITIONS)
        by_partition[partition].append(HandlerRecord(topics.events, partition, len(by_partition[partition]),
                                                     r.key, r.value))
    now_ms = to_ms(now)
    outputs: list[Outgoing] = []
    states: list[bytes] = []
    snapshots: list[Outgoing] = []
    handled = since_flush = 0
    started, cpu_started = time.perf_counter(), time.process_time()
    while handled < len(records):
        for partition, queue in by_partition.items():
            chunk = queue[:batch]
            del queue[:batch]
            if not chunk:
                continue
            effects = handler.on_batch(partition, chunk, now_ms)
            outputs += effects.outputs
            handled += len(chunk)
            since_flush += len(chunk)
            if since_flush >= flush_every:
                flush = handler.take_flush()
                snapshots += flush.snapshots
                states += [v for _, _, v in flush.states if v is not None]
                since_flush = 0
    flush = handler.take_flush()
    snapshots += flush.snapshots
    states += [v for _, _, v in flush.states if v is not None]
    seconds, cpu_seconds = time.perf_counter() - started, time.process_time() - cpu_started
    n = len(records)
    by_topic: dict[str, int] = {}
    for out in [*outputs, *snapshots]:
        by_topic[out.topic] = by_topic.get(out.topic, 0) + 1
    records_out = len(outputs) + len(snapshots) + len(states)
    return {"events_per_s": n / seconds, "us_per_event": seconds / n * 1e6, "cpu_us_per_event": cpu_seconds / n * 1e6,
            "outputs_per_event": (len(outputs) + len(snapshots)) / n,
            "output_bytes_per_event": sum(len(o.value) for o in [*outputs, *snapshots]) / n,
            "outputs_by_topic": by_topic, "state_writes_per_event": len(states) / n,
            "state_bytes_per_event": sum(len(s) for s in states) / n,
            "kafka_records_per_event": records_out / n, "batch": batch, "flush_every_events": flush_every}


def run_worker_part(ctx: Context, events_topic: str, count: int) -> tuple[Process, dict[str, Any]]:
    """Start the pipeline worker on the preloaded topic; measure its rate and memory. The worker keeps running."""
    topics = ctx.topics("w1", events=events_topic)
    config = ctx.config("w1", topics)
    worker = ctx.start("w1", config)
    samples = Samples()
    ready_s = wait_ready(worker, on_ready=lambda doc: samples.add(processed(doc), worker.cpu_seconds()))
    rss_ready = worker.rss()
    with Profiler(ctx, worker, "pipeline-worker"):
        watch([worker], count, samples=samples)
    wait_until(lambda: (worker.get("/health") or {}).get("unwritten_customers") == 0, 30, 0.2,
               f"{worker.name}: every state written", worker)  # the last flush: what it produced is complete
    health = worker.get("/health") or {}
    return worker, {
        "events": count, "processed": samples.last, "complete": samples.last >= count,
        "events_per_s": samples.rate(), "cpu_us_per_event": samples.cpu_us_per_item(), "ready_s": ready_s,
        "rss_ready": rss_ready, "rss_loaded": worker.rss(),
        "customers_with_deadline": health.get("customers_with_deadline"), "topics": topics,
        "produced": produced(ctx.services.bootstrap, config, count, int(health.get("forwarded", 0))),
    }


def run_bare_faust(ctx: Context, events_topic: str, count: int, with_table: bool = False) -> dict[str, Any]:
    name = "bare-table" if with_table else "bare"
    config = ctx.config(name, ctx.topics(name, events=events_topic))
    app = ctx.start(name, config, module="bench.bare_app", args=("--table",) if with_table else ())
    try:
        samples = Samples()
        ready_s = wait_ready(app, on_ready=lambda doc: samples.add(processed(doc), app.cpu_seconds()))
        with Profiler(ctx, app, f"{name}-faust"):
            watch([app], count, samples=samples)
        return {"events_per_s": samples.rate(), "cpu_us_per_event": samples.cpu_us_per_item(),
                "processed": samples.last, "complete": samples.last >= count, "ready_s": ready_s}
    finally:
        app.stop()


async def _topic_contents(bootstrap: str, topics: list[str], quiet: float = 2.0) -> dict[str, dict[str, int]]:
    """Records and value bytes in each topic, read from the start until nothing new comes for `quiet` seconds
    (the test broker's end offsets are not reliable after multi-record batches)."""
    consumer = AIOKafkaConsumer(*topics, bootstrap_servers=bootstrap, group_id=None, auto_offset_reset="earliest",
                                enable_auto_commit=False, fetch_max_wait_ms=200)
    await consumer.start()
    out = {topic: {"records": 0, "bytes": 0} for topic in topics}
    try:
        last = time.perf_counter()
        while time.perf_counter() - last < quiet:
            batch = await consumer.getmany(timeout_ms=300, max_records=5_000)
            for tp, records in batch.items():
                figures = out[tp.topic]
                figures["records"] += len(records)
                figures["bytes"] += sum(len(r.value or b"") for r in records)
                last = time.perf_counter()
    finally:
        await consumer.stop()
    return out


def produced(bootstrap: str, config: dict[str, Any], inputs: int, forwarded: int) -> dict[str, Any]:
    """What a worker run produced, counted on its topics: the outputs and the changelog (records and value
    bytes per input event); events forwarded to their canonical partition are taken from its /health."""
    topics = config["topics"]
    names = [topics[name] for name in ("tier_changes", "actions", "alerts", "scores", "dlq")]
    contents = asyncio.run(_topic_contents(bootstrap, [*names, f"{config['app_id']}-customers-changelog"]))
    records = sum(c["records"] for c in contents.values()) + forwarded
    return {"by_topic": contents, "forwarded": forwarded, "records_per_event": records / inputs,
            "bytes_per_event": sum(c["bytes"] for c in contents.values()) / inputs}


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
    peers = run_peers(ctx, events_topic, records) if ctx.peers else {}
    worker, figures = run_worker_part(ctx, events_topic, len(records))
    figures.update(
        customers=len({m.customer_id for m in messages}), produce_events_per_s=len(records) / produce_s,
        events_topic=events_topic, bare_faust=bare, bare_faust_table=bare_table, aiokafka=plain, peers=peers,
        logic_events_per_s=logic["events_per_s"], logic=logic,
        vs_bare_faust_table=_ratio(figures["events_per_s"], bare_table["events_per_s"]),
        vs_bare_faust=_ratio(figures["events_per_s"], bare["events_per_s"]),
        vs_aiokafka=_ratio(figures["events_per_s"], plain["events_per_s"]),
        cpu_vs_bare_faust=_ratio(bare.get("cpu_us_per_event"), figures.get("cpu_us_per_event")),
        cpu_vs_bare_faust_table=_ratio(bare_table.get("cpu_us_per_event"), figures.get("cpu_us_per_event")))
    return worker, figures, messages


def _ratio(a: float | None, b: float | None) -> float | None:
    return a / b if a and b else None
