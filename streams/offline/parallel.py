"""A batch replay of history files in several processes: the same output, faster.

Each forked process reads the whole history but converts, folds, scores and
writes only its own part of the customers (`streams.offline.history.Part`: by a hash of
the customer id; reading a row it does not own costs a CSV split and a hash).
The parent merges the parts' rows into customer order, their bad rows into file
order, and adds up their counts, so the output and the summary are those of a
replay in one process. Rows without a readable customer, and file-level
problems, belong to part 0, so each is counted and reported once.

One process when the history is small, comes from stdin (it cannot be read
twice), the mode is `--exact` (it writes the decisions in order), or the
platform cannot fork.

A replay that calibrates from its own input (calibrated tiering, no calibration
given) talks with its processes as the two phases of `scoring.calibrate` ask:
each folds its customers and sends the counts of phase (a); the parent merges
them into the percentile tables and sends those; each sends its score histogram
under them (phase b); the parent merges the histograms into the thresholds and
sends the calibration; each then scores its customers, still in memory. The
calibration is the one a single process makes (the phases merge exactly).
"""

from __future__ import annotations

import contextlib
import csv
import heapq
import multiprocessing as mp
import os
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from multiprocessing.connection import Connection, wait
from typing import IO, TYPE_CHECKING, Any

from scoring.calibrate import (
    PopulationSummary,
    ScoreHistogram,
    calibration_of,
    customer_figures,
    cut_tables,
    score_histogram,
    summarise,
)
from scoring.calibration import Calibration
from scoring.config import ScoringConfig
from scoring.events import CoreEvent
from scoring.state import CustomerState
from scoring.step import evaluate
from streams.offline.history import BadRow, Inputs, Part
from streams.offline.replay import (
    Profile,
    ReplayStats,
    StrictError,
    folded,
    group_rows,
    header,
    no_cyclic_gc,
    offline,
    profiles_batch,
    run_replay,
    scoring_config,
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
    calibration: Calibration | None = None,
) -> ReplayStats:
    """Replay history files and write one CSV row per customer to `out`; the same rows, summary, bad-row
    reports and calibration whichever way: a batch replay without `jobs` reads and folds in columns
    (`streams.offline.batch`); with `jobs`, `--strict` or `--exact` row by row, in one process or several
    (`jobs`, None: see `jobs_for`)."""
    if is_columnar(exact, strict, jobs) and config.retention.forget_after_days is None:  # (retention: row by row)
        from streams.offline.batch import replay_columnar  # noqa: PLC0415 (Polars loads only for a batch replay)

        return replay_columnar(inputs, as_of_day, config, out, on_bad=on_bad, model=model,
                               on_progress=on_progress, calibration=calibration)
    processes = 1 if exact else jobs_for(inputs, jobs)
    if processes == 1:
        return run_replay(inputs.rows(), as_of_day, config, out, strict=strict, exact=exact,
                          decisions_out=decisions_out, on_bad=on_bad, model=model, on_progress=on_progress,
                          calibration=calibration)
    started = time.perf_counter()
    with no_cyclic_gc():
        base = offline(config)
        chosen = ReplayStats()
        if calibration is None and base.tiering == "calibrated":
            job = _Job(inputs, as_of_day, base, model, strict, processes)
            parts, calibration = _run_calibrating_parts(job, on_progress)
            scoring_config(base, calibration, chosen, lambda: (), as_of_day)
            chosen.calibrated_from = "history" if calibration is not None else "none"
        else:
            job = _Job(inputs, as_of_day, scoring_config(base, calibration, chosen, lambda: (), as_of_day), model,
                       strict, processes)
            parts = _run_parts(job, on_progress)
        stats = _merge(parts, inputs, out, model, on_bad)
        stats.calibration, stats.calibrated_from = chosen.calibration, chosen.calibrated_from
    stats.seconds = time.perf_counter() - started
    return stats


def is_columnar(exact: bool, strict: bool, jobs: int | None) -> bool:
    """A replay that reads and folds in columns: batch mode, no --strict (it stops at the first bad row, which
    the per-row reader finds first), no --jobs (which asks for the per-row reader in that many processes)."""
    return not exact and not strict and jobs is None


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


def _read_part(number: int, result: _PartResult) -> dict[str, list[CoreEvent]] | None:
    """In a forked process: read everything, keep the events of part `number` by customer; None (and the row
    in `result.strict`) when a bad row stops it under --strict."""
    job: _Job = _SHARED["job"]
    counter = _SHARED["counter"]

    def on_bad(row: BadRow) -> None:
        if len(result.bad) < REPORTED_PER_PART:
            result.bad.append(row)

    def on_progress(rows: int) -> None:
        with counter.get_lock():
            counter.value += rows

    try:
        return group_rows(job.inputs.rows(Part(number, job.processes)), job.as_of_day, result.stats, job.strict,
                          on_bad, on_progress)
    except StrictError as exc:
        result.strict = exc.row
        return None


def _score_part(number: int) -> _PartResult:
    """In a forked process: read everything, keep and score the customers of part `number`."""
    job: _Job = _SHARED["job"]
    result = _PartResult()
    by_customer = _read_part(number, result)
    if by_customer is not None:
        profiles = profiles_batch(by_customer, job.as_of_day, job.config, result.stats, job.model)
        write_rows(_Lines(result.lines), profiles, job.as_of_day, result.stats, job.config, job.model,
                   result.customers)
    return result


