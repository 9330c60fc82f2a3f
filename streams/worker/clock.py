"""The worker's clocks: the wall clock, and event time for backfills that must equal replay.

- wall: the system clock, optionally shifted (`advance`) and sped up (`speed`, for demos where a
  day passes in seconds). Events are scored as they arrive, as of now.
- event: event time (`EventOrder`). Events are scored in event-time order, each as of its own
  time, whatever partition or topic they came by, so a backfill ends equal to `replay --exact`
  (which steps each customer's events in the same order: time, then event id).

Event order. Every input topic-partition is read in offset order and is assumed to be in time order
(a history produced oldest first). An event is held until every input partition this worker reads
has moved past its time (the safe watermark: the lowest of the latest times seen per input
partition, leaving out partitions that are caught up and quiet for `idle_ms`, and the times of
events this worker forwarded to their canonical partition and has not read back yet); then events
are released in (time, event id) order. A forwarded event's source record is not committed before
its copy is read back (when this worker owns the destination), so a restarted worker never meets a
copy its predecessor forwarded after it has moved the clock past that copy's time; and since the
mixed events topic holds a predecessor's copies after newer records, each of its partitions holds the
clock back until read up to where it stood when assigned (`backlog`). Time-driven
reviews of a partition run only up to the day before both its latest released event and the safe
watermark, so a review never runs ahead of an event still on its way. Events forwarded by another
worker are not tracked: with several workers, exact equality with replay needs producers that key by
customer id with murmur2 (the Java client's default, or librdkafka's `murmur2_random`).

Refused before they can move any clock: events more than `max_future_ms` after the wall clock, and
(event time) more than `max_jump_ms` after the latest time seen."""

from __future__ import annotations

import heapq
import time
from collections.abc import Callable, Hashable, Iterable
from dataclasses import dataclass, field
from typing import Any

from scoring.events import MS_PER_DAY

NO_WATERMARK = 2**62


class Clock:
    """The wall clock as the worker sees it (shifted and sped up as configured)."""

    def __init__(self, speed: float = 1.0, source: Callable[[], float] = time.time) -> None:
        self.speed, self._source = speed, source
        self._origin = source()
        self._offset_ms = 0

    def wall_ms(self) -> int:
        """Wall time (ms), shifted and sped up as configured."""
        now = self._source()
        return int((self._origin + (now - self._origin) * self.speed) * 1000) + self._offset_ms

    def advance(self, ms: int) -> None:
        """Shift time forward (tests and demos; off unless clock control is enabled)."""
        self._offset_ms += ms


