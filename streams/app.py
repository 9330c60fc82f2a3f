"""The Faust app: topics, the customers table, the scoring agent, the review timer.

One agent consumes the four typed input topics, the mixed `customer-events` topic and the
review-tick topic, so every table write happens inside stream iteration on
the customer's own (canonical) partition. Business rules live in `scoring`;
the agent decodes, calls the pipeline, and carries out the effects.
"""

from __future__ import annotations

import asyncio
import json
import logging
import time
from typing import Any

import faust
from faust.app.router import Router
from faust.transport.drivers import aiokafka as faust_aiokafka
from redis.asyncio import Redis
from redis.exceptions import RedisError

from scoring.codec import peek_review_day
from scoring.decisions import ActionRequest
from scoring.errors import ConfigError
from scoring.events import MS_PER_DAY, to_ms
from streams.clock import Clock
from streams.deadlines import DeadlineIndex
from streams.faust_options import faust_options
from streams.kafka import table_changelog
from streams.metrics import WorkerMetrics
from streams.modelfile import ModelWatcher
from streams.partitioning import canonical_partition
from streams.pipeline import Decoded, Outgoing, Pipeline, Result, Source
from streams.redis_store import RedisView
from streams.settings import Settings

log = logging.getLogger("tierstream.worker")
TICK_CHUNK = 500


def raw_schema(key_type: type) -> faust.Schema:  # type: ignore[type-arg]
    """Keys as `key_type` (UTF-8), values as the exact bytes on the wire."""
    return faust.Schema(key_type=key_type, value_type=bytes, key_serializer="raw", value_serializer="raw")


class CanonicalRouter(Router):
    """Routes a table key to the worker owning its canonical partition (murmur2 of the id's UTF-8).

    Faust's router hashes the key as the changelog serializes it (JSON: `"id"`), which picks
    another partition, so a query on a non-owner went to the wrong worker and answered 404.
    """

    @classmethod
    def _get_serialized_key(cls, table: Any, key: Any) -> bytes:
        if isinstance(key, str):
            return key.encode()
        return super()._get_serialized_key(table, key)


class RebalanceSafeConsumer(faust_aiokafka.Consumer):
    """Faust's consumer, made to deliver each input partition in order, without gaps, across rebalances.

    Two ways Faust lost input messages when a worker was killed and the group rebalanced (seen in
    tests/streams/test_fault_crash.py, so the table and the outputs missed events for good):
    - messages of the input partitions were delivered while the table was still being recovered, and
      the seek to the committed offsets at the end of recovery left records fetched before it in
      flight; the next one delivered jumped ahead, Faust took the jump for a compacted gap and
      committed over the messages in between, which nobody had processed;
    - the stream skips messages fetched before a rebalance (they are fetched again after the seek)
      but acked them, so a commit could move past them.
    Here input records (not changelog records) are delivered only outside rebalances and only in
    offset order from the committed offset: a record beyond the next expected offset makes the
    consumer seek back to it. Acks of skipped messages are refused. At least once, in order; scoring
    is idempotent by event id.
    """

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._next_offset: dict[Any, int | None] = {}  # input tp -> next offset to deliver (None: any)
        self._reseeking: set[Any] = set()
        self._held_back: dict[Any, int] = {}  # input tp -> first offset not delivered during a rebalance
        self._first_delivered: dict[Any, int] = {}  # input tp -> first offset delivered since the last seek

    async def seek_to_committed(self) -> Any:
        offsets = await super().seek_to_committed()
        for tp, committed in offsets.items():
            first = self._first_delivered.pop(tp, None)
            if committed and committed > 0:
                self._next_offset[tp] = committed
            else:  # nothing committed (aiokafka did not seek): from the first record delivered or held back
                starts = [o for o in (first, self._held_back.get(tp)) if o is not None]
                self._next_offset[tp] = None
                if starts:
                    await self.seek(tp, min(starts))
            self._reseeking.discard(tp)
        return offsets

    async def seek(self, partition: Any, offset: int) -> None:
        await super().seek(partition, offset)
        self._next_offset[partition] = offset

    async def getmany(self, timeout: float) -> Any:  # noqa: ASYNC109 - Faust's signature
        if self._held_back and not self.app.rebalancing:
            await self._fetch_held_back_again()
        async for tp, message in super().getmany(timeout):
            if self._is_changelog_tp(tp):
                yield tp, message
            elif self.app.rebalancing:  # held back; fetched again once the rebalance is over
                self._held_back.setdefault(tp, message.offset)
            elif await self._in_order(tp, message.offset):
                self._first_delivered.setdefault(tp, message.offset)
                yield tp, message

    async def _fetch_held_back_again(self) -> None:
        """Seek the partitions whose records were held back during a rebalance to their next offset."""
        held, self._held_back = self._held_back, {}
        assigned = self.assignment()
        for tp, first in held.items():
            if tp in assigned:
                start = self._next_offset.get(tp)
                await self.seek(tp, first if start is None else start)

    async def _in_order(self, tp: Any, offset: int) -> bool:
        expected = self._next_offset.get(tp)
        if expected is None or offset == expected:
            self._next_offset[tp] = offset + 1
            self._reseeking.discard(tp)
            return True
        if offset > expected and tp not in self._reseeking:  # a jump: fetch again from the next expected one
            log.warning("input %s jumped from offset %d to %d: seeking back", tp, expected, offset)
            self._reseeking.add(tp)
            await self.seek(tp, expected)
        return False  # already delivered (offset < expected), or after a jump

    def ack(self, message: Any) -> bool:
        app = self.app
        if message.generation_id != app.consumer_generation_id or not app.flow_control.is_active():
            message.acked = True  # done with, so nothing waits for it; but its offset is not committable
            self._unacked_messages.discard(message)
            return False
        return bool(super().ack(message))


