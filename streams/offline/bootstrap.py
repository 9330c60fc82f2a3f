"""Build every customer's live state from a history file: what a worker holds after a backfill.

`tierstream bootstrap` writes what this builds to the table's changelog, the scores topic and Redis
(`streams.serving.bootstrap`); here nothing touches Kafka or Redis.

The history is read in columns (`streams.offline.columnar`: the batch replay's reader, so the same rows
and the same bad-row reports). The state itself is the core's, step by step: a worker's state is more
than the order-free figures a batch fold computes (the dedupe ids, the tier kept by hysteresis and since
when, the last outputs per cause, open outcome windows, the next review day), and each of those depends
on the path, so each customer's events are stepped by `scoring.step` in the event clock's order (time,
then event id; file order among equals), each as of its own time, exactly as a worker with
`clock: event` steps them, with the workers' own config (the calibration, evidence and value model
files they read). The customers are split over processes by partition.

Then time: a worker's sweep reviews each partition's customers up to the end of the day before that
partition's latest event (its event clock, `streams.worker.clock.EventOrder.sweep_now_ms`, once every
input is quiet), each due review as of its own day (`scoring.step.due_reviews`). The states here are
reviewed the same way, so they are the states a worker holds in memory after consuming the history; a
worker started on them rebuilds its deadline index and its partitions' event clocks from them.

What each customer gives: its canonical partition, its state's bytes (`scoring.codec`; None: forgotten,
a tombstone), the score snapshot and Redis profile of its last published evaluation (what the
worker's last flush of it wrote), and its frequency-cap sets (`scoring.frequency_caps`): the worker checks
each action it sends against them and records the sends a cap allows (`streams.caps`), so the build plays the
same checks on the actions of the same steps, in the same order (a customer's steps are in one order on
any worker; other customers' checks touch other keys), and a step that leaves no state (the customer
forgotten) deletes them, as the worker's flush of its tombstone does. (A worker deletes them when it writes
the tombstone, a moment later: should the customer come back and be sent an action before that, the worker's
sets depend on that moment; here they are those of a worker that wrote it in between. A customer forgotten
by retention at its next event keeps a state throughout, and its sets, on both.)

Refused as a worker refuses them, before any clock moves (reported with the bad rows, never in a state):
events more than `max_future_ms` after now, and events more than `max_jump_ms` (`event_clock_max_jump_days`)
after the latest event time seen before them. A worker's "latest seen" is the latest time of the events it
accepted, in the order it read them; here that order is the file order (the inputs in order, each in line
order), the order `tierstream backfill` produces them in. A worker reading several partitions interleaves
them as its fetches come, and several workers each have their own latest time, and a restarted worker starts
again from none: the two agree whenever the history is in time order but for the far-off events (then every
order refuses the same), not always on a history whose order is far from time order.
"""

from __future__ import annotations

import multiprocessing as mp
import os
import time
from collections.abc import Callable
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import polars as pl

from scoring.codec import encode_state
from scoring.config import FrequencyCap, ScoringConfig
from scoring.decisions import ActionRequest, ScoreChanged
from scoring.events import MS_PER_DAY, CoreEvent, from_ms
from scoring.state import NEW_STATE, CustomerState
from scoring.step import StepResult, due_reviews, step, value_of
from streams.caps import CapSet, cap_check, checked_cap
from streams.offline.batchfold import core_events
from streams.offline.columnar import read_columns
from streams.offline.history import BadRow, Inputs
from streams.offline.replay import event_order
from streams.partitioning import canonical_partition
from streams.profile import profile_of

if TYPE_CHECKING:
    from scoring.valuemodel.model import ValueModel

FUTURE_REASON = "occurred more than scoring.max_future_seconds after now (a worker dead-letters it)"
JUMP_REASON = ("occurred more than event_clock_max_jump_days ({days:g}) after the latest event time seen before it "
               "(a worker with clock: event dead-letters it)")
MAX_PROCESSES = 8
PARALLEL_MIN_EVENTS = 20_000  # below this one process is as fast as forking


@dataclass(frozen=True, slots=True)
class Built:
    """One customer's live state: partition, state bytes (None: forgotten, a tombstone), and its last published
    score snapshot (the `CustomerScore` JSON) and Redis profile fields (None: nothing published), and the sends
    its frequency-cap sets hold: (action type, action id, epoch seconds sent), by type then id."""

    customer: str
    partition: int
    state: bytes | None
    snapshot: bytes | None
    profile: dict[str, Any] | None
    caps: tuple[tuple[str, str, float], ...] = ()


@dataclass
class BuildStats:
    """What the build read and did. `review_days`: partition -> the last day its customers are reviewed to."""

    rows: int = 0
    bad: int = 0
    future: int = 0
    jumped: int = 0  # beyond event_clock_max_jump_days
    events: int = 0
    applied: int = 0
    duplicates: int = 0
    rejected: int = 0
    forgotten: int = 0
    customers: int = 0
    review_days: dict[int, int] = field(default_factory=dict)
    processes: int = 1
    seconds: float = 0.0

    def add(self, other: BuildStats) -> None:
        self.applied += other.applied
        self.duplicates += other.duplicates
        self.rejected += other.rejected
        self.forgotten += other.forgotten


