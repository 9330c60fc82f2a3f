"""Offline replay: a history through the same core the stream uses.

Default (batch rescore): each customer's events are folded, then evaluated
once as of the end of the as-of day; tiers are assigned fresh, as a nightly
job would, but far faster. `exact=True` steps event by event in file order
with the event-time clock, exactly as the stream does on the same history:
time-driven reviews between events, hysteresis along the path, and every
output the stream would send (written with `decisions_out`).
"""

from __future__ import annotations

import contextlib
import csv
import gc
import json
import time
from collections import Counter
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import IO, TYPE_CHECKING, NamedTuple, Protocol

from scoring.btyd import btyd_summary
from scoring.config import ScoringConfig
from scoring.events import MS_PER_DAY, CoreEvent
from scoring.fold import fold
from scoring.state import NEW_STATE, CustomerState
from scoring.step import Evaluation, StepResult, evaluate, step, value_of
from streams.convert import OutputContext, decision_message, model_fields, snapshot_message
from streams.history import BadRow, Row

if TYPE_CHECKING:
    from scoring.valuemodel.model import ValueModel

COLUMNS = (
    "customer_id", "tier", "score", "r_score", "f_score", "m_score", "recency_days", "frequency", "monetary",
    "returns_amount", "complaints", "tenure_days", "segment", "at_risk", "at_risk_score",
    "x", "t_x", "T", "mean_repeat_value",
)
UNBOUNDED_DEDUPE_DAYS = 1_000_000
MODEL_COLUMNS = ("p_alive", "expected_purchases_90", "expected_purchases_365", "clv")
PROGRESS_EVERY = 10_000  # rows between two progress reports


class StrictError(Exception):
    """A bad row under --strict."""

    def __init__(self, row: BadRow) -> None:
        super().__init__(f"line {row.line}: {row.reason}")
        self.row = row


@dataclass
class ReplayStats:
    rows: int = 0
    bad: int = 0
    after_as_of: int = 0
    duplicates: int = 0
    rejected: int = 0
    customers: int = 0
    tiers: Counter[str] = field(default_factory=Counter)
    seconds: float = 0.0

    def add(self, other: ReplayStats) -> None:
        """Count `other`'s rows, customers and tiers in (the parts of a parallel replay)."""
        self.rows += other.rows
        self.bad += other.bad
        self.after_as_of += other.after_as_of
        self.duplicates += other.duplicates
        self.rejected += other.rejected
        self.customers += other.customers
        self.tiers.update(other.tiers)

    @property
    def rows_per_s(self) -> float:
        return self.rows / self.seconds if self.seconds else 0.0


class Profile(NamedTuple):
    """A customer's replayed state and its evaluation as of the replay's day."""

    customer_id: str
    state: CustomerState
    evaluation: Evaluation


def end_of_day_ms(as_of_day: int) -> int:
    """The last millisecond of epoch day `as_of_day`: the replay's `now`."""
    return (as_of_day + 1) * MS_PER_DAY - 1


def group_rows(
    rows: Iterable[Row | BadRow], as_of_day: int, stats: ReplayStats, strict: bool,
    on_bad: Callable[[BadRow], None], on_progress: Callable[[int], None] | None = None,
) -> dict[str, list[CoreEvent]]:
    """Customer -> events in file order; counts and reports what is left out.

    `on_progress(n)` hears every `PROGRESS_EVERY` rows that n more were read.
    """
    limit = end_of_day_ms(as_of_day)
    by_customer: dict[str, list[CoreEvent]] = {}
    read = later = 0
    for item in rows:
        read += 1
        if on_progress is not None and not read % PROGRESS_EVERY:
            on_progress(PROGRESS_EVERY)
        if isinstance(item, BadRow):
            stats.bad += 1
            if strict:
                stats.rows += read
                raise StrictError(item)
            on_bad(item)
            continue
        _, customer, event = item
        if event.at_ms > limit:
            later += 1
            continue
        events = by_customer.get(customer)
        if events is None:
            by_customer[customer] = [event]
        else:
            events.append(event)
    stats.rows += read
    stats.after_as_of += later
    return by_customer


def profiles_batch(
    by_customer: dict[str, list[CoreEvent]], as_of_day: int, config: ScoringConfig, stats: ReplayStats,
    model: ValueModel | None = None,
) -> Iterator[Profile]:
    """Fold each customer's events, evaluate once at the as-of day."""
    now = end_of_day_ms(as_of_day)
    for customer in sorted(by_customer):
        events = by_customer[customer]
        state, applied, rejected = fold(NEW_STATE, events, now, config)
        stats.rejected += len(rejected)
        stats.duplicates += len(events) - applied - len(rejected)
        if applied:  # a customer none of whose events could be applied does not exist (as in the stream)
            yield Profile(customer, state, evaluate(state, as_of_day, config, model))


def profiles_exact(
    by_customer: dict[str, list[CoreEvent]], as_of_day: int, config: ScoringConfig, stats: ReplayStats,
    sink: IO[str] | None = None, model: ValueModel | None = None,
) -> Iterator[Profile]:
    """Step each customer event by event with the event-time clock, as the stream does."""
    now = end_of_day_ms(as_of_day)
    for customer in sorted(by_customer):
        state = NEW_STATE
        for event in by_customer[customer]:
            result = step(state, event, event.at_ms, customer, config, model=model)
            stats.rejected += result.outcome == "rejected"
            stats.duplicates += result.outcome == "duplicate"
            state = result.state
            _write_outputs(sink, customer, result, config, model)
        if state is NEW_STATE:  # every event was rejected: the stream never creates this customer
            continue
        result = step(state, None, now, customer, config, model=model)
        _write_outputs(sink, customer, result, config, model)
        assert result.evaluation is not None
        yield Profile(customer, result.state, result.evaluation)