class Tierstream:
    """A worker's app and the state its agent shares with its timer and web views."""

    def __init__(self, settings: Settings, clock: Clock | None = None, redis: Redis | None = None) -> None:
        self.settings = settings
        self.clock = clock or Clock(settings.clock, settings.clock_speed)
        self.models = ModelWatcher(settings.model_path) if settings.model_path else None
        model = self.models.poll() if self.models else None
        self.pipeline = Pipeline(settings.scoring, settings.topics, settings.partitions, model)
        self.deadlines = DeadlineIndex()
        self.metrics = WorkerMetrics()
        self.redis_client = redis or Redis.from_url(
            settings.redis_url.get_secret_value(),
            password=settings.redis_password.get_secret_value() if settings.redis_password else None,
            socket_timeout=2.0, socket_connect_timeout=2.0)
        self.redis = RedisView(self.redis_client, settings.redis_prefix, settings.scoring.tier_names)
        self.app = faust.App(**faust_options(settings), Router=CanonicalRouter)
        self.app.transport.Consumer = RebalanceSafeConsumer  # type: ignore[misc]  # before the consumer exists
        # The changelog topic is declared here with its own raw schema: left to Faust, it is made
        # from the table's key_type (str -> JSON) and that JSON serializer is written into the
        # shared schema, so recovery decoded the raw keys as JSON, failed on every record and
        # never finished (a restarted worker stayed stuck in recovery).
        changelog = self.app.topic(
            table_changelog(settings), schema=raw_schema(str), partitions=settings.partitions, internal=True,
            compacting=True, deleting=False,  # compact only: a customer's latest state never expires
            acks=False, allow_empty=True, maxsize=131_072)
        self.table = self.app.Table(
            "customers", schema=raw_schema(str), key_type=str, value_type=bytes, partitions=settings.partitions,
            changelog_topic=changelog)
        # Faust picks a table's serializers from key_type/value_type (str -> JSON): keys go raw
        # (UTF-8), so the changelog, RocksDB and key routing all see the plain customer id.
        self.table.key_serializer = "raw"  # type: ignore[attr-defined]
        t = settings.topics
        self.source = self.app.topic(*t.inputs().values(), t.events, t.reviews, schema=raw_schema(bytes),
                                     partitions=settings.partitions)
        self.out = {name: self.app.topic(name, schema=raw_schema(str), partitions=settings.partitions)
                    for name in [*t.outputs(), t.events, t.reviews]}
        self._stop = asyncio.Event()
        self.app.agent(self.source, name="score")(self.score)
        self.app.timer(settings.review_interval_seconds)(self.sweep)
        self.app.task(self.redis_writer)
        if self.models is not None:
            self.app.timer(settings.model_poll_seconds)(self.reload_model)
        self.table.on_recover(self.rebuild_deadlines)

    # -- the agent --------------------------------------------------------------
    async def score(self, stream: faust.StreamT[bytes]) -> None:
        """Decode, step, and carry out the effects of every input event and review tick."""
        async for event in stream.events():
            started = time.perf_counter()
            m = event.message
            src = Source(m.topic, m.partition, m.offset, m.key, m.value or b"")
            try:
                await self.handle(src)
            except Exception as exc:  # a bug, or an input the core cannot take: dead-letter it, keep going
                log.exception("internal error on %s[%d]@%d", src.topic, src.partition, src.offset)
                reason = f"internal error: {type(exc).__name__}: {exc}"
                await self.send(self.pipeline.dead_letter(src, reason, "internal"))
            self.metrics.observe_event(src.topic, time.perf_counter() - started)

    async def handle(self, src: Source) -> None:
        """One message: a review tick, or an input event (scored, forwarded or dead-lettered)."""
        if src.topic == self.settings.topics.reviews:
            await self.on_tick(src)
            return
        decoded = self.pipeline.decode(src)
        if isinstance(decoded, Decoded):
            now = self.clock.event_now_ms(to_ms(decoded.message.occurred_at), src.partition)
            outcome = self.pipeline.on_event(decoded, self.table.get(decoded.customer), now, src)
            await self.carry_out(outcome, src.partition)
        else:
            await self.send(decoded)

    async def on_tick(self, src: Source) -> None:
        try:
            tick = json.loads(src.value)
            customers, now_ms = list(tick["customers"]), int(tick["now_ms"])
        except (ValueError, KeyError, TypeError):
            await self.send(self.pipeline.dead_letter(src, "malformed review tick", "decode"))
            return
        for customer in customers:
            result = self.pipeline.on_review(str(customer), self.table.get(str(customer)), now_ms)
            if result is not None:
                await self.carry_out(result, src.partition)

    async def carry_out(self, outcome: Result | Outgoing, partition: int) -> None:
        """Write the state, send the outputs, queue the Redis profile, set the deadline."""
        if isinstance(outcome, Outgoing):
            await self.send(outcome)
            return
        if outcome.state is not None:
            self.table[outcome.customer] = outcome.state
        for out in outcome.outputs:
            await self.send(await self.capped(out))
        if outcome.profile is not None:
            self.redis.put(outcome.customer, outcome.profile)
        self.deadlines.set(partition, outcome.customer, outcome.due_day)

    async def capped(self, out: Outgoing) -> Outgoing:
        """Enforce a configured frequency cap on an action, atomically in Redis."""
        decision = out.decision
        caps = self.settings.scoring.frequency_caps
        if not isinstance(decision, ActionRequest) or decision.action_type not in caps:
            return out
        if decision.roi_decision == "skipped":
            return out
        try:
            allowed, why = await self.redis.check_cap(
                out.key or "", decision.action_type, decision.id, decision.at_ms / 1000,
                caps[decision.action_type])
        except (RedisError, OSError):
            allowed, why = False, "frequency cap could not be checked (Redis unavailable)"
        return out if allowed else self.pipeline.capped(out, decision, why)

    async def send(self, out: Outgoing) -> None:
        self.metrics.observe_output(out)
        # force=True: send now, not at commit; Faust flushes the producer before it commits offsets.
        await self.out[out.topic].send(key=out.key, value=out.value, partition=out.partition, force=True)

    # -- time-driven re-scoring ----------------------------------------------------
    def active_partitions(self) -> list[int]:
        first_input = self.settings.topics.purchases
        return sorted(tp.partition for tp in self.app.assignor.assigned_actives() if tp.topic == first_input)

    async def sweep(self) -> None:
        """Send review ticks for the customers due on each owned partition."""
        for partition in self.active_partitions():
            now = self.clock.sweep_now_ms(partition)
            if now is None:
                continue
            due = self.deadlines.pop_due(partition, now // MS_PER_DAY, limit=self.settings.sweep_limit)
            self.metrics.observe_sweep(partition, len(due))
            for start in range(0, len(due), TICK_CHUNK):
                tick = {"customers": due[start:start + TICK_CHUNK], "now_ms": now}
                await self.out[self.settings.topics.reviews].send(
                    key=f"review-{partition}", value=json.dumps(tick).encode(), partition=partition)

    async def rebuild_deadlines(self) -> None:
        """After a rebalance: index the owned partitions' customers by their cached review day."""
        active = set(self.active_partitions())
        entries: dict[int, list[tuple[str, int | None]]] = {p: [] for p in active}
        n = self.settings.partitions
        for customer, raw in self.table.data.items():
            partition = canonical_partition(customer, n)
            if partition in entries:
                entries[partition].append((customer, peek_review_day(raw)))
        for partition in self.deadlines.partitions():
            if partition not in active:
                self.deadlines.drop(partition)
        total = sum(self.deadlines.rebuild(p, e) for p, e in entries.items())
        log.info("deadline index rebuilt: %d partitions, %d customers with a deadline", len(active), total)

    async def reload_model(self) -> None:
        """Pick up a new value model file without a restart; a bad file keeps the current model."""
        assert self.models is not None
        try:
            model = self.models.poll()
        except ConfigError as exc:
            log.error("%s; keeping model %s", exc, self.pipeline.model.version if self.pipeline.model else None)
            return
        if model is not None:
            self.pipeline.model = model
            log.info("value model %s loaded from %s", model.version, self.models.path)

    # -- Redis ---------------------------------------------------------------------------
    async def redis_writer(self) -> None:
        await self.redis.run(self.settings.redis_flush_seconds, self._stop, on_restart=self.requeue_profiles)

    async def requeue_profiles(self) -> None:
        """Queue the profile of every customer on an owned partition (after Redis came back empty)."""
        active, n = set(self.active_partitions()), self.settings.partitions
        for i, (customer, raw) in enumerate(list(self.table.data.items())):
            if canonical_partition(customer, n) in active and (profile := self.pipeline.profile(customer, raw)):
                self.redis.put(customer, profile)
            if i % 1000 == 999:
                await asyncio.sleep(0)  # let the agent and the web server run
