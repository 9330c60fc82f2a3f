"""Part 4: two workers against one on the same data: the speed-up.

Two new workers (a new consumer group) read part 2's preloaded topic; the
one-worker figure is part 2's. Both start together; the rate is counted only
once the group has settled with partitions on both (Faust recovers the moved
partitions' tables from the changelog, which is part of scaling out).
"""

from __future__ import annotations

import time
from typing import Any

from bench.context import Context
from bench.measure import Samples, watch
from bench.services import Process, wait_until


def split_assigned(procs: list[Process]) -> bool:
    """Every worker owns partitions, and none twice."""
    owned = []
    for proc in procs:
        doc = proc.get("/health", timeout=1.0)
        if not doc or not doc.get("partitions"):
            return False
        owned.extend(doc["partitions"])
    return len(owned) == len(set(owned))


def run_scaleout(ctx: Context, events_topic: str, count: int, one_worker_rate: float) -> dict[str, Any]:
    topics = ctx.topics("w2", events=events_topic)
    config = ctx.config("w2", topics)
    ctx.create_topics(config)
    workers = [ctx.start(f"w2-{i}", config) for i in (1, 2)]
    try:
        samples = Samples()
        wait_until(lambda: split_assigned(workers), 120, 0.1, "two workers sharing the partitions", workers[0])
        settled = time.perf_counter() - samples.origin
        watch(workers, count, samples=samples, stall=10.0)
        # None when the first worker to join had read everything before the group settled (a stream too short
        # for the worker's rate): there is no two-worker window to measure
        rate = samples.rate(since=settled) or None
        return {"events_per_s": rate, "one_worker_events_per_s": one_worker_rate,
                "cpu_us_per_event": samples.cpu_us_per_item(since=settled),
                "speedup": rate / one_worker_rate if rate and one_worker_rate else None,
                "settled_after_s": settled, "processed": samples.last, "complete": samples.last >= count,
                "events_after_settled": samples.last - _count_at(samples, settled)}
    finally:
        for worker in workers:
            worker.stop()


def _count_at(samples: Samples, t: float) -> int:
    return next((n for s, n in samples.points if s >= t), samples.last)
