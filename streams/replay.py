"""Offline replay: a history through the same core the stream uses.

Default (batch rescore): each customer's events are folded, then evaluated
once as of the end of the as-of day; tiers are assigned fresh, as a nightly
job would, but far faster. `exact=True` steps event by event in file order
with the event-time clock, exactly as the stream does on the same history:
time-driven reviews between events, hysteresis along the path, and every
output the stream would send (written with `decisions_out`).
"""

from __future__ import annotations

import csv
import json
import time
from collections import Counter
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import IO, TYPE_CHECKING

from scoring.btyd import btyd_summary
from scoring.config import ScoringConfig
from scoring.events import MS_PER_DAY, CoreEvent
from scoring.fold import fold
from scoring.state import NEW_STATE, CustomerState
from scoring.step import Evaluation, StepResult, evaluate, step, value_of
from streams.convert import OutputContext, decision_message, model_fields, score_message
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


class StrictError(Exception):
    """A bad row under --strict."""


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
    bad_examples: list[str] = field(default_factory=list)

    @property
    def rows_per_s(self) -> float:
        return self.rows / self.seconds if self.seconds else 0.0


@dataclass
class Profile:
    customer_id: str
    state: CustomerState
    evaluation: Evaluation


def end_of_day_ms(as_of_day: int) -> int:
    """The last millisecond of epoch day `as_of_day`: the replay's `now`."""
    return (as_of_day + 1) * MS_PER_DAY - 1


def group_rows(
    rows: Iterable[Row | BadRow], as_of_day: int, stats: ReplayStats, strict: bool,
    on_bad: Callable[[BadRow], None],
) -> dict[str, list[CoreEvent]]:
    """Customer -> events in file order; counts and reports what is left out."""
    limit = end_of_day_ms(as_of_day)
    by_customer: dict[str, list[CoreEvent]] = {}
    for item in rows:
        stats.rows += 1
        if isinstance(item, BadRow):
            stats.bad += 1
            if strict:
                raise StrictError(f"line {item.line}: {item.reason}")
            on_bad(item)
            continue
        if item.event.at_ms > limit:
            stats.after_as_of += 1
            continue
        events = by_customer.get(item.customer_id)
        if events is None:
            by_customer[item.customer_id] = [item.event]
        else:
            events.append(item.event)
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
            message = score_message(decision, ev, state, ctx, value)
        if message is not None:
            doc = {"type": type(message).__name__, **message.model_dump(mode="json")}
            sink.write(json.dumps(doc, separators=(",", ":")) + "\n")


def profile_row(p: Profile, as_of_day: int, config: ScoringConfig, model: ValueModel | None) -> list[object]:
    s, ev = p.evaluation.score, p.evaluation
    summary = btyd_summary(p.state, as_of_day)
    btyd: list[object] = ["", "", "", ""] if summary is None else [
        summary.x, summary.t_x, summary.T, round(summary.mean_repeat_value, 6)]
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
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(COLUMNS + (MODEL_COLUMNS if model is not None else ()))
    for p in profiles:
        stats.customers += 1
        stats.tiers[p.evaluation.tier] += 1
        writer.writerow(profile_row(p, as_of_day, config, model))


def run_replay(
    rows: Iterable[Row | BadRow], as_of_day: int, config: ScoringConfig, out: IO[str], *,
    strict: bool = False, exact: bool = False, decisions_out: IO[str] | None = None,
    on_bad: Callable[[BadRow], None] = lambda _: None, model: ValueModel | None = None,
) -> ReplayStats:
    """Replay `rows` and write one CSV row per customer to `out`."""
    stats = ReplayStats()
    started = time.perf_counter()
    # Offline the state is transient: remember every event id, however old (the stream bounds it).
    config = config.model_copy(update={"dedupe_days": UNBOUNDED_DEDUPE_DAYS})
    by_customer = group_rows(rows, as_of_day, stats, strict, on_bad)
    if exact:
        profiles = profiles_exact(by_customer, as_of_day, config, stats, decisions_out, model)
    else:
        profiles = profiles_batch(by_customer, as_of_day, config, stats, model)
    write_profiles(out, profiles, as_of_day, stats, config, model)
    stats.seconds = time.perf_counter() - started
    return stats
