"""Offsets of the input partitions: what to deliver, what is done, what may be committed. No I/O.

The consumer (`streams.worker.consumer`) drives one `OffsetBook`; the book decides and the consumer
carries out (seek, deliver, commit). Per input topic-partition it keeps:

- `expected`: the next offset to deliver. Records are delivered in offset order from the committed
  offset, without gaps: a fetched batch that starts beyond `expected` is not delivered and the
  consumer seeks back to `expected` once; if the first record fetched right after that seek is
  still beyond it, nothing exists in between (transaction markers, compaction) and it is taken.
  Records before `expected` (fetched again after a seek) are dropped.
- `done`: every record below it has been handled (scored, forwarded or dead-lettered) or is held.
- `held`: offsets of records read but not yet handled (the event-time reorder buffer holds them).
- `safe`: the offset up to which the state and outputs of handled records are written (set by a
  flush). Only `safe` is ever committed, so a crash never commits past a record whose effects
  are still in memory: at least once, in order.

Commit offset = min(safe, lowest held offset): Kafka's meaning, the next offset to read.
"""

from __future__ import annotations

import heapq
from collections.abc import Hashable, Iterable
from dataclasses import dataclass, field
from typing import NamedTuple

TP = Hashable  # a topic-partition (aiokafka's TopicPartition in the worker, anything hashable in tests)


class Verdict(NamedTuple):
    """What to do with a fetched batch of offsets [first, last] (inclusive): deliver records from
    `start` on (None: none of them), and/or seek the partition to `seek_to`."""

    start: int | None
    seek_to: int | None = None


@dataclass
class _Partition:
    expected: int | None = None  # None: from wherever the fetch starts (nothing committed)
    reseeking: bool = False
    done: int | None = None
    safe: int | None = None
    held: list[int] = field(default_factory=list)  # a heap
    released: set[int] = field(default_factory=set)  # held offsets handled AND written (lazy heap deletion)
    stepped: set[int] = field(default_factory=set)  # held offsets handled since, not yet written by a flush
    watched: tuple[int | None, float] | None = None  # (done, since when) while behind the highwater


