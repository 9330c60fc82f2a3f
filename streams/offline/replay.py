"""Offline replay: a history through the same core the stream uses.

Default (batch rescore): each customer's events are folded, then evaluated
once as of the end of the as-of day; tiers are assigned fresh, as a nightly
job would, but far faster. Retention and erasure requests (`scoring.retention`)
leave out a customer forgotten by then, and the events before a customer's
last forget (`surviving`). `exact=True` steps event by event in file order
with the event-time clock, exactly as the stream does on the same history:
time-driven reviews between events, hysteresis along the path, and every
output the stream would send (written with `decisions_out`).

Calibrated tiering (the default) scores with the calibration it is given; without
one it calibrates from its own input (the customers' states at the end of the
as-of day, `scoring.calibrate`) and says so in its summary. `--exact` uses that
one calibration for every step, as a worker given the same file does.
"""

from __future__ import annotations

import contextlib
import csv
import gc
import time
from collections import Counter
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import IO, TYPE_CHECKING, NamedTuple, Protocol

from schemas.base import Message
from scoring.btyd import btyd_summary
from scoring.calibrate import calibrate
from scoring.calibration import Calibration
from scoring.concentration import revenue_e4
from scoring.config import ScoringConfig
from scoring.errors import CalibrationError
from scoring.events import MS_PER_DAY, CoreEvent, Kind
from scoring.fold import check_event, fold
from scoring.money import SCALE, money_text
from scoring.retention import surviving
from scoring.state import NEW_STATE, CustomerState
from scoring.step import Evaluation, StepResult, due_reviews, evaluate, step, value_of
from streams.convert import OutputContext, decision_message
from streams.offline.history import EMPTY_CUSTOMER, BadRow, Row
from streams.profile import MODEL_FIELDS, profile_of

if TYPE_CHECKING:
    from scoring.valuemodel.model import ValueModel

COLUMNS = (
    "customer_id", "tier", "score", "r_score", "f_score", "m_score", "recency_days", "frequency", "monetary",
    "returns_amount", "complaints", "tenure_days", "segment", "at_risk", "at_risk_score",
    "x", "t_x", "T", "mean_repeat_value",
    "potential", "value_potential_cell", "satisfaction", "proposition", "proposition_category",
)
UNBOUNDED_DEDUPE_DAYS = 1_000_000
MODEL_COLUMNS = MODEL_FIELDS
PROGRESS_EVERY = 10_000  # rows between two progress reports
GROUPED_REASONS = frozenset({EMPTY_CUSTOMER})  # reported as one line with a count, not row by row
FIRST_LINES = 5  # line numbers a grouped report shows


class StrictError(Exception):
    """A bad row under --strict."""

    def __init__(self, row: BadRow) -> None:
        super().__init__(f"line {row.line}: {row.reason}")
        self.row = row


@dataclass
class ReplayStats:
    """What a replay read, left out and wrote. `active` and `revenue` are per tier: customers with a purchase
    in the window, and net purchases (cents) in the 365 days to the as-of day (`scoring.concentration`).
    `grouped` holds the bad rows of `GROUPED_REASONS` (reason -> count and the first few), reported as one
    line each. `calibration` is the one scored with; `calibrated_from` says where it came from: "file",
    "history" (the replay's own input), "none" (calibrated tiering but no active customer to calibrate from)
    or "" (absolute tiering)."""

    rows: int = 0
    bad: int = 0
    after_as_of: int = 0
    duplicates: int = 0
    rejected: int = 0
    forgotten: int = 0
    customers: int = 0
    tiers: Counter[str] = field(default_factory=Counter)
    active: Counter[str] = field(default_factory=Counter)
    revenue: Counter[str] = field(default_factory=Counter)
    grouped: dict[str, tuple[int, list[BadRow]]] = field(default_factory=dict)
    calibration: Calibration | None = None
    calibrated_from: str = ""
    seconds: float = 0.0

    def add(self, other: ReplayStats) -> None:
        """Count `other`'s rows, customers and tiers in (the parts of a parallel replay)."""
        self.rows += other.rows
        self.bad += other.bad
        self.after_as_of += other.after_as_of
        self.duplicates += other.duplicates
        self.rejected += other.rejected
        self.forgotten += other.forgotten
        self.customers += other.customers
        self.tiers.update(other.tiers)
        self.active.update(other.active)
        self.revenue.update(other.revenue)
        for reason, (count, first) in other.grouped.items():
            mine, rows = self.grouped.get(reason, (0, []))
            self.grouped[reason] = (mine + count, rows + first)  # each part keeps its first few

    def group(self, row: BadRow) -> None:
        """Count a bad row of a grouped reason (and keep it when among the first few)."""
        count, first = self.grouped.get(row.reason, (0, []))
        if len(first) < FIRST_LINES:
            first.append(row)
        self.grouped[row.reason] = (count + 1, first)

    @property
    def grouped_rows(self) -> int:
        return sum(count for count, _ in self.grouped.values())

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
            if item.reason in GROUPED_REASONS:
                stats.group(item)
            else:
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