def _write_outputs(
    sink: IO[str] | None, customer: str, result: StepResult, config: ScoringConfig, model: ValueModel | None,
) -> None:
    """The output messages a step causes, as the stream would send them (emitted_at = event time)."""
    state, ev = result.state, result.evaluation
    if sink is None or not result.decisions or ev is None:
        return
    ctx = OutputContext(customer, config.version, datetime.fromtimestamp(state.clock_ms / 1000, tz=UTC),
                        model.version if model else None)
    value = value_of(state, ev.score.day, config, model)
    for decision in result.decisions:
        message = decision_message(decision, ctx)
        if message is None:
            message = snapshot_message(decision, result, ev, state, ctx, value, config, model)
        if message is not None:
            doc = {"type": type(message).__name__, **message.model_dump(mode="json")}
            sink.write(json.dumps(doc, separators=(",", ":")) + "\n")


def profile_row(p: Profile, as_of_day: int, config: ScoringConfig, model: ValueModel | None) -> list[object]:
    s, ev = p.evaluation.score, p.evaluation
    summary = btyd_summary(p.state, as_of_day)
    btyd: list[object] = ["", "", "", ""] if summary is None else [
        summary.x, summary.t_x, summary.T, round(summary.mean_repeat_value, 6) if summary.x else 0.0]
    extra: list[object] = []
    if model is not None:
        figures = model_fields(value_of(p.state, as_of_day, config, model))
        extra = ["" if figures[name] is None else figures[name] for name in MODEL_COLUMNS]
    return [
        p.customer_id, ev.tier, s.composite, s.r, s.f, s.m, "" if s.recency_days is None else s.recency_days,
        s.frequency, f"{s.monetary:.2f}", f"{s.returns_amount:.2f}", s.complaints,
        "" if s.tenure_days is None else s.tenure_days, ev.segment, int(ev.risk.is_at_risk), ev.risk.score,
        *btyd, *extra,
    ]


def write_profiles(
    out: IO[str], profiles: Iterable[Profile], as_of_day: int, stats: ReplayStats, config: ScoringConfig,
    model: ValueModel | None = None,
) -> None:
    """The header, then one row per profile."""
    csv.writer(out, lineterminator="\n").writerow(header(model))
    write_rows(out, profiles, as_of_day, stats, config, model)


class TextSink(Protocol):
    def write(self, text: str, /) -> object: ...


def write_rows(
    out: TextSink, profiles: Iterable[Profile], as_of_day: int, stats: ReplayStats, config: ScoringConfig,
    model: ValueModel | None, customers: list[str] | None = None,
) -> None:
    """One CSV row per profile; the customer of each row is appended to `customers` when given."""
    writer = csv.writer(out, lineterminator="\n")
    tiers = stats.tiers
    for p in profiles:
        stats.customers += 1
        tiers[p.evaluation.tier] += 1
        writer.writerow(profile_row(p, as_of_day, config, model))
        if customers is not None:
            customers.append(p.customer_id)


def run_replay(
    rows: Iterable[Row | BadRow], as_of_day: int, config: ScoringConfig, out: IO[str], *,
    strict: bool = False, exact: bool = False, decisions_out: IO[str] | None = None,
    on_bad: Callable[[BadRow], None] = lambda _: None, model: ValueModel | None = None,
    on_progress: Callable[[int], None] | None = None,
) -> ReplayStats:
    """Replay `rows` in this process and write one CSV row per customer to `out`.

    (`streams.replay_parallel.replay_inputs` also runs a batch replay of files in several.)
    """
    stats = ReplayStats()
    started = time.perf_counter()
    with no_cyclic_gc():
        _replay(rows, as_of_day, config, out, stats, strict, exact, decisions_out, on_bad, model, on_progress)
    stats.seconds = time.perf_counter() - started
    return stats


@contextlib.contextmanager
def no_cyclic_gc() -> Iterator[None]:
    """A batch makes acyclic values only: the cyclic collector would just re-scan them (~15 % of the
    time), and in a forked process it would copy every page it touched."""
    paused = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if paused:
            gc.enable()


def _replay(
    rows: Iterable[Row | BadRow], as_of_day: int, config: ScoringConfig, out: IO[str], stats: ReplayStats,
    strict: bool, exact: bool, decisions_out: IO[str] | None, on_bad: Callable[[BadRow], None],
    model: ValueModel | None, on_progress: Callable[[int], None] | None,
) -> None:
    config = offline(config)
    by_customer = group_rows(rows, as_of_day, stats, strict, on_bad, on_progress)
    if exact:
        profiles = profiles_exact(by_customer, as_of_day, config, stats, decisions_out, model)
    else:
        profiles = profiles_batch(by_customer, as_of_day, config, stats, model)
    write_profiles(out, profiles, as_of_day, stats, config, model)


def offline(config: ScoringConfig) -> ScoringConfig:
    """The config of a replay: the state is transient, so every event id is remembered, however old
    (the stream bounds that memory with `dedupe_days`)."""
    return config.model_copy(update={"dedupe_days": UNBOUNDED_DEDUPE_DAYS})


def header(model: ValueModel | None) -> tuple[str, ...]:
    """The output's columns."""
    return COLUMNS + (MODEL_COLUMNS if model is not None else ())