class OffsetBook:
    """The delivery and commit state of the input partitions of one consumer."""

    def __init__(self) -> None:
        self._parts: dict[TP, _Partition] = {}

    def _part(self, tp: TP) -> _Partition:
        part = self._parts.get(tp)
        if part is None:
            part = self._parts[tp] = _Partition()
        return part

    # -- assignment and seeks ------------------------------------------------------------
    def seeked(self, tp: TP, offset: int | None) -> None:
        """The consumer's position of `tp` was set to `offset` (None: unknown, e.g. nothing committed).

        Everything delivered before is forgotten: it will be fetched again, and records held or
        not yet written are handled again from there (idempotent by event id).
        """
        self._parts[tp] = _Partition(expected=offset, reseeking=False, done=offset, safe=offset)

    def revoke(self, tps: Iterable[TP]) -> None:
        for tp in tps:
            self._parts.pop(tp, None)

    def partitions(self) -> list[TP]:
        return list(self._parts)

    # -- delivery ---------------------------------------------------------------------------
    def fetched(self, tp: TP, first: int, last: int) -> Verdict:
        """A fetch returned offsets first..last of `tp` (ascending): which of them to deliver."""
        part = self._part(tp)
        expected = part.expected
        if expected is None or first == expected or (part.reseeking and first > expected):
            part.reseeking = False
            part.expected = last + 1
            return Verdict(first)
        if first > expected:  # a jump: fetch again from the expected offset, once
            if part.reseeking:
                return Verdict(None)
            part.reseeking = True
            return Verdict(None, seek_to=expected)
        if last >= expected:  # overlaps what was delivered: the rest only
            part.reseeking = False
            part.expected = last + 1
            return Verdict(expected)
        return Verdict(None)  # delivered already

    def truncated(self, tp: TP, next_offset: int) -> None:
        """Only the records before `next_offset` of the last fetch were delivered (a gap followed): the next
        fetch starts there (a jump from there is fetched again once, then taken as real: e.g. the offset
        of a transaction marker)."""
        part = self._part(tp)
        part.expected, part.reseeking = next_offset, False

    # -- handling ----------------------------------------------------------------------------
    def in_sequence(self, tp: TP, first: int) -> bool:
        """Whether a delivered batch starting at `first` follows what was handled. False when records
        before it were delivered but never handled (a batch the stream skipped): delivery then resumes
        from `resume_offset(tp)` (the caller seeks there) and this batch is not handled."""
        part = self._part(tp)
        if part.done is not None and first > part.done:
            part.expected = part.done
            part.reseeking = False
            return False
        return True

    def handled(self, tp: TP, last: int) -> None:
        """The delivered records of `tp` up to `last` are handled (or held)."""
        part = self._part(tp)
        if part.done is None or last + 1 > part.done:
            part.done = last + 1

    def is_stuck(self, tp: TP, highwater: int | None, now: float, patience: float) -> bool:
        """Whether `tp` has had records below `highwater` unhandled, with no progress, for `patience` seconds
        (`now` in seconds, any monotonic origin). A batch fetched and then dropped (a rebalance was under way,
        or the stream skipped it) is fetched again only when a newer batch shows the gap; at the end of a
        partition none comes: True means deliver again from `resume_offset` (the caller seeks there). The timer
        restarts."""
        part = self._parts.get(tp)
        if part is None or highwater is None or part.done is None or part.done >= highwater:
            if part is not None:
                part.watched = None
            return False
        if part.watched is None or part.watched[0] != part.done:
            part.watched = (part.done, now)
            return False
        if now - part.watched[1] < patience:
            return False
        part.watched = (part.done, now)
        part.expected, part.reseeking = part.done, False  # deliver again from there
        return True

    def unhandled(self, tp: TP, first: int) -> int:
        """The first offset from `first` on not handled yet (a batch fetched twice is handled once)."""
        part = self._parts.get(tp)
        return first if part is None or part.done is None else max(first, part.done)

    def position(self, tp: TP) -> int | None:
        """The next offset of `tp` to deliver (None: not known yet)."""
        part = self._parts.get(tp)
        return None if part is None else part.expected

    def resume_offset(self, tp: TP) -> int | None:
        """The next offset of `tp` not yet handled (held counts as handled): where delivery must resume
        after a skipped batch, and how far the event clock has really read."""
        part = self._parts.get(tp)
        return None if part is None else part.done

    def hold(self, tp: TP, offset: int) -> None:
        """The record at `offset` is read but its handling is deferred (reorder buffer)."""
        heapq.heappush(self._part(tp).held, offset)

    def release(self, tp: TP, offset: int) -> None:
        """A held record was handled: it stops holding commits once a flush that started after this has
        written its effects (see `mark_written`)."""
        part = self._parts.get(tp)
        if part is not None:
            part.stepped.add(offset)

    def _lowest_held(self, part: _Partition) -> int | None:
        held, released = part.held, part.released
        while held and held[0] in released:
            released.discard(heapq.heappop(held))
        return held[0] if held else None

    # -- flush and commit ---------------------------------------------------------------------
    def mark_written(self) -> dict[TP, tuple[int | None, frozenset[int]]]:
        """A flush is starting: everything handled so far will be written by it. Returns what it makes
        committable: per partition, the handled offset and the held records handled so far (call
        `written` with it once the flush is done; a failed flush leaves both to the next one)."""
        return {tp: (part.done, frozenset(part.stepped)) for tp, part in self._parts.items()
                if part.done is not None or part.stepped}

    def written(self, marks: dict[TP, tuple[int | None, frozenset[int]]]) -> None:
        """The flush that `mark_written` started is done: its records' effects are durable."""
        for tp, (done, stepped) in marks.items():
            part = self._parts.get(tp)
            if part is None:
                continue
            if done is not None and (part.safe is None or done > part.safe):
                part.safe = done
            part.released |= stepped
            part.stepped -= stepped

    def committable(self, tp: TP) -> int | None:
        """The offset to commit for `tp` (the next one to read), or None."""
        part = self._parts.get(tp)
        if part is None or part.safe is None:
            return None
        low = self._lowest_held(part)
        return part.safe if low is None else min(part.safe, low)

    def held_count(self, tp: TP | None = None) -> int:
        parts = self._parts.values() if tp is None else [self._parts[tp]] if tp in self._parts else []
        return sum(len(p.held) - len(p.released) for p in parts)