def folded(
    by_customer: dict[str, list[CoreEvent]], as_of_day: int, config: ScoringConfig, stats: ReplayStats,
) -> Iterator[tuple[str, CustomerState]]:
    """Each customer's state at the end of the as-of day, in customer order; counts what is left out."""
    now = end_of_day_ms(as_of_day)
    retains = config.retention.forget_after_days is not None
    for customer in sorted(by_customer):
        events = by_customer[customer]
        if retains or any(e.kind is Kind.ERASURE for e in events):
            kept, forgets = surviving(sorted(events, key=event_order), as_of_day, config)
            # the events forgotten with the customer: those the core refuses whatever the state are still counted
            gone = set(events) - set(kept)
            stats.rejected += sum(1 for e in gone if e.kind is not Kind.ERASURE and check_event(e, now, config))
            stats.forgotten += forgets
            events = kept
            if not events:  # forgotten by the end of the as-of day (as in the stream)
                continue
        state, applied, rejected = fold(NEW_STATE, events, now, config)
        stats.rejected += len(rejected)
        stats.duplicates += len(events) - applied - len(rejected)
        if applied:  # a customer none of whose events could be applied does not exist (as in the stream)
            yield customer, state


def population(
    rows: Iterable[Row | BadRow], as_of_day: int, config: ScoringConfig, stats: ReplayStats,
    on_bad: Callable[[BadRow], None] = lambda _: None,
) -> dict[str, CustomerState]:
    """Every customer's state at the end of the as-of day (what `calibrate` and `fit` calibrate from)."""
    return dict(folded(group_rows(rows, as_of_day, stats, False, on_bad), as_of_day, offline(config), stats))


def profiles_batch(
    by_customer: dict[str, list[CoreEvent]], as_of_day: int, config: ScoringConfig, stats: ReplayStats,
    model: ValueModel | None = None,
) -> Iterator[Profile]:
    """Fold each customer's events, evaluate once at the as-of day."""
    for customer, state in folded(by_customer, as_of_day, config, stats):
        yield Profile(customer, state, evaluate(state, as_of_day, config, model))


def scoring_config(
    config: ScoringConfig, calibration: Calibration | None, stats: ReplayStats,
    population: Callable[[], Iterable[CustomerState]], as_of_day: int,
) -> ScoringConfig:
    """The config a replay scores with, and (in `stats`) which calibration and where it came from.

    Calibrated tiering: `calibration` when given, else one computed from `population()` (the replay's
    customers at the end of the as-of day); with no active customer to calibrate from, the absolute cut
    points (as a worker without a calibration). Absolute tiering: `config` as it is.
    """
    if config.tiering != "calibrated":
        return config
    source = "file"
    if calibration is None:
        try:
            calibration, source = calibrate(population(), as_of_day, config), "history"
        except CalibrationError:
            stats.calibrated_from = "none"
            return config
    stats.calibration, stats.calibrated_from = calibration, source
    return config.calibrated(calibration)


