"""Part 4: two workers against one on the same data: the speed-up, and the CPU per event.

Two new workers (a new consumer group) start on an empty topic of their own and
wait until the group has settled (both own partitions, none twice, unchanged for
`SETTLE_S`); only then is part 2's stream produced to that topic, so the whole
stream is read by the two of them (started on part 2's preloaded topic, the first
worker to join read everything before the group settled). Rate and CPU per event
(both workers' user + system time) run from the start of production to the last progress seen.
The one-worker figures are of one worker started and fed the same way, in the same run (the comparison the
target means: the same fetch sizes, the same producer beside it); part 2's worker, which reads the stream
preloaded in large fetches and so coalesces more per flush, is reported beside them.
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


def whole_window(samples: Samples) -> tuple[float | None, float | None]:
    """Events/s and CPU us per event from the first sample (taken as production starts) to the last growth.
    Not from the first sample that shows progress: a worker stepping a fetch of thousands of records answers
    /health only after it, so that sample can come late, with CPU spent before it counted after it (a run
    of 2026-12-03 read 71 us per event that way, less than a bare Faust agent's)."""
    if len(samples.points) < 2 or samples.last <= samples.points[0][1]:
        return None, None
    end = next(i for i in range(len(samples.points) - 1, -1, -1) if samples.points[i][1] == samples.last)
    (t0, n0), (t1, n1) = samples.points[0], samples.points[end]
    return (n1 - n0) / (t1 - t0), (samples.cpu[end] - samples.cpu[0]) / (n1 - n0) * 1e6


def read_while_produced(ctx: Context, name: str, count: int, records: Sequence[Record]) -> dict[str, Any]:
    """`count` new workers (a group of their own) on an empty topic; once their assignment has settled, the
    stream is produced to it while they read it: their rate and summed CPU per event, first progress to last."""
    topics = ctx.topics(name)
    config = ctx.config(name, topics)
    ctx.create_topics(config)
    workers = [ctx.start(f"{name}-{i}", config) for i in range(1, count + 1)]
    try:
        settle_s = settled(workers)
        base = total(workers, processed) or 0
        samples = Samples()
        samples.add(base, sum(w.cpu_seconds() for w in workers))
        producing = threading.Thread(target=produce, args=(ctx.services.bootstrap, records, lambda _: topics["events"]))
        producing.start()  # the stream arrives while the workers read it (the producer shares the CPU)
        try:
            # a long stall allowance: a worker stepping a fetch of thousands of records answers /health only after it
            watch(workers, base + len(records), samples=samples, stall=60.0)
        finally:
            producing.join()
        rate, cpu = whole_window(samples)
        return {"events_per_s": rate, "cpu_us_per_event": cpu,
                "settled_after_s": settle_s, "processed": samples.last - base,
                "complete": samples.last - base >= len(records)}
    finally:
        for worker in workers:
            worker.stop()


def run_scaleout(ctx: Context, records: Sequence[Record], one_worker: dict[str, Any]) -> dict[str, Any]:
    """Two workers against one started the same way (on an empty topic, the stream produced while they read);
    also against part 2's worker (`one_worker`: one worker reading the stream preloaded, in large fetches)."""
    one = read_while_produced(ctx, "fed1", 1, records)  # not "w1": part 2's app id (its table, its topic)
    two = read_while_produced(ctx, "w2", 2, records)
    rate, cpu = two["events_per_s"], two["cpu_us_per_event"]
    same_rate, same_cpu = one["events_per_s"], one["cpu_us_per_event"]
    pre_rate, pre_cpu = one_worker.get("events_per_s"), one_worker.get("cpu_us_per_event")
    return {"events_per_s": rate, "cpu_us_per_event": cpu,
            "one_worker_events_per_s": same_rate, "one_worker_cpu_us_per_event": same_cpu,
            "cpu_vs_one_worker": cpu / same_cpu if cpu and same_cpu else None,
            "speedup": rate / same_rate if rate and same_rate else None,
            "preloaded_one_worker_events_per_s": pre_rate, "preloaded_one_worker_cpu_us_per_event": pre_cpu,
            "cpu_vs_preloaded_one_worker": cpu / pre_cpu if cpu and pre_cpu else None,
            "speedup_vs_preloaded_one_worker": rate / pre_rate if rate and pre_rate else None,
            "settled_after_s": two["settled_after_s"], "processed": two["processed"],
            "complete": two["complete"] and one["complete"]}
