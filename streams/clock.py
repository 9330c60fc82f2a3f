"""The injectable clock of a worker.

- wall: the system clock, optionally shifted (`advance`) and sped up (`speed`,
  for demos where a day passes in seconds). Tests shift it to make time pass.
- event: event time. Each event is scored as of its own time (the core never
  lets a customer's clock run backwards), and each partition's sweep clock is
  the latest event time seen on it, so a backfill equals `replay --exact`.
"""

from __future__ import annotations

import time
from collections.abc import Callable

from scoring.events import MS_PER_DAY


class Clock:
    def __init__(self, mode: str = "wall", speed: float = 1.0,
                 source: Callable[[], float] = time.time) -> None:
        if mode not in ("wall", "event"):
            raise ValueError(f"clock mode must be wall or event, not {mode!r}")
        self.mode, self.speed, self._source = mode, speed, source
        self._origin = source()
        self._offset_ms = 0
        self._watermarks: dict[int, int] = {}

    def wall_ms(self) -> int:
        """Wall time (ms), shifted and sped up as configured."""
        now = self._source()
        return int((self._origin + (now - self._origin) * self.speed) * 1000) + self._offset_ms

    def event_now_ms(self, event_ms: int, partition: int) -> int:
        """`now` for scoring an event that occurred at `event_ms` on `partition`."""
        if self.mode == "wall":
            return self.wall_ms()
        mark = self._watermarks.get(partition, 0)
        if event_ms > mark:
            self._watermarks[partition] = event_ms
        return event_ms

    def sweep_now_ms(self, partition: int) -> int | None:
        """`now` for time-driven re-scoring of a partition; None before any event (event mode)."""
        if self.mode == "wall":
            return self.wall_ms()
        mark = self._watermarks.get(partition)
        if mark is None:
            return None
        # Only days before the watermark's day are over: events of that day may still come, and a
        # step's own catch-up reviews only days before the event's day, so replay agrees.
        return (mark // MS_PER_DAY) * MS_PER_DAY - 1

    def advance(self, ms: int) -> None:
        """Shift time forward (tests and demos; off unless clock control is enabled)."""
        self._offset_ms += ms
        for partition in self._watermarks:
            self._watermarks[partition] += ms