def profiles_exact(
    by_customer: dict[str, list[CoreEvent]], as_of_day: int, config: ScoringConfig, stats: ReplayStats,
    sink: IO[str] | None = None, model: ValueModel | None = None,
) -> Iterator[Profile]:
    """Step each customer event by event with the event-time clock, as the stream does."""
    now = end_of_day_ms(as_of_day)
    for customer in sorted(by_customer):
        state = NEW_STATE
        for event in sorted(by_customer[customer], key=event_order):
            result = step(state, event, event.at_ms, customer, config, model=model)
            stats.rejected += result.outcome == "rejected"
            stats.duplicates += result.outcome == "duplicate"
            state = _kept(result, stats)
            _write_outputs(sink, customer, result, config, model)
        if state is NEW_STATE:  # every event was rejected (or it was forgotten): the stream has no such customer
            continue
        for result in due_reviews(state, as_of_day, customer, config, model=model):  # the stream's sweep
            _write_outputs(sink, customer, result, config, model)
            state = _kept(result, stats)
        if state is NEW_STATE:
            continue
        result = step(state, None, now, customer, config, model=model)  # the profile as of the day
        if result.evaluation is None or result.state is None:  # reviewed on that very day already
            yield Profile(customer, state, evaluate(state, as_of_day, config, model))
        else:
            yield Profile(customer, result.state, result.evaluation)


def _kept(result: StepResult, stats: ReplayStats) -> CustomerState:
    """The state a step leaves (a forgotten customer's: none, NEW_STATE); counts the customers forgotten."""
    stats.forgotten += sum(d.kind == "forgotten" for d in result.decisions) if not result.resent else 0
    return NEW_STATE if result.state is None else result.state


def event_order(event: CoreEvent) -> tuple[int, str]:
    """The order a customer's events are stepped in, here and by the stream with the event clock."""
    return event.at_ms, event.event_id


def step_messages(
    customer: str, result: StepResult, config: ScoringConfig, model: ValueModel | None,
) -> list[Message]:
    """The output messages a step causes, as the stream sends them (emitted_at = the state's clock)."""
    state, ev = result.state, result.evaluation
    if not result.decisions or (ev is None and state is not None):  # none, or a resend (sent already)
        return []
    emitted = datetime.fromtimestamp(result.clock_ms / 1000, tz=UTC)
    ctx = OutputContext(customer, config.version, emitted, model.version if model else None,
                        config.calibration.version if config.calibration else None)
    messages: list[Message] = []
    for decision in result.decisions:
        message = decision_message(decision, ctx)
        if message is None:  # the step's score snapshot: its final state
            if state is None or ev is None:
                continue  # (a forget's step has none)
            value = value_of(state, ev.score.day, config, model)
            profile = profile_of(customer, state, ev, config, model.version if model else None, value,
                                 model.affinity if model else None)
            message = profile.message(decision.id, decision.cause, decision.at_ms, emitted)
        messages.append(message)
    return messages


def _write_outputs(
    sink: IO[str] | None, customer: str, result: StepResult, config: ScoringConfig, model: ValueModel | None,
) -> None:
    if sink is None:
        return
    for message in step_messages(customer, result, config, model):
        sink.write(message.model_dump_json() + "\n")  # outputs carry their `type` tag, as on the topics


