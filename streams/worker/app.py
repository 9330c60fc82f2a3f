"""The worker's composition root: the Faust app, its topics and table, the agent, the timers.

A record's path (three files): the `BatchingConsumer` delivers a fetched batch of one input
partition as one message -> `Tierstream.score` (here) hands it to `Handler.on_batch`
(`streams.worker.handler`), which decodes each record and calls `scoring.step` -> the `Effects`
come back here and are carried out: outputs sent, deadlines set. A flush (every
`flush_interval_seconds`, and before every offset commit) writes what the steps left in memory:
score snapshots first, then the states (table store and changelog), then the Redis profiles.

One lock orders the agent, the review sweep and the flush: each runs its synchronous part whole (a sweep
per chunk of customers; a flush only takes its work under it, and renders and writes it outside).
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Hashable
from typing import Any, cast

import faust
from faust.app.router import Router
from redis.asyncio import Redis
from redis.exceptions import RedisError

from scoring.calibrate import CustomerFigures
from scoring.codec import peek_clock_ms
from scoring.config import ScoringConfig
from scoring.decisions import ActionRequest
from scoring.errors import ConfigError, StateDecodeError
from scoring.events import MS_PER_DAY
from streams.calibrationfile import applied, load_calibration
from streams.caps import checked_cap
from streams.evidencefile import load_evidence
from streams.kafka import table_changelog
from streams.modelfile import FileWatcher, ModelWatcher
from streams.partitioning import canonical_partition
from streams.profile import CustomerProfile
from streams.serving.redis_view import RedisView
from streams.settings import Settings
from streams.worker.batches import send_in_batches
from streams.worker.clock import NO_WATERMARK, Clock, EventOrder
from streams.worker.consumer import BatchingConsumer, RecordBatch
from streams.worker.deadlines import DeadlineIndex, stored_due_day
from streams.worker.faust_options import faust_options
from streams.worker.handler import Effects, Flush, Handler, Outgoing
from streams.worker.metrics import WorkerMetrics
from streams.worker.recalibrate import partition_figures, recalibrator
from streams.worker.remnants import REMNANT_PREFIX, is_remnant_key
from streams.worker.states import StateCache, StoredStateError
from streams.worker.status import WorkerStatus
from streams.worker.store import FaustTableStore
from streams.worker.watchdog import kick_recovery, recovery_stall

log = logging.getLogger("tierstream.worker")
REVIEW_CHUNK = 200  # customers re-scored between two yields to the event loop (~20-40 ms of work)
RENDER_CHUNK = 100  # customers a flush renders (state bytes, snapshot, profile) between two yields (~10-20 ms)
FIGURES_CHUNK = 5_000  # customers' states read for a recalibration between two yields


class RawSchema(faust.Schema):  # type: ignore[type-arg]
    """Keys as `key_type` (UTF-8), values as the exact bytes on the wire."""

    def __init__(self, key_type: type) -> None:
        super().__init__(key_type=key_type, value_type=bytes, key_serializer="raw", value_serializer="raw")


class BatchSchema(faust.Schema):  # type: ignore[type-arg]
    """The input topics' schema: the consumer already made each message's value a `RecordBatch`."""

    def loads_key(self, app: Any, message: Any, *, loads: Any = None, serializer: Any = None) -> Any:
        return message.key

    def loads_value(self, app: Any, message: Any, *, loads: Any = None, serializer: Any = None) -> Any:
        return message.value


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


STUCK_SECONDS = 10.0  # an input partition behind its highwater with no progress for this long is fetched again


class Tierstream:
    """A worker: its Faust app, the handler, and the in-memory state they share."""

    def __init__(self, settings: Settings, redis: Redis | None = None) -> None:
        self.settings = settings
        self.clock = Clock(settings.clock_speed)
        self.models = ModelWatcher(settings.model_path) if settings.model_path else None
        model = self.models.poll() if self.models else None
        config = self._watch_files(settings)
        self.app = faust.App(**faust_options(settings), Router=CanonicalRouter)
        self.app.transport.Consumer = BatchingConsumer  # type: ignore[misc]  # before the consumer exists
        # The changelog topic is declared with its own raw schema: left to Faust, it is made from the table's
        # key_type (str -> JSON), and recovery then failed to decode the raw keys.
        changelog = self.app.topic(
            table_changelog(settings), schema=RawSchema(str), partitions=settings.partitions, internal=True,
            compacting=True, deleting=False,  # compact only: a customer's latest state never expires
            acks=False, allow_empty=True, maxsize=131_072)
        self.table = self.app.Table(
            "customers", schema=RawSchema(str), key_type=str, value_type=bytes, partitions=settings.partitions,
            changelog_topic=changelog)
        self.table.key_serializer = "raw"  # type: ignore[attr-defined]
        self.store = FaustTableStore(self.table)
        self.order = EventOrder(int(settings.event_clock_idle_seconds * 1000)) if settings.clock == "event" else None
        self.handler = Handler(
            config, settings.topics, settings.partitions, StateCache(self.store), model, self.order,
            max_future_ms=int(settings.scoring.max_future_seconds * 1000),
            max_jump_ms=int(settings.event_clock_max_jump_days * MS_PER_DAY))
        self.deadlines = DeadlineIndex()
        self.metrics = WorkerMetrics()
        self.redis_client = redis or Redis.from_url(
            settings.redis_url.get_secret_value(),
            password=settings.redis_password.get_secret_value() if settings.redis_password else None,
            socket_timeout=2.0, socket_connect_timeout=2.0)
        self.redis = RedisView(self.redis_client, settings.redis_prefix, settings.scoring.tier_names,
                               cap_types=tuple(settings.scoring.frequency_caps))
        t = settings.topics
        self.inputs = [*t.inputs().values(), t.events]
        self.source = self.app.topic(*self.inputs, schema=BatchSchema(), partitions=settings.partitions)
        for name in [*t.outputs(), t.events]:  # declared, so the worker creates them when missing
            self.app.topic(name, schema=RawSchema(str), partitions=settings.partitions)
        self.lock = asyncio.Lock()
        self._flushing = asyncio.Lock()
        self._in_flight: list[Any] = []  # outputs sent since the last flush took them
        self._generation = 0  # bumped when a rebalance drops what was in memory
        self._stop = asyncio.Event()
        self._caught_up_since: dict[Hashable, float] = {}
        self._settled: set[Hashable] = set()  # mixed-topic partitions read past their backlog (event clock)
        self._backlog_end: dict[Hashable, int] = {}
        self._quiet: set[Hashable] = set()
        self.app.agent(self.source, name="score")(self.score)
        self.app.timer(settings.review_interval_seconds)(self.sweep)
        self.app.timer(settings.flush_interval_seconds)(self.flush)
        self.app.task(self.redis_writer)
        self.app.timer(5.0)(self.watch_recovery)
        self._kicked_at = 0.0
        if self.models is not None:
            self.app.timer(settings.model_poll_seconds)(self.reload_model)
        if self.calibrations is not None:
            self.app.timer(settings.model_poll_seconds)(self.reload_calibration)
        if self.evidences is not None:
            self.app.timer(settings.model_poll_seconds)(self.reload_evidence)
        self.recalibrator = recalibrator(settings, self.redis_client)
        if self.recalibrator is not None:
            self.app.timer(self.recalibrator.poll_seconds)(self.recalibrate)
        self.table.on_recover(self.rebuild_deadlines)
        self.app.on_partitions_revoked.connect(self.on_revoked)  # type: ignore[arg-type]

    def _watch_files(self, settings: Settings) -> ScoringConfig:
        """Watch the calibration and evidence files; the config under them (a bad file at start: refuse to
        start)."""
        self.calibrations = FileWatcher(settings.calibration_path, load_calibration) if settings.calibration_path \
            else None
        self.evidences = FileWatcher(settings.evidence_path, load_evidence) if settings.evidence_path else None
        self.evidence = self.evidences.poll() if self.evidences else None
        config = settings.scoring.with_evidence(self.evidence)
        if self.calibrations is not None and (calibration := self.calibrations.poll()) is not None:
            config = applied(config, calibration, self.calibrations.path)
        return config

    @property
    def consumer(self) -> BatchingConsumer:
        consumer = cast(BatchingConsumer, self.app.consumer)
        if consumer.before_commit is None:
            consumer.before_commit = self.flush
            consumer.after_commit = self.handler.remnants.committed
        return consumer

    # -- the agent --------------------------------------------------------------------------------
    async def score(self, stream: faust.StreamT[RecordBatch]) -> None:
        """Each fetched batch: decode, step, carry out the effects (see the module docstring)."""
        consumer = self.consumer
        async for batch in stream:
            started = time.perf_counter()
            async with self.lock:
                tp = batch.tp
                if self.app.rebalancing or tp not in consumer.assignment():
                    continue  # fetched before a rebalance took the partition: read again by its owner
                if not consumer.book.in_sequence(tp, batch.first):
                    await consumer.resume_after_skip(tp)
                    continue
                start = consumer.book.unhandled(tp, batch.first)
                records = batch.records
                if start > batch.first:
                    records = tuple(r for r in records if r.offset >= start)
                if not records:
                    continue  # fetched again after a re-seek, handled already
                effects = self.handler.on_batch(tp, records, self.clock.wall_ms())
                if self.order is not None:
                    self._refresh_backlog()
                    effects.extend(self.handler.release(*self._watermark_inputs()))
                await self.carry_out(effects)
                consumer.book.handled(tp, batch.last)
            self.metrics.observe_batch(batch.topic, len(batch.records), time.perf_counter() - started)

    async def carry_out(self, effects: Effects) -> None:
        """Send the outputs (frequency caps checked in one Redis round trip), set the deadlines."""
        outputs = await self._capped(effects.outputs) if self.settings.scoring.frequency_caps else effects.outputs
        producer = self.app.producer
        for out in outputs:
            self.metrics.observe_output(out)
            self._in_flight.append(await producer.send(out.topic, None if out.key is None else out.key.encode(),
                                                       out.value, out.partition, None, None))
        for partition, customer, due in effects.deadlines:
            self.deadlines.set(partition, customer, due)
        book = self.consumer.book
        for tp, offset in effects.held:
            book.hold(tp, offset)
        for tp, offset in effects.released:
            book.release(tp, offset)

    async def _capped(self, outputs: list[Outgoing]) -> list[Outgoing]:
        caps = self.settings.scoring.frequency_caps
        # (the same actions, checked in the same order, as `tierstream bootstrap` counts: `streams.caps`)
        asks = [(i, out, cap) for i, out in enumerate(outputs) if (cap := checked_cap(out.decision, caps)) is not None]
        if not asks:
            return outputs
        checks = []
        for _, out, cap in asks:
            action = out.decision
            assert isinstance(action, ActionRequest)
            checks.append((out.key or "", action.action_type, action.id, action.at_ms / 1000, cap))
        try:
            verdicts = await self.redis.check_caps(checks)
        except (RedisError, OSError):
            verdicts = [(False, "frequency cap could not be checked (Redis unavailable)")] * len(checks)
        result = list(outputs)
        for (i, out, _), (allowed, why) in zip(asks, verdicts, strict=True):
            if not allowed:
                result[i] = self.handler.capped(out, why)
        return result

    # -- the event clock ----------------------------------------------------------------------------
    def _watermark_inputs(self) -> tuple[list[Any], set[Hashable]]:
        """The input partitions assigned now, and those caught up and quiet for the idle time (as last
        refreshed by the sweep). Taken from the assignment each time: right after a start or a rebalance,
        before any sweep, every assigned partition holds the clock (none is known to be caught up)."""
        return self._input_partitions(), self._quiet

    def _input_partitions(self) -> list[Any]:
        """The input topic-partitions assigned to this worker now."""
        return [tp for tp in self.consumer.assignment() if tp.topic in self.inputs]

    def _refresh_backlog(self) -> None:
        """Event clock: the mixed events topic is in time order only from where this worker's assignment found
        it: before that, a predecessor's forwarded copies follow newer records. Each of its partitions holds the
        clock back until read up to the highwater its first fetch reported."""
        assert self.order is not None
        consumer, topic = self.consumer, self.settings.topics.events
        backlog: set[Hashable] = set()
        for tp in consumer.assignment():
            if tp.topic != topic or tp in self._settled:
                continue
            highwater = consumer.highwater_marks([tp])[tp]
            end = self._backlog_end.setdefault(tp, highwater) if highwater is not None else None
            position = consumer.book.resume_offset(tp)  # handled (or held) up to here, not only fetched
            if position is None and end == 0:
                position = 0
            if end is not None and position is not None and position >= end:
                self._settled.add(tp)
            else:
                backlog.add(tp)
        self.order.backlog = backlog

    def _refresh_quiet(self) -> None:
        """Which input partitions are caught up (handled up to the highwater of the latest fetch) and have
        been for `event_clock_idle_seconds`: they no longer hold the event clock back."""
        consumer, now = self.consumer, time.monotonic()
        inputs = self._input_partitions()
        highwaters = consumer.highwater_marks(inputs)
        idle, quiet = self.settings.event_clock_idle_seconds, set()
        for tp in inputs:
            highwater = highwaters[tp]
            position = consumer.book.resume_offset(tp)  # handled (or held) up to here, not only fetched
            if position is None and highwater == 0:
                position = 0  # nothing delivered, nothing committed, nothing there: an empty partition
            if highwater is not None and position is not None and position >= highwater:
                if now - self._caught_up_since.setdefault(tp, now) >= idle:
                    quiet.add(tp)
            else:
                self._caught_up_since.pop(tp, None)
        self._quiet = quiet

    # -- time-driven re-scoring ------------------------------------------------------------------------
    def active_partitions(self) -> list[int]:
        first_input = self.settings.topics.purchases
        return sorted(tp.partition for tp in self.app.assignor.assigned_actives() if tp.topic == first_input)

    async def sweep(self) -> None:
        """Re-score the customers due on each owned partition (and, event clock, release held events)."""
        if self.app.rebalancing:
            return
        generation = self._generation  # a rebalance while sweeping ends the sweep (the partitions moved)
        self.handler.owned = set(self.active_partitions())
        await self._fetch_stuck_again()
        watermark_inputs = None
        if self.order is not None:
            self._refresh_quiet()
            self._refresh_backlog()
            watermark_inputs = self._watermark_inputs()
        async with self.lock:
            if watermark_inputs is not None:
                await self.carry_out(self.handler.release(*watermark_inputs))
                watermark = self.order.safe_watermark(*watermark_inputs)  # type: ignore[union-attr]
        for partition in self.active_partitions():
            if self.order is None:
                now: int | None = self.clock.wall_ms()
            else:
                now = self.order.sweep_now_ms(partition, watermark)
            if now is None:
                continue
            due = self.deadlines.pop_due(partition, now // MS_PER_DAY, limit=self.settings.sweep_limit)
            self.metrics.observe_sweep(partition, len(due))
            for start in range(0, len(due), REVIEW_CHUNK):
                async with self.lock:
                    if generation != self._generation or self.app.rebalancing:
                        return
                    await self.carry_out(self.handler.review(partition, due[start:start + REVIEW_CHUNK], now))
                await asyncio.sleep(0)

    async def _fetch_stuck_again(self) -> None:
        """Input partitions with records fetched but never handled and no progress for STUCK_SECONDS (a batch
        dropped during a rebalance, with nothing newer behind it to show the gap): fetch again from there."""
        if getattr(self.app, "in_recovery", False):
            return
        consumer, now = self.consumer, time.monotonic()
        inputs = self._input_partitions()
        async with self.lock:
            for tp, highwater in consumer.highwater_marks(inputs).items():
                if not consumer.book.is_stuck(tp, highwater, now, STUCK_SECONDS):
                    continue
                log.warning("input %s[%d]: records below offset %d were fetched but not handled; fetching them "
                            "again from %s", tp.topic, tp.partition, highwater, consumer.book.resume_offset(tp))
                await consumer.resume_after_skip(tp)

    async def watch_recovery(self) -> None:
        """Table recovery that receives nothing (see streams.worker.watchdog): log why, fetch again."""
        now, limit = time.monotonic(), self.settings.recovery_stall_seconds
        tables: Any = self.app.tables
        stalled = recovery_stall(tables.recovery, now, limit)
        if stalled and now - self._kicked_at >= limit:
            self._kicked_at = now
            await kick_recovery(self.app, stalled)

    async def rebuild_deadlines(self) -> None:
        """After a rebalance: index the owned partitions' customers by their cached review day."""
        active = set(self.active_partitions())
        self.handler.owned = active
        entries: dict[int, list[tuple[str, int | None]]] = {p: [] for p in active}
        applied: dict[int, int] = {}  # partition -> the latest event time its states hold
        n, forget_after = self.settings.partitions, self.settings.scoring.retention.forget_after_days
        self.handler.remnants.drop()
        for customer, raw in self.store.items():
            if is_remnant_key(customer):
                if (partition := canonical_partition(customer[len(REMNANT_PREFIX):], n)) in entries:
                    try:
                        self.handler.remnants.load(customer, partition, raw)
                    except (ValueError, StateDecodeError) as exc:
                        log.error("remnant record of %r cannot be decoded (%s); left out", customer, exc)
                continue
            partition = canonical_partition(customer, n)
            if partition in entries:
                entries[partition].append((customer, stored_due_day(raw, forget_after)))
                if self.order is not None:
                    applied[partition] = max(applied.get(partition, 0), peek_clock_ms(raw))
        if self.order is not None:  # the event clock the predecessor had reached (its reviews continue)
            for partition, at_ms in applied.items():
                self.order.recovered(partition, at_ms)
        for partition in self.deadlines.partitions():
            if partition not in active:
                self.deadlines.drop(partition)
        total = sum(self.deadlines.rebuild(p, e) for p, e in entries.items())
        log.info("deadline index rebuilt: %d partitions, %d customers with a deadline", len(active), total)

    # -- flushing ------------------------------------------------------------------------------------------
    async def flush(self) -> None:
        """Write what the steps left in memory: snapshots (and every output before them) delivered first,
        then the states, then the Redis profiles; then the book may commit up to where it was taken."""
        async with self._flushing:
            async with self.lock:
                generation = self._generation
                marks = self.consumer.book.mark_written()
                pending = self.handler.take_pending(marks)
                outputs, self._in_flight = self._in_flight, []
            work = Flush([], list(pending.remnants), [])
            for start in range(0, len(pending.dirty), RENDER_CHUNK):  # the agent steps between chunks
                if start:
                    await asyncio.sleep(0)
                self.handler.render(pending.dirty[start:start + RENDER_CHUNK], work)
            producer = self.app.producer
            aio = producer._ensure_producer()  # type: ignore[attr-defined]  # aiokafka's: its batch API
            outputs += await send_in_batches(aio, self.settings.topics.scores, (
                (None, None if out.key is None else out.key.encode(), out.value) for out in work.snapshots))
            await producer.flush()  # outputs before states and commits: a written state's outputs are out
            if generation != self._generation:
                return  # a rebalance dropped what was in memory: read again from the committed offsets
            if failed := [f.exception() for f in outputs if f.done() and not f.cancelled() and f.exception()]:
                await self._read_again(f"{len(failed)} outputs were not delivered ({failed[0]!r})")
                return
            changelog = self.store.changelog_topic
            last: dict[int, tuple[str, bytes | None]] = {}
            for partition, customer, value in work.states:
                self.store.put(partition, customer, value)
                last[partition] = (customer, value)
            sent = await send_in_batches(aio, changelog, (
                (partition, customer.encode(), value) for partition, customer, value in work.states))
            for future in sent:  # delivered, or the flush fails and nothing is committed past it
                await future
            for partition, (customer, value) in last.items():
                # The partition's last record again, alone in its batch: a broker whose ListOffsets answers
                # the last batch's base offset + 1 (the test broker, see KAFKA_TEST_BROKER.md) then still
                # gives the changelog's true end, so a worker recovering from it misses nothing.
                meta = await (await producer.send(changelog, customer.encode(), value, partition, None, None))
                self.store.persisted(partition, meta.offset)
            self.handler.cache.stored(dirty.customer for dirty in pending.dirty)
            for customer, profile in work.profiles:
                self.redis.put(customer, profile)
            self.consumer.book.written(marks)

    async def _read_again(self, why: str) -> None:
        """Outputs were lost after their steps: forget what is in memory and read again from the committed
        offsets (the steps, and so their outputs, are redone; their states were never written)."""
        log.error("%s: reading again from the committed offsets", why)
        async with self.lock:
            self._generation += 1
            self.handler.cache.drop()
            self.handler.remnants.drop(unwritten_only=True)
            if self.order is not None:
                self.order.drop()
            self._settled.clear()
            self._backlog_end.clear()
            self._caught_up_since.clear()
            self._quiet = set()
            await self.consumer.seek_to_committed()

    async def on_revoked(self, sender: Any = None, revoked: Any = None, **kwargs: Any) -> None:
        """A rebalance: write what is done, then forget what is in memory (read again from the commits)."""
        try:
            await self.flush()
        except Exception as exc:  # the records are read again from the committed offsets
            log.warning("flush before rebalance failed: %s: %s", type(exc).__name__, exc)
        async with self.lock:
            self._generation += 1
            self.handler.owned = set()  # until the recovery says what this worker owns now
            lost = self.handler.cache.drop()
            self.handler.remnants.drop()  # the recovery loads the owned partitions' ones from the table again
            if self.order is not None:
                self.order.drop()
            self._caught_up_since.clear()
            self._settled.clear()
            self._backlog_end.clear()
            self._quiet = set()
        log.info("rebalance: partitions revoked %s; %d customers' unwritten steps will be read again",
                 sorted({int(tp.partition) for tp in revoked or ()}), lost)

    async def reload_model(self) -> None:
        """Pick up a new value model file without a restart; a bad file keeps the current model."""
        assert self.models is not None
        try:
            model = self.models.poll()
        except ConfigError as exc:
            log.error("%s; keeping model %s", exc, self.handler.model.version if self.handler.model else None)
            return
        if model is not None:
            self.handler.model = model
            log.info("value model %s loaded from %s", model.version, self.models.path)

    async def reload_calibration(self) -> None:
        """Pick up a new calibration file: applied at each customer's next evaluation; a bad one keeps the
        calibration in force."""
        assert self.calibrations is not None
        current = self.handler.config.calibration
        try:
            calibration = self.calibrations.poll()
            if calibration is None:
                return
            config = applied(self.settings.scoring.with_evidence(self.evidence), calibration, self.calibrations.path)
        except ConfigError as exc:
            log.error("%s; keeping calibration %s", exc, current.version if current else None)
            return
        self.handler.config = config
        log.info("calibration %s loaded from %s", calibration.version, self.calibrations.path)

    async def reload_evidence(self) -> None:
        """Pick up a new evidence file for the ROI guard (at the next action); a bad one keeps the evidence in
        force."""
        assert self.evidences is not None
        try:
            evidence = self.evidences.poll()
        except ConfigError as exc:
            log.error("%s; keeping evidence %s", exc, self.evidence.version if self.evidence else None)
            return
        if evidence is None:
            return
        self.evidence = evidence
        self.handler.config = self.handler.config.with_evidence(evidence)
        log.info("evidence %s loaded from %s", evidence.version, self.evidences.path)

    async def recalibrate(self) -> None:
        """Take part in the scheduled recalibration from every partition's population
        (`streams.worker.recalibrate`); apply the calibration of a completed round."""
        assert self.recalibrator is not None
        if self.app.rebalancing:
            return
        today = self.order.latest_seen() if self.order is not None else self.clock.wall_ms()
        try:
            calibration = await self.recalibrator.step(
                time.time(), None if today is None else today // MS_PER_DAY, set(self.active_partitions()),
                self._figures)
        except (RedisError, OSError) as exc:
            log.warning("recalibration: Redis unavailable (%s: %s); calibration kept", type(exc).__name__, exc)
            return
        if calibration is not None and calibration != self.handler.config.calibration:
            self.handler.config = self.settings.scoring.with_evidence(self.evidence).calibrated(calibration)
            log.info("calibration %s recalibrated from %d customers (%d active) as of %s", calibration.version,
                     calibration.customers, calibration.active, calibration.as_of)

    async def _figures(self, partitions: set[int], day: int) -> dict[int, list[CustomerFigures]]:
        """The figures of the customers on `partitions`, their states read FIGURES_CHUNK at a time (the agent and
        the timers run in between); a state that cannot be decoded is left out (and logged)."""
        assert self.recalibrator is not None
        names = [customer for customer, _ in self.store.items()  # the table may change while we read it
                 if not is_remnant_key(customer)]
        out: dict[int, list[CustomerFigures]] = {p: [] for p in partitions}
        for start in range(0, len(names), FIGURES_CHUNK):
            chunk = []
            for customer in names[start:start + FIGURES_CHUNK]:
                try:
                    chunk.append((customer, self.handler.cache.get(customer)))
                except StoredStateError as exc:
                    log.error("%s; left out of the recalibration", exc)
            for partition, figures in partition_figures(chunk, partitions, self.settings.partitions, day,
                                                        self.recalibrator.config).items():
                out[partition].extend(figures)
            await asyncio.sleep(0)
        return out

    # -- Redis -------------------------------------------------------------------------------------------------
    async def redis_writer(self) -> None:
        await self.redis.run(self.settings.redis_flush_seconds, self._stop, on_restart=self.requeue_profiles)

    async def requeue_profiles(self) -> None:
        """Queue the profile of every customer on an owned partition (after Redis came back empty)."""
        active, n = set(self.active_partitions()), self.settings.partitions
        for i, (customer, _) in enumerate(list(self.store.items())):
            if (not is_remnant_key(customer) and canonical_partition(customer, n) in active
                    and (profile := self.handler.profile(customer))):
                self.redis.put(customer, profile.redis_fields())
            if i % 1000 == 999:
                await asyncio.sleep(0)  # let the agent and the web server run


    # -- what the web views, /metrics and the heartbeat read ------------------------------------------
    def status(self) -> WorkerStatus:
        settings, handler = self.settings, self.handler

        def lookup(customer: str) -> CustomerProfile | None:
            return handler.profile(customer, self._today_for(customer))

        def document(customer: str) -> dict[str, object] | None:
            profile = lookup(customer)
            return None if profile is None else profile.document(handler.cache.get(customer))

        async def send_heartbeat(value: bytes, key: str) -> None:
            await self.app.producer.send(settings.topics.metrics, key.encode(), value, None, None, None)

        async def redis_ok() -> bool:
            try:
                return bool(await asyncio.wait_for(self.redis_client.ping(), timeout=2.0))
            except (RedisError, OSError, TimeoutError):
                return False

        return WorkerStatus(
            settings=settings, counters=handler.counters, metrics=self.metrics, redis=self.redis,
            partitions=self.active_partitions, lag=self.lag,
            table_customers=lambda: len(self.store) - len(self.handler.remnants),
            deadlines=self.deadlines.size, unwritten=handler.cache.dirty_count, lookup=lookup,
            lookup_document=document, owns=self.owns, owner_url=self.owner_url, wall_ms=self.clock.wall_ms,
            advance_clock=self.advance_clock, redis_ok=redis_ok, send_heartbeat=send_heartbeat,
            model_version=lambda: handler.model.version if handler.model else None,
            calibration_version=lambda: handler.config.calibration.version if handler.config.calibration else None,
            event_clock=self.event_clock_status)

    def event_clock_status(self) -> dict[str, object] | None:
        """clock: event: events held for the watermark, the watermark, and the input partitions holding it."""
        if self.order is None:
            return None
        inputs, quiet = self._watermark_inputs()
        watermark = self.order.safe_watermark(inputs, quiet)
        return {"held": self.order.held_count(), "watermark": None if watermark >= NO_WATERMARK else watermark,
                "inputs": len(inputs), "quiet_inputs": len(quiet),
                "holding": sorted(f"{tp.topic}[{tp.partition}]" for tp in inputs if tp not in quiet)[:10]}

    def _today_for(self, customer: str) -> int | None:
        """The day a customer is shown as of: now (wall clock), or its own latest time (event clock)."""
        if self.order is not None:
            return None
        return self.clock.wall_ms() // MS_PER_DAY

    def owns(self, customer: str) -> bool:
        return canonical_partition(customer, self.settings.partitions) in self.active_partitions()

    def owner_url(self, customer: str) -> str | None:
        try:
            return str(self.app.router.key_store(self.table.name, customer))
        except Exception:  # no owner known (rebalancing)
            return None

    def advance_clock(self, ms: int) -> None:
        self.clock.advance(ms)
        if self.order is not None:
            self.order.advance(ms)

    def lag(self) -> dict[tuple[str, int], int]:
        """(topic, partition) -> records not yet committed: the highwater of the latest fetch minus the
        offset the book may commit (or, before the first flush, the next to deliver)."""
        consumer = self.consumer
        out: dict[tuple[str, int], int] = {}
        for tp, highwater in consumer.highwater_marks(self._input_partitions()).items():
            position = consumer.book.committable(tp)
            if position is None:
                position = consumer.book.resume_offset(tp)  # handled (or held) up to here, not only fetched
            if position is None and highwater == 0:
                position = 0  # an empty partition: nothing behind (listed, not left out)
            if highwater is not None and position is not None:
                out[tp.topic, tp.partition] = max(0, highwater - position)
        return out