def day_before_ms(moment_ms: int) -> int:
    """The last millisecond of the day before `moment_ms`'s day: the days before it are over."""
    return (moment_ms // MS_PER_DAY) * MS_PER_DAY - 1


@dataclass(order=True, frozen=True, slots=True)
class Held:
    """An event waiting for the safe watermark, ordered by (time, event id, arrival)."""

    at_ms: int
    event_id: str
    seq: int
    item: Any = field(compare=False)  # what the handler needs to step it
    tp: Hashable = field(compare=False)
    offset: int = field(compare=False)


class EventOrder:
    """Per canonical partition, held events and the event clock (see the module docstring)."""

    def __init__(self, idle_ms: int = 2000) -> None:
        self.idle_ms = idle_ms
        self._seen: dict[Hashable, int] = {}  # input tp -> latest event time read
        self._held: dict[int, list[Held]] = {}  # canonical partition -> heap
        self._released: dict[int, int] = {}  # canonical partition -> latest released event time
        self._in_flight: dict[str, int] = {}  # forwarded event id -> its time
        self._sources: dict[str, tuple[Hashable, int]] = {}  # forwarded event id -> the record it came from
        self._flight_heap: list[tuple[int, str]] = []
        self._seq = 0
        # Input partitions whose unread records may be older than what was read from them (the mixed topic
        # after a restart holds a predecessor's forwarded copies after newer records): they hold everything
        # back until read up to where they stood when assigned. Kept current by the worker.
        self.backlog: set[Hashable] = set()

    # -- reading -------------------------------------------------------------------------
    def latest_seen(self) -> int | None:
        return max(self._seen.values()) if self._seen else None

    def saw(self, tp: Hashable, at_ms: int) -> None:
        """An accepted event of time `at_ms` was read from `tp` (refused ones never count)."""
        if at_ms > self._seen.get(tp, -NO_WATERMARK):
            self._seen[tp] = at_ms

    def hold(self, partition: int, at_ms: int, event_id: str, item: Any, tp: Hashable, offset: int) -> None:
        self._seq += 1
        heapq.heappush(self._held.setdefault(partition, []), Held(at_ms, event_id, self._seq, item, tp, offset))

    def forwarded(self, event_id: str, at_ms: int, source: tuple[Hashable, int] | None = None) -> None:
        """This worker forwarded an event to its canonical partition: hold the clock until it is read back.
        With `source` (input tp, offset), the forwarding worker reads that partition too: the source record
        stays uncommitted until then (a restart reads it again, rather than meeting its copy late)."""
        self._in_flight[event_id] = at_ms
        heapq.heappush(self._flight_heap, (at_ms, event_id))
        if source is not None:
            self._sources[event_id] = source

    def arrived(self, event_id: str) -> tuple[Hashable, int] | None:
        """An event was read on its canonical partition: the source record its forwarding held, if any."""
        self._in_flight.pop(event_id, None)
        return self._sources.pop(event_id, None)

    # -- the watermark ---------------------------------------------------------------------
    def safe_watermark(self, inputs: Iterable[Hashable], quiet: set[Hashable]) -> int:
        """Events at or before this time can be released: no input partition still to be read has an
        older one. `inputs`: the input partitions this worker reads; `quiet`: those caught up and
        quiet for idle_ms (they hold nothing back). One not read yet holds everything back."""
        marks = [-NO_WATERMARK if tp in self.backlog else self._seen.get(tp, -NO_WATERMARK)
                 for tp in inputs if tp not in quiet]
        while self._flight_heap and self._in_flight.get(self._flight_heap[0][1]) != self._flight_heap[0][0]:
            heapq.heappop(self._flight_heap)  # read back (or superseded)
        if self._flight_heap:
            marks.append(self._flight_heap[0][0] - 1)
        return min(marks) if marks else NO_WATERMARK

    def release(self, watermark: int) -> list[Held]:
        """The held events at or before `watermark`, in (time, event id) order over all partitions."""
        out: list[Held] = []
        for partition, heap in self._held.items():
            while heap and heap[0].at_ms <= watermark:
                held = heapq.heappop(heap)
                out.append(held)
                if held.at_ms > self._released.get(partition, -NO_WATERMARK):
                    self._released[partition] = held.at_ms
        out.sort()
        return out

    def recovered(self, partition: int, at_ms: int) -> None:
        """The partition's recovered states hold events up to `at_ms`: they were released in time order, so
        the partition's event clock had reached it (reviews resume from there, with no new event)."""
        if at_ms > self._released.get(partition, -NO_WATERMARK):
            self._released[partition] = at_ms

    def sweep_now_ms(self, partition: int, watermark: int) -> int | None:
        """`now` for reviewing `partition`: the end of the day before both its latest released event
        and the watermark; None before any event was released."""
        released = self._released.get(partition)
        if released is None:
            return None
        return day_before_ms(min(released, watermark))

    def held_count(self) -> int:
        return sum(len(h) for h in self._held.values())

    def drop(self, partitions: Iterable[int] | None = None) -> None:
        """Forget held events and clocks (a rebalance: they are read again from the committed offsets)."""
        if partitions is None:
            self.backlog.clear()
            self._held.clear()
            self._released.clear()
            self._seen.clear()
            self._in_flight.clear()
            self._flight_heap.clear()
            self._sources.clear()
            return
        for partition in partitions:
            self._held.pop(partition, None)
            self._released.pop(partition, None)

    def advance(self, ms: int) -> None:
        """Shift the event clocks forward (tests and demos, POST /clock)."""
        for partition in self._released:
            self._released[partition] += ms
        for tp in self._seen:
            self._seen[tp] += ms
