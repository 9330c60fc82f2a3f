"""A batch replay of history files in several processes: the same output, faster.

Each forked process reads the whole history but converts, folds, scores and
writes only its own part of the customers (`streams.history.Part`: by a hash of
the customer id; reading a row it does not own costs a CSV split and a hash).
The parent merges the parts' rows into customer order, their bad rows into file
order, and adds up their counts, so the output and the summary are those of a
replay in one process. Rows without a readable customer, and file-level
problems, belong to part 0, so each is counted and reported once.

One process when the history is small, comes from stdin (it cannot be read
twice), the mode is `--exact` (it writes the decisions in order), or the
platform cannot fork.
"""

from __future__ import annotations

import csv
import heapq
import multiprocessing as mp
import os
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import IO, TYPE_CHECKING, Any

from scoring.config import ScoringConfig
from streams.history import BadRow, Inputs, Part
from streams.replay import (
    ReplayStats,
    StrictError,
    group_rows,
    header,
    no_cyclic_gc,
    offline,
    profiles_batch,
    run_replay,
    write_rows,
)

if TYPE_CHECKING:
    from scoring.valuemodel.model import ValueModel

PARALLEL_MIN_BYTES = 1_000_000  # ~25,000 rows of a purchases log: below it one process is as fast
MAX_PROCESSES = 8
REPORTED_PER_PART = 1_000  # bad rows a part sends back to be reported (all are counted)
POLL_SECONDS = 0.2


def jobs_for(inputs: Inputs, requested: int | None) -> int:
    """Processes for a batch replay of `inputs`: `requested`, else one per usable CPU (at most 8) for
    a large history; 1 where that cannot work (stdin, no fork)."""
    if not inputs.rereadable or "fork" not in mp.get_all_start_methods():
        return 1
    if requested is not None:
        return max(1, requested)
    if inputs.text_bytes() < PARALLEL_MIN_BYTES:
        return 1
    usable = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else (os.cpu_count() or 1)
    return max(1, min(usable, MAX_PROCESSES))


def replay_inputs(
    inputs: Inputs, as_of_day: int, config: ScoringConfig, out: IO[str], *,
    strict: bool = False, exact: bool = False, decisions_out: IO[str] | None = None,
    on_bad: Callable[[BadRow], None] = lambda _: None, model: ValueModel | None = None,
    jobs: int | None = None, on_progress: Callable[[int], None] | None = None,
) -> ReplayStats:
    """Replay history files and write one CSV row per customer to `out`, in one process or several
    (`jobs`, None: see `jobs_for`); the same rows, summary and bad-row reports either way."""
    processes = 1 if exact else jobs_for(inputs, jobs)
    if processes == 1:
        return run_replay(inputs.rows(), as_of_day, config, out, strict=strict, exact=exact,
                          decisions_out=decisions_out, on_bad=on_bad, model=model, on_progress=on_progress)
    started = time.perf_counter()
    with no_cyclic_gc():
        parts = _run_parts(_Job(inputs, as_of_day, offline(config), model, strict, processes), on_progress)
        stats = _merge(parts, inputs, out, model, on_bad)
    stats.seconds = time.perf_counter() - started
    return stats


@dataclass(frozen=True)
class _Job:
    inputs: Inputs
    as_of_day: int
    config: ScoringConfig
    model: ValueModel | None
    strict: bool
    processes: int


@dataclass
class _PartResult:
    """What one process sends back: its customers (sorted) and their CSV rows, its counts, its bad rows."""

    customers: list[str] = field(default_factory=list)
    lines: list[str] = field(default_factory=list)
    stats: ReplayStats = field(default_factory=ReplayStats)
    bad: list[BadRow] = field(default_factory=list)
    strict: BadRow | None = None  # the bad row that stopped it under --strict


# Set in the parent just before the processes fork (they inherit it), cleared after.
_SHARED: dict[str, Any] = {}


def _run_parts(job: _Job, on_progress: Callable[[int], None] | None) -> list[_PartResult]:
    context = mp.get_context("fork")
    counter = context.Value("q", 0)  # rows read by all the processes, for the progress report
    _SHARED.update(job=job, counter=counter)
    try:
        with context.Pool(job.processes) as pool:
            pending = pool.map_async(_score_part, range(job.processes), chunksize=1)
            seen = 0
            while not pending.ready():
                pending.wait(POLL_SECONDS)
                if on_progress is not None and counter.value > seen:
                    on_progress(counter.value - seen)
                    seen = counter.value
            return pending.get()
    finally:
        _SHARED.clear()


def _score_part(number: int) -> _PartResult:
    """In a forked process: read everything, keep and score the customers of part `number`."""
    job: _Job = _SHARED["job"]
    counter = _SHARED["counter"]
    result = _PartResult()

    def on_bad(row: BadRow) -> None:
        if len(result.bad) < REPORTED_PER_PART:
            result.bad.append(row)

    def on_progress(rows: int) -> None:
        with counter.get_lock():
            counter.value += rows

    rows = job.inputs.rows(Part(number, job.processes))
    try:
        by_customer = group_rows(rows, job.as_of_day, result.stats, job.strict, on_bad, on_progress)
    except StrictError as exc:
        result.strict = exc.row
        return result
    sink = _Lines(result.lines)
    profiles = profiles_batch(by_customer, job.as_of_day, job.config, result.stats, job.model)
    write_rows(sink, profiles, job.as_of_day, result.stats, job.config, job.model, result.customers)
    return result


class _Lines:
    """A text sink that keeps each write (the csv writer writes one row per call)."""

    def __init__(self, lines: list[str]) -> None:
        self.write = lines.append


def _merge(
    parts: list[_PartResult], inputs: Inputs, out: IO[str], model: ValueModel | None,
    on_bad: Callable[[BadRow], None],
) -> ReplayStats:
    stopped = [p.strict for p in parts if p.strict is not None]
    if stopped:  # every part read in file order up to its first bad row: the earliest is the file's first
        raise StrictError(min(stopped, key=inputs.position))
    for row in sorted((row for p in parts for row in p.bad), key=inputs.position):
        on_bad(row)
    csv.writer(out, lineterminator="\n").writerow(header(model))
    merged = heapq.merge(*(zip(p.customers, p.lines, strict=True) for p in parts))
    out.writelines(line for _, line in merged)
    total = ReplayStats()
    for part in parts:
        total.add(part.stats)
    return total