def build(
    inputs: Inputs, config: ScoringConfig, partitions: int, wall_ms: int, *, max_future_ms: int,
    max_jump_ms: int | None = None, model: ValueModel | None = None, on_bad: Callable[[BadRow], None] = lambda _: None,
    on_progress: Callable[[int], None] | None = None, jobs: int | None = None,
) -> tuple[list[Built], BuildStats]:
    """Every customer of `inputs` as a worker with `clock: event` holds it after consuming them (see the module
    docstring), in (partition, customer) order. `wall_ms`: now (events later than `max_future_ms` after it are
    left out, as a worker dead-letters them; and with `max_jump_ms`, those later than that after the latest time
    seen before them). Raises HistoryError as the readers do."""
    started = time.perf_counter()
    stats = BuildStats()
    read = read_columns(inputs, on_progress)
    stats.rows, stats.bad = read.events.height + len(read.bad), len(read.bad)
    for row in read.bad:
        on_bad(row)
    events = read.events
    future = events.filter(pl.col("at_ms") > wall_ms + max_future_ms)
    for src, line in future.select("src", "line").iter_rows():
        on_bad(BadRow(line, FUTURE_REASON, "", str(inputs.paths[src])))
    stats.future = future.height
    events = events.filter(pl.col("at_ms") <= wall_ms + max_future_ms)
    if max_jump_ms is not None:
        jumped = jumps(events.get_column("at_ms"), max_jump_ms)
        reason = JUMP_REASON.format(days=max_jump_ms / MS_PER_DAY)
        for src, line in events.filter(jumped).select("src", "line").iter_rows():
            on_bad(BadRow(line, reason, "", str(inputs.paths[src])))
        stats.jumped = int(jumped.sum())
        events = events.filter(~jumped)
    stats.events = events.height
    if events.height == 0:
        stats.seconds = time.perf_counter() - started
        return [], stats
    names = events.get_column("customer").unique()
    owners = pl.DataFrame({"customer": names, "partition": [canonical_partition(c, partitions) for c in names]},
                          schema={"customer": pl.String, "partition": pl.Int64})
    events = events.join(owners, on="customer", how="left", maintain_order="left")
    latest = events.group_by("partition").agg(pl.col("at_ms").max())
    # the sweep's `now` on each partition: the end of the day before its latest event (`EventOrder.sweep_now_ms`)
    stats.review_days = {p: at_ms // MS_PER_DAY - 1 for p, at_ms in latest.iter_rows()}
    parts = [_customers(events.filter(pl.col("partition").is_in(mine))) for mine in _parts(events, partitions, jobs)]
    stats.processes = len(parts)
    built: list[Built] = []
    if len(parts) == 1:
        built, part_stats = _build_part(parts[0], stats.review_days, config, model)
        stats.add(part_stats)
    else:
        # Forked processes only step Python objects: Polars' thread pool does not survive a fork (a Polars call
        # in the child can wait forever on a lock one of the parent's threads held), so the columns are turned
        # into each part's events here, before the fork, and the children inherit them (nothing is pickled in).
        _SHARED["build"] = (parts, stats.review_days, config, model)
        try:
            with ProcessPoolExecutor(len(parts), mp_context=mp.get_context("fork")) as pool:
                for out, part_stats in pool.map(_build_forked, range(len(parts))):
                    built.extend(out)
                    stats.add(part_stats)
        finally:
            _SHARED.clear()
    built.sort(key=lambda b: (b.partition, b.customer))
    stats.customers = sum(b.state is not None for b in built)
    stats.seconds = time.perf_counter() - started
    return built, stats


def jumps(at_ms: pl.Series, max_jump_ms: int) -> pl.Series:
    """Which events (times in ms, in the order a worker reads them) a worker with `clock: event` refuses: those
    later than `max_jump_ms` after the latest time of the events before them it accepted (the first is
    accepted; a refused one moves nothing: `streams.worker.handler.Handler.refusal`, `EventOrder.saw`)."""
    before = at_ms.cum_max().shift(1)  # the latest of all the events before: exact up to the first refusal
    naive = (at_ms > before + max_jump_ms).fill_null(False)
    if not naive.any():
        return naive
    first = int(naive.arg_true()[0])
    out = [False] * first
    latest: int = before[first]  # (never null: the first event is never refused)
    for at in at_ms.slice(first).to_list():
        refused = at > latest + max_jump_ms
        out.append(refused)
        if not refused and at > latest:
            latest = at
    return pl.Series(out, dtype=pl.Boolean)


Customers = dict[str, tuple[int, list[CoreEvent]]]  # customer -> (partition, its events in file order)
_SHARED: dict[str, tuple[list[Customers], dict[int, int], ScoringConfig, ValueModel | None]] = {}  # for the forks


def _parts(events: pl.DataFrame, partitions: int, jobs: int | None) -> list[list[int]]:
    """The partitions each process builds (round robin); one process for a small history or without fork."""
    if jobs is None:
        cpus = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1
        jobs = min(MAX_PROCESSES, cpus) if events.height >= PARALLEL_MIN_EVENTS else 1
    jobs = max(1, min(jobs, partitions))
    if "fork" not in mp.get_all_start_methods():
        jobs = 1
    return [list(range(i, partitions, jobs)) for i in range(jobs)]


def _customers(events: pl.DataFrame) -> Customers:
    """The customers of `events` (a `streams.offline.columnar` table with a `partition` column) and their events."""
    owner = dict(events.select("customer", "partition").unique().iter_rows())
    return {customer: (owner[customer], mine) for customer, mine in core_events(events).items()}


def _build_forked(part: int) -> tuple[list[Built], BuildStats]:
    parts, review_days, config, model = _SHARED["build"]
    return _build_part(parts[part], review_days, config, model)


def _build_part(
    customers: Customers, review_days: dict[int, int], config: ScoringConfig, model: ValueModel | None,
) -> tuple[list[Built], BuildStats]:
    stats = BuildStats()
    out: list[Built] = []
    for customer, (partition, mine) in customers.items():
        state, last, caps = _stepped(customer, mine, review_days[partition], config, model, stats)
        if state is not NEW_STATE:  # NEW_STATE: no event of it applied, a worker stores nothing
            out.append(_built(customer, partition, state, last, caps, config, model))
    return out, stats


def _stepped(
    customer: str, events: list[CoreEvent], review_day: int, config: ScoringConfig, model: ValueModel | None,
    stats: BuildStats,
) -> tuple[CustomerState | None, StepResult | None, dict[str, CapSet]]:
    """The customer's state after its events and the sweep's reviews (None: forgotten; NEW_STATE: none of its
    events applied), the last step that published an evaluation (what the worker last flushed of it), and its
    frequency-cap sets (action type -> its set) after the checks of the actions its steps sent."""
    state: CustomerState | None = NEW_STATE
    last: StepResult | None = None
    caps = config.frequency_caps
    sent: dict[str, CapSet] = {}
    existed = False
    for event in sorted(events, key=event_order):
        result = step(state or NEW_STATE, event, event.at_ms, customer, config, model=model)
        stats.applied += result.outcome == "applied"
        stats.duplicates += result.outcome == "duplicate"
        stats.rejected += result.outcome == "rejected"
        if caps:
            _checked(result, caps, sent)
        state, last = _after(result, state, last, stats)
        existed = existed or result.outcome != "rejected"
    if not existed:
        return NEW_STATE, None, {}
    if state is not None and state is not NEW_STATE:
        for result in due_reviews(state, review_day, customer, config, model=model):
            if caps:
                _checked(result, caps, sent)
            state, last = _after(result, state, last, stats)
            if state is None:
                break
    return (None if state is NEW_STATE else state), last, sent


def _checked(result: StepResult, caps: dict[str, FrequencyCap], sent: dict[str, CapSet]) -> None:
    """The worker's cap checks of the actions `result` sends, in its decisions' order (a rejected or duplicate
    step sends nothing: `Handler._step_event`); a step that leaves no state (forgotten) then has the customer's
    cap keys deleted, as the flush of its tombstone does (`RedisView._write`)."""
    if result.outcome in ("rejected", "duplicate"):
        return
    for d in result.decisions:
        if isinstance(d, ActionRequest) and (cap := checked_cap(d, caps)) is not None:
            cap_check(sent.setdefault(d.action_type, {}), d.id, d.at_ms / 1000, cap)
    if result.state is None:
        sent.clear()


def _after(
    result: StepResult, state: CustomerState | None, last: StepResult | None, stats: BuildStats,
) -> tuple[CustomerState | None, StepResult | None]:
    if result.outcome == "rejected":
        return state, last
    published = False
    for d in result.decisions:  # (one pass: this runs on every step)
        if d.kind == "forgotten":
            stats.forgotten += not result.resent
        elif isinstance(d, ScoreChanged):
            published = True
    published = published and result.evaluation is not None
    if result.state is None:
        return None, None
    return result.state, (result if published else last)


def _built(
    customer: str, partition: int, state: CustomerState | None, last: StepResult | None, sent: dict[str, CapSet],
    config: ScoringConfig, model: ValueModel | None,
) -> Built:
    if state is None:
        return Built(customer, partition, None, None, None)
    caps = tuple((kind, action, at) for kind in sorted(sent) for action, at in sorted(sent[kind].items()))
    snapshot = profile = None
    if last is not None and last.state is not None and last.evaluation is not None:
        decision = next(d for d in last.decisions if isinstance(d, ScoreChanged))
        shown, ev = last.state, last.evaluation  # as the worker's flush renders it (`Handler._snapshot`)
        value = value_of(shown, ev.score.day, config, model)
        published = profile_of(customer, shown, ev, config, model.version if model else None, value)
        snapshot = published.message_json(decision.id, decision.cause, decision.at_ms, from_ms(shown.clock_ms))
        profile = published.redis_fields()
    return Built(customer, partition, encode_state(state), snapshot, profile, caps)
