"""Faust's consumer, delivering input records one fetched batch at a time, in order, and committing
only what the worker has written.

Faust pays its per-message cost (an Event, sensors, acks, the stream iteration) for each message it
delivers. This consumer delivers ONE message per fetched batch of an input partition: its value is a
`RecordBatch` (the raw records), its offset the batch's last. The agent handles the whole batch;
Faust's cost is paid once per batch. Changelog records (table recovery) go through unchanged.

Order and commits are decided by `streams.worker.offsets.OffsetBook` (no I/O there):
- input records are delivered only outside rebalances, in offset order from the committed offset;
- the offset committed for an input partition is the one the worker's last flush made durable
  (`OffsetBook.committable`), not "the last message acked": state and outputs are written at a
  flush, and a commit always flushes first (`before_commit`).
"""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator, Awaitable, Callable, Mapping
from dataclasses import dataclass
from typing import Any, cast

from faust.transport.drivers import aiokafka as faust_aiokafka
from faust.types.tuples import ConsumerMessage

from streams.worker.handler import Record
from streams.worker.offsets import OffsetBook

log = logging.getLogger("tierstream.worker")


@dataclass(frozen=True, slots=True)
class RecordBatch:
    """The records of one fetch of one input partition, delivered as one Faust message's value."""

    tp: Any  # the consumer's topic-partition
    records: tuple[Record, ...]

    @property
    def topic(self) -> str:
        return str(self.tp.topic)

    @property
    def partition(self) -> int:
        return int(self.tp.partition)

    @property
    def first(self) -> int:
        return self.records[0].offset

    @property
    def last(self) -> int:
        return self.records[-1].offset


class BatchingConsumer(faust_aiokafka.Consumer):
    """See the module docstring. The worker sets `before_commit` (flush) and reads `book`."""

    book: OffsetBook
    before_commit: Callable[[], Awaitable[None]] | None = None
    after_commit: Callable[[Mapping[Any, int | None]], object] | None = None  # the input offsets known committed

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.book = OffsetBook()

    # -- delivery ----------------------------------------------------------------------------------
    async def getmany(self, timeout: float) -> AsyncIterator[tuple[Any, Any]]:  # noqa: ASYNC109 - Faust's
        records, active = await self._wait_next_records(timeout)
        if records is None or self.should_stop or not self.flow_active:
            return
        generation = self.app.consumer_generation_id
        for tp, batch in records.items():
            if active is not None and tp not in active:
                continue
            if self._is_changelog_tp(tp):  # table recovery and standbys: Faust's own path
                for record in batch:
                    yield tp, self._to_message(tp, record)
                continue
            if not batch or self.app.rebalancing:
                continue  # fetched again from the committed offset once the rebalance is over
            message = await self._batch_message(tp, batch, generation)
            if message is not None:
                yield tp, message

    async def _batch_message(self, tp: Any, batch: list[Any], generation: int) -> ConsumerMessage | None:
        verdict = self.book.fetched(tp, batch[0].offset, batch[-1].offset)
        if verdict.seek_to is not None:
            log.warning("input %s jumped from offset %d to %d: seeking back", tp, verdict.seek_to, batch[0].offset)
            await super().seek(tp, verdict.seek_to)
        if verdict.start is None:
            return None
        start = verdict.start
        rows = tuple(Record(r.topic, r.partition, r.offset, r.key, r.value or b"") for r in batch if r.offset >= start)
        gap = next((i for i in range(1, len(rows)) if rows[i].offset != rows[i - 1].offset + 1), None)
        if gap is not None:  # records missing inside the fetch: deliver up to the gap, fetch the rest again
            rows = rows[:gap]
            self.book.truncated(tp, rows[-1].offset + 1)
            await super().seek(tp, rows[-1].offset + 1)
        stamp = batch[-1].timestamp
        make: Any = ConsumerMessage  # its value is our RecordBatch, not bytes (see BatchSchema)
        at = None if stamp is None else stamp / 1000.0
        return cast(ConsumerMessage, make(tp.topic, tp.partition, rows[-1].offset, at, 0, [], None,
                                          RecordBatch(tp, rows), None, 0, len(rows), tp, generation_id=generation))

    async def resume_after_skip(self, tp: Any) -> None:
        """The agent found records that were delivered but never handled: fetch again from there."""
        offset = self.book.resume_offset(tp)
        if offset is not None:
            await super().seek(tp, offset)

    # -- seeks --------------------------------------------------------------------------------------
    async def seek_to_committed(self) -> Any:
        offsets = await super().seek_to_committed()
        inputs = {tp: c for tp, c in offsets.items() if not self._is_changelog_tp(tp)}
        fresh = [tp for tp, committed in inputs.items() if not committed or committed <= 0]
        if fresh:  # aiokafka does not seek a partition with nothing committed: from the beginning
            await self._thread.seek_to_beginning(*fresh)
        for tp, committed in inputs.items():
            self.book.seeked(tp, committed if committed and committed > 0 else None)
        return offsets

    async def seek(self, partition: Any, offset: int) -> None:
        await super().seek(partition, offset)
        if not self._is_changelog_tp(partition):
            self.book.seeked(partition, offset)

    async def on_partitions_revoked(self, revoked: Any) -> None:
        self.book.revoke(revoked)
        await super().on_partitions_revoked(revoked)

    # -- acks and commits ---------------------------------------------------------------------------
    def ack(self, message: Any) -> bool:
        app = self.app
        if message.generation_id != app.consumer_generation_id or not app.flow_control.is_active():
            message.acked = True  # done with, so nothing waits for it; its offset is never committed
            self._unacked_messages.discard(message)
            return False
        return bool(super().ack(message))

    def _new_offset(self, tp: Any) -> int | None:
        if self._is_changelog_tp(tp):
            return super()._new_offset(tp)
        self._acked[tp].clear()  # commits follow the book, not acks
        self._acked_index[tp].clear()
        return self.book.committable(tp)

    async def _add_gap(self, tp: Any, offset_from: int, offset_to: int) -> None:
        """Faust marks the offsets between two messages as a gap; a batch message spans its records."""

    async def force_commit(self, topics: Any = None, start_new_transaction: bool = True) -> bool:
        if self.before_commit is not None:
            await self.before_commit()  # state and outputs written; the book knows up to where
        did = bool(await super().force_commit(topics, start_new_transaction=start_new_transaction))
        if self.after_commit is not None:
            committed: Mapping[Any, int | None] = self._committed_offset
            self.after_commit({tp: committed.get(tp) for tp in self.book.partitions()})
        return did

    def _filter_tps_with_pending_acks(self, topics: Any = None) -> Any:
        tps: set[Any] = set(super()._filter_tps_with_pending_acks(topics))
        parts: list[Any] = self.book.partitions()
        tps.update(tp for tp in parts  # every input partition may have something newly written
                   if topics is None or tp in topics or tp.topic in topics)
        return iter(tps)

    # -- reading the consumer's state (metrics, event clock) ------------------------------------------
    def highwater_marks(self, tps: Any) -> dict[Any, int | None]:
        out: dict[Any, int | None] = {}
        for tp in tps:
            try:
                out[tp] = self.highwater(tp)
            except (AssertionError, KeyError):  # not assigned (any more)
                out[tp] = None
        return out
