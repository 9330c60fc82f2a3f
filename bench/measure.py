"""Progress of workers read from /health, and rates and percentiles computed from it."""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

from bench.services import Process

Counter = Callable[[dict[str, Any]], int]


def processed(doc: dict[str, Any]) -> int:
    """Input events a worker is done with: scored, dead-lettered or recognised as duplicates."""
    return int(doc.get("events_scored", 0)) + int(doc.get("dead_lettered", 0)) + int(doc.get("duplicates", 0))


def reviewed(doc: dict[str, Any]) -> int:
    return int(doc.get("reviewed", 0))


@dataclass
class Samples:
    """(seconds since the watch began, summed count) pairs, and the processes' CPU seconds at each."""

    points: list[tuple[float, int]] = field(default_factory=list)
    cpu: list[float] = field(default_factory=list)
    origin: float = field(default_factory=time.perf_counter)

    @property
    def last(self) -> int:
        return self.points[-1][1] if self.points else 0

    def window(self, since: float = 0.0) -> tuple[int, int] | None:
        """Indexes of the first sample after `since` that shows progress and of the last growth. When all the
        progress shows in one sample (a small input done within one poll), the window starts at the sample
        before it: a rate that counts up to one idle poll interval, never an empty window."""
        start = next((i for i, (t, n) in enumerate(self.points) if t >= since and n > self.points[0][1]), None)
        end = next(i for i in range(len(self.points) - 1, -1, -1) if self.points[i][1] == self.last)
        if start is not None and end == start and start > 0 and self.points[start - 1][0] >= since:
            start -= 1
        return None if start is None or end <= start else (start, end)

    def rate(self, since: float = 0.0) -> float:
        """Count per second over `window(since)`."""
        w = self.window(since)
        if w is None:
            return 0.0
        (t0, n0), (t1, n1) = self.points[w[0]], self.points[w[1]]
        return (n1 - n0) / (t1 - t0)

    def cpu_us_per_item(self, since: float = 0.0) -> float | None:
        """CPU time (user + system, all watched processes) per counted item over `window(since)`, microseconds."""
        w = self.window(since)
        if w is None or len(self.cpu) != len(self.points):
            return None
        return (self.cpu[w[1]] - self.cpu[w[0]]) / (self.points[w[1]][1] - self.points[w[0]][1]) * 1e6

    def add(self, count: int, cpu: float, at: float | None = None) -> None:
        """One sample: the summed count and CPU seconds at `at` (perf_counter; default now)."""
        self.points.append(((time.perf_counter() if at is None else at) - self.origin, count))
        self.cpu.append(cpu)

    def first_growth(self) -> float | None:
        """Seconds since the origin of the first sample above the first one."""
        return next((t for t, n in self.points if n > self.points[0][1]), None)

    def done_at(self) -> float:
        return next(t for t, n in self.points if n == self.last)


def total(procs: Sequence[Process], counter: Counter) -> int | None:
    counts = []
    for proc in procs:
        doc = proc.get("/health", timeout=2.0)
        if doc is None:
            return None
        counts.append(counter(doc))
    return sum(counts)


def watch(procs: Sequence[Process], target: int, counter: Counter = processed, poll: float = 0.1,
          stall: float = 15.0, timeout: float = 900.0, samples: Samples | None = None) -> Samples:
    """Sample the summed count until it reaches `target` or stops growing for `stall` seconds."""
    samples = samples or Samples()
    grew = time.perf_counter()
    while True:
        for proc in procs:
            proc.check_alive()
        count = total(procs, counter)
        now = time.perf_counter()
        if count is not None:
            if not samples.points or count > samples.last:
                grew = now
            samples.add(count, sum(proc.cpu_seconds() for proc in procs), now)
            if count >= target:
                return samples
        if now - grew > stall or now - samples.origin > timeout:
            return samples
        time.sleep(poll)


def percentiles(values: Sequence[float], qs: Sequence[float] = (50, 95, 99)) -> dict[str, float]:
    """Nearest-rank percentiles, e.g. {"p50": ..., "p95": ..., "p99": ...}."""
    ordered = sorted(values)
    if not ordered:
        return {f"p{q:g}": float("nan") for q in qs}
    return {f"p{q:g}": ordered[min(len(ordered) - 1, max(0, round(q / 100 * len(ordered)) - 1))] for q in qs}


def wait_idle(proc: Process, target: int, timeout: float = 120.0) -> int:
    """Wait until a worker has processed `target` events in all (or stops progressing); its count."""
    return watch([proc], target, poll=0.2, stall=10.0, timeout=timeout).last