def _run_calibrating_parts(
    job: _Job, on_progress: Callable[[int], None] | None,
) -> tuple[list[_PartResult], Calibration | None]:
    """The parts of a replay that calibrates from its input, and that calibration (None when no customer is
    active): one process per part, each talking with this one through a pipe (see the module doc)."""
    context = mp.get_context("fork")
    counter = context.Value("q", 0)
    _SHARED.update(job=job, counter=counter)
    pipes: list[Connection] = []
    children = []
    try:
        for number in range(job.processes):
            mine, theirs = context.Pipe()
            child = context.Process(target=_calibrating_part, args=(number, theirs), daemon=True)
            child.start()
            theirs.close()
            pipes.append(mine)
            children.append(child)
        progress = _Progress(counter, on_progress)
        summaries = [_receive(pipe, progress) for pipe in pipes]
        if any(s is None for s in summaries):  # a bad row under --strict: stop everyone, report it
            return [_answer(pipe, _STOP, progress) for pipe in pipes], None
        summary = _merged(summaries, PopulationSummary())
        if not summary.active:  # nothing to calibrate from: they score with the config as it is
            return [_answer(pipe, None, progress) for pipe in pipes], None
        tables = cut_tables(summary)
        histograms = [_answer(pipe, tables, progress) for pipe in pipes]
        calibration = calibration_of(summary, tables, _merged(histograms, ScoreHistogram()), job.as_of_day,
                                     job.config)
        return [_answer(pipe, calibration, progress) for pipe in pipes], calibration
    finally:
        _SHARED.clear()
        for pipe in pipes:
            pipe.close()  # a part still waiting (after an error here) reads the end and stops
        for child in children:
            child.join(timeout=5)
            if child.is_alive():
                child.terminate()


_STOP = "stop"


class _Progress:
    """Reports the rows the processes read since the last report."""

    def __init__(self, counter: Any, on_progress: Callable[[int], None] | None) -> None:
        self.counter, self.on_progress, self.seen = counter, on_progress, 0

    def report(self) -> None:
        if self.on_progress is not None and self.counter.value > self.seen:
            self.on_progress(self.counter.value - self.seen)
            self.seen = self.counter.value


def _merged(parts: list[Any], start: Any) -> Any:
    for part in parts:
        start = start.merge(part)
    return start


def _receive(pipe: Connection, progress: _Progress) -> Any:
    """The next message of a part (progress reported while waiting); RuntimeError when the part failed."""
    while not wait([pipe], POLL_SECONDS):
        progress.report()
    progress.report()
    try:
        kind, value = pipe.recv()
    except EOFError:
        raise RuntimeError("a replay process ended without an answer") from None
    if kind == "error":
        raise RuntimeError(f"a replay process failed: {value}")
    return value


def _answer(pipe: Connection, value: Any, progress: _Progress) -> Any:
    """Send a part what it waits for; its reply."""
    pipe.send(value)
    return _receive(pipe, progress)


def _calibrating_part(number: int, pipe: Connection) -> None:
    """In a forked process: the part's side of `_run_calibrating_parts`. Sends ("ok", value) or ("error", why)."""
    try:
        _calibrating_steps(number, pipe)
    except EOFError:  # the parent stopped (its own error): nothing to answer
        return
    except Exception as exc:  # any failure goes to the parent, which raises it
        with contextlib.suppress(OSError):
            pipe.send(("error", f"{type(exc).__name__}: {exc}"))
    finally:
        pipe.close()


def _calibrating_steps(number: int, pipe: Connection) -> None:
    job: _Job = _SHARED["job"]
    result = _PartResult()
    by_customer = _read_part(number, result)
    if by_customer is None:  # --strict stopped it: the parent then stops everyone
        pipe.send(("ok", None))
        pipe.recv()
        pipe.send(("ok", result))
        return
    states: dict[str, CustomerState] = dict(folded(by_customer, job.as_of_day, job.config, result.stats))
    del by_customer  # only the states are scored from here
    figures = [customer_figures(state, job.as_of_day, job.config) for state in states.values()]
    pipe.send(("ok", summarise(figures)))
    tables = pipe.recv()
    if tables == _STOP:
        pipe.send(("ok", result))
        return
    calibration = None
    if tables is not None:
        pipe.send(("ok", score_histogram(figures, tables, job.config.weights)))
        calibration = pipe.recv()
    config = job.config if calibration is None else job.config.calibrated(calibration)
    profiles = (Profile(c, s, evaluate(s, job.as_of_day, config, job.model)) for c, s in states.items())
    write_rows(_Lines(result.lines), profiles, job.as_of_day, result.stats, config, job.model, result.customers)
    pipe.send(("ok", result))


class _Lines:
    """A text sink that keeps each write (the csv writer writes one row per call)."""

    def __init__(self, lines: list[str]) -> None:
        self.write = lines.append


def _merge(
    parts: list[_PartResult], inputs: Inputs, out: IO[str], model: ValueModel | None,
    on_bad: Callable[[BadRow], None],
) -> ReplayStats:
    _stop_on_strict(parts, inputs)
    for row in sorted((row for p in parts for row in p.bad), key=inputs.position):
        on_bad(row)
    csv.writer(out, lineterminator="\n").writerow(header(model))
    merged = heapq.merge(*(zip(p.customers, p.lines, strict=True) for p in parts))
    out.writelines(line for _, line in merged)
    total = ReplayStats()
    for part in parts:
        total.add(part.stats)
    return total


def _stop_on_strict(parts: list[_PartResult], inputs: Inputs) -> None:
    stopped = [p.strict for p in parts if p.strict is not None]
    if stopped:  # every part read in file order up to its first bad row: the earliest is the file's first
        raise StrictError(min(stopped, key=inputs.position))