def profile_row(p: Profile, as_of_day: int, config: ScoringConfig, model: ValueModel | None) -> list[object]:
    """The CSV row of a replayed customer: the shared profile record's fields, then the BTYD summary."""
    value = value_of(p.state, as_of_day, config, model) if model is not None else None
    prof = profile_of(p.customer_id, p.state, p.evaluation, config, None, value, model.affinity if model else None)
    summary = btyd_summary(p.state, as_of_day)
    btyd: list[object] = ["", "", "", ""] if summary is None else [
        summary.x, summary.t_x, summary.T, round(summary.mean_repeat_value, 6) if summary.x else 0.0]
    extra = ["" if prof.model[name] is None else prof.model[name] for name in MODEL_COLUMNS] if model else []
    o = prof.offering_fields()
    offer = [o["potential"], o["value_potential_cell"], o["satisfaction"], o["proposition"],
             o["proposition_category"] or ""]
    return [
        prof.customer_id, prof.tier, prof.score, prof.r_score, prof.f_score, prof.m_score,
        "" if prof.recency_days is None else prof.recency_days, prof.frequency,
        money_text(round(prof.monetary * SCALE)), money_text(round(prof.returns_amount * SCALE)),
        prof.complaints, "" if prof.tenure_days is None else prof.tenure_days,
        prof.segment, int(prof.at_risk), prof.at_risk_score, *btyd, *offer, *extra,
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
    tiers, active, revenue = stats.tiers, stats.active, stats.revenue
    for p in profiles:
        stats.customers += 1
        tier = p.evaluation.tier
        tiers[tier] += 1
        if p.evaluation.score.frequency:
            active[tier] += 1
        revenue[tier] += revenue_e4(p.state, as_of_day)
        writer.writerow(profile_row(p, as_of_day, config, model))
        if customers is not None:
            customers.append(p.customer_id)


def run_replay(
    rows: Iterable[Row | BadRow], as_of_day: int, config: ScoringConfig, out: IO[str], *,
    strict: bool = False, exact: bool = False, decisions_out: IO[str] | None = None,
    on_bad: Callable[[BadRow], None] = lambda _: None, model: ValueModel | None = None,
    on_progress: Callable[[int], None] | None = None, calibration: Calibration | None = None,
) -> ReplayStats:
    """Replay `rows` in this process and write one CSV row per customer to `out`.

    Calibrated tiering scores with `calibration`, or calibrates from the rows (see `scoring_config`).
    (`streams.offline.parallel.replay_inputs` also runs a batch replay of files in several.)
    """
    stats = ReplayStats()
    started = time.perf_counter()
    with no_cyclic_gc():
        _replay(rows, as_of_day, config, out, stats, strict, exact, decisions_out, on_bad, model, on_progress,
                calibration)
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
    model: ValueModel | None, on_progress: Callable[[int], None] | None, calibration: Calibration | None,
) -> None:
    by_customer = group_rows(rows, as_of_day, stats, strict, on_bad, on_progress)
    profiles: Iterable[Profile]
    if exact:  # the calibration's states are folded apart (and not counted): each customer is then stepped
        base = offline(config)  # the steps keep the stream's id memory (dedupe_days): they refuse the same events
        config = scoring_config(config, calibration, stats, lambda: (
            state for _, state in folded(by_customer, as_of_day, base, ReplayStats())), as_of_day)
        profiles = profiles_exact(by_customer, as_of_day, config, stats, decisions_out, model)
        write_profiles(out, profiles, as_of_day, stats, config, model)
        return
    config = offline(config)
    if calibration is None and config.tiering == "calibrated":  # fold once, calibrate, then evaluate
        states = dict(folded(by_customer, as_of_day, config, stats))
        config = scoring_config(config, None, stats, states.values, as_of_day)
        profiles = (Profile(c, s, evaluate(s, as_of_day, config, model)) for c, s in states.items())
    else:
        config = scoring_config(config, calibration, stats, lambda: (), as_of_day)
        profiles = profiles_batch(by_customer, as_of_day, config, stats, model)
    write_profiles(out, profiles, as_of_day, stats, config, model)


def offline(config: ScoringConfig) -> ScoringConfig:
    """The config of a batch replay and of calibrating: the state is transient, so every event id is
    remembered, however old (the stream, and `--exact`, bound that memory with `dedupe_days`)."""
    return config.model_copy(update={"dedupe_days": UNBOUNDED_DEDUPE_DAYS})


def header(model: ValueModel | None) -> tuple[str, ...]:
    """The output's columns."""
    return COLUMNS + (MODEL_COLUMNS if model is not None else ())
