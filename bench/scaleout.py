"""Part 4: two workers against one on the same data: the speed-up, and the CPU per event.

Two new workers (a new consumer group) start on an empty topic of their own and
wait until the group has settled (both own partitions, none twice, unchanged for
`SETTLE_S`); only then is part 2's stream produced to that topic, so the whole
stream is read by the two of them (started on part 2's preloaded topic, the first
worker to join read everything before the group settled). Rate and CPU per event
(both workers' user + system time) run from the first progress seen to the last;
the one-worker figures are part 2's.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Sequence
from typing import Any

from bench.context import Context
from bench.data import Record
from bench.measure import Samples, processed, total, watch
from bench.produce import produce
from bench.services import Process, wait_until

SETTLE_S = 3.0  # the assignment must hold this long before anything is produced


def assignment(procs: list[Process]) -> tuple[tuple[int, ...], ...] | None:
    """Each worker's owned partitions, when every worker owns some and none is owned twice."""
    owned = []
    for proc in procs:
        doc = proc.get("/health", timeout=1.0)
        if not doc or not doc.get("partitions"):
            return None
        owned.append(tuple(sorted(doc["partitions"])))
    flat = [p for parts in owned for p in parts]
    return tuple(owned) if len(flat) == len(set(flat)) else None


def settled(procs: list[Process], hold: float = SETTLE_S, timeout: float = 120.0) -> float:
    """Wait until the group's split assignment has not changed for `hold` seconds; seconds waited."""
    started = time.perf_counter()
    seen, since = None, started

    def stable() -> bool:
        nonlocal seen, since
        now, current = time.perf_counter(), assignment(procs)
        if current is None or current != seen:
            seen, since = current, now
            return False
        return now - since >= hold

    wait_until(stable, timeout, 0.2, "two workers sharing the partitions", procs[0])
    return time.perf_counter() - started


def run_scaleout(ctx: Context, records: Sequence[Record], one_worker: dict[str, Any]) -> dict[str, Any]:
    topics = ctx.topics("w2")
    config = ctx.config("w2", topics)
    ctx.create_topics(config)
    workers = [ctx.start(f"w2-{i}", config) for i in (1, 2)]
    try:
        settle_s = settled(workers)
        base = total(workers, processed) or 0
        samples = Samples()
        samples.add(base, sum(w.cpu_seconds() for w in workers))
        producing = threading.Thread(target=produce, args=(ctx.services.bootstrap, records, lambda _: topics["events"]))
        producing.start()  # the stream arrives while both workers read it (the producer shares the CPU)
        try:
            # a long stall allowance: a worker stepping a fetch of thousands of records answers /health only after it
            watch(workers, base + len(records), samples=samples, stall=60.0)
        finally:
            producing.join()
        rate = samples.rate() or None
        cpu = samples.cpu_us_per_item()
        one_rate, one_cpu = one_worker.get("events_per_s"), one_worker.get("cpu_us_per_event")
        return {"events_per_s": rate, "one_worker_events_per_s": one_rate,
                "cpu_us_per_event": cpu, "one_worker_cpu_us_per_event": one_cpu,
                "cpu_vs_one_worker": cpu / one_cpu if cpu and one_cpu else None,
                "speedup": rate / one_rate if rate and one_rate else None,
                "settled_after_s": settle_s, "processed": samples.last - base,
                "complete": samples.last - base >= len(records)}
    finally:
        for worker in workers:
            worker.stop()
