"""Fold events into state: `apply` for one event, `fold` for many.

Both are pure: the input state is never changed. `fold` copies the state
once and folds a batch into the copy, which is what makes replay fast.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from enum import Enum

from scoring.config import ScoringConfig
from scoring.dedupe import DUPLICATE, Memory, bare_hash, content_hash
from scoring.events import MS_PER_DAY, CoreEvent, Kind, day_start
from scoring.ids import hash64
from scoring.state import (
    EMPTY_BUCKET,
    P_COUNT,
    Bucket,
    CustomerState,
)


class Outcome(Enum):
    APPLIED = "applied"
    DUPLICATE = "duplicate"
    REJECTED = "rejected"


@dataclass(frozen=True, slots=True)
class Applied:
    """Result of applying one event. `reason` says why when rejected."""

    state: CustomerState
    outcome: Outcome
    reason: str = ""


def window_start(today: int, config: ScoringConfig) -> int:
    """First epoch day inside the rolling window that ends on `today` (inclusive)."""
    return today - config.window_days + 1


def to_base_e4(event: CoreEvent, config: ScoringConfig) -> int | None:
    """The event's amount in 1/10,000 of the base currency (a rated currency: half to even); None when the
    currency has no rate."""
    if not event.currency or event.currency == config.base_currency:
        return event.amount_e4
    rate = config.fx_rates.get(event.currency)
    return None if rate is None else round(event.amount_e4 * rate)


def check_time(event: CoreEvent, now_ms: int, config: ScoringConfig) -> str:
    """Why the core refuses the event's time, or "" when it is acceptable."""
    if event.at_ms < 0:
        return "occurred_at is before 1970-01-01T00:00:00Z"
    if event.at_ms > now_ms + config.max_future_seconds * 1000:
        return f"occurred_at is more than {config.max_future_seconds:g}s after now"
    return ""


def check_event(event: CoreEvent, now_ms: int, config: ScoringConfig) -> str:
    """Why the core refuses the event, or "" when it is acceptable (an erasure request is never folded)."""
    if reason := check_time(event, now_ms, config):
        return reason
    if event.kind is Kind.ERASURE:
        return "an erasure request is not folded (scoring.step forgets the customer)"
    if event.amount_e4 < 0:
        return "amount must be >= 0"
    if event.kind is Kind.COMPLAINT and not 1 <= event.severity <= 5:
        return "severity must be 1-5"
    if to_base_e4(event, config) is None:
        return f"currency {event.currency!r} has no rate to {config.base_currency}"
    return ""


def apply(state: CustomerState, event: CoreEvent, now_ms: int, config: ScoringConfig) -> Applied:
    """Apply one event as of `now_ms` (epoch ms). Idempotent by event id."""
    reason = check_event(event, now_ms, config)
    if reason:
        return Applied(state, Outcome.REJECTED, reason)
    draft = _Draft(state, now_ms, config)
    refused = draft.add(event)
    if refused == DUPLICATE:
        return Applied(state, Outcome.DUPLICATE)
    if refused:
        return Applied(state, Outcome.REJECTED, refused)
    return Applied(draft.freeze(), Outcome.APPLIED)


def fold(
    state: CustomerState,
    events: Iterable[CoreEvent],
    now_ms: int,
    config: ScoringConfig,
) -> tuple[CustomerState, int, list[tuple[CoreEvent, str]]]:
    """Apply many events as of `now_ms`: (new state, events applied, rejected with reasons)."""
    draft = _Draft(state, now_ms, config)
    applied, rejected = 0, []
    for event in events:
        reason = check_event(event, now_ms, config) or draft.add(event)
        if not reason:
            applied += 1
        elif reason != DUPLICATE:
            rejected.append((event, reason))
    return draft.freeze(), applied, rejected


def advance(state: CustomerState, now_ms: int, config: ScoringConfig) -> CustomerState:
    """Move the state's clock to `now_ms`, dropping days that left the window."""
    if now_ms <= state.clock_ms:
        return state
    return _Draft(state, now_ms, config).freeze()


class _Draft:
    """A private, mutable working copy; never escapes this module."""

    __slots__ = (
        "base",
        "buckets",
        "categories",
        "clock_ms",
        "config",
        "count",
        "days",
        "first",
        "first_e4",
        "first_seen",
        "horizon",
        "ids",
        "last",
        "last_seen",
        "old_days",
        "start",
        "total",
    )

    def __init__(self, state: CustomerState, now_ms: int, config: ScoringConfig) -> None:
        self.base = state
        self.config = config
        self.clock_ms = max(state.clock_ms, now_ms)
        today = self.clock_ms // MS_PER_DAY
        self.start = start = window_start(today, config)
        self.horizon = today - config.dedupe_days + 1  # first day whose ids are kept
        buckets = state.buckets
        self.old_days = set(state.old_days)
        if not buckets:
            self.buckets = {}
        elif min(buckets) >= start:  # the common case: every day still inside (a plain copy, same order)
            self.buckets = dict(buckets)
        else:  # days left the window: keep their purchase days
            self.buckets = {d: b for d, b in buckets.items() if d >= start}
            for day, b in buckets.items():
                if day < start and b[P_COUNT]:
                    self.old_days.add(day)
        moved = today != state.clock_ms // MS_PER_DAY  # the horizon moved: forget what passed it
        self.ids = Memory(
            state.seen, state.filters, self.horizon, moved, config.dedupe_exact_ids, config.dedupe_filter_bytes
        )
        self.first, self.last, self.days = state.first_day, state.last_day, state.purchase_days
        self.total, self.first_e4, self.count = state.total_e4, state.first_day_e4, state.purchases
        self.first_seen = state.first_seen_day
        self.last_seen = state.last_seen_day
        self.categories = state.categories

    def add(self, event: CoreEvent) -> str:
        """Fold one checked event in: "" when applied, DUPLICATE when already applied, else why it is refused."""
        day = event.at_ms // MS_PER_DAY
        if day < self.horizon:
            return (
                f"occurred_at is before {day_start(self.horizon).date()}, {self.config.dedupe_days} days "
                "before the customer's clock: too old to deduplicate (scoring.dedupe_days)"
            )
        content = content_hash(event)
        bare = bare_hash(event) if event.categories else content  # an entry remembered before categories counted
        refused = self.ids.admit(hash64(event.event_id), day, content, bare)
        if refused:
            return refused
        bucket = self.buckets.get(day)
        inside = day >= self.start
        amount = to_base_e4(event, self.config) or 0
        kind = event.kind
        if kind is Kind.PURCHASE:
            self._purchase_all_time(day, amount, bucket, inside)
            if event.categories:
                self._bought(event.categories, day)
        if self.first_seen is None or day < self.first_seen:
            self.first_seen = day
        if self.last_seen is None or day > self.last_seen:
            self.last_seen = day
        if inside:
            self.buckets[day] = _bump(bucket, kind, event.severity, amount)
        return ""

    def _bought(self, categories: tuple[str, ...], day: int) -> None:
        affinity = self.config.affinity
        if affinity.excluded:
            categories = tuple(c for c in categories if c not in affinity.excluded)
        if categories:
            self.categories = bought(self.categories, categories, day, affinity.categories_kept)

    def _purchase_all_time(self, day: int, amount: int, bucket: Bucket | None, inside: bool) -> None:
        first = self.first
        if first is None:
            self.first = self.last = day
            self.days = self.count = 1
            self.total = self.first_e4 = amount
            if not inside:
                self.old_days.add(day)
            return
        old_days = self.old_days
        if day not in old_days and (bucket is None or not bucket[P_COUNT]):
            self.days += 1
        if not inside:
            old_days.add(day)
        if day < first:
            self.first, self.first_e4 = day, amount
        elif day == first:
            self.first_e4 += amount
        if self.last is None or day > self.last:
            self.last = day
        self.total += amount
        self.count += 1

    def freeze(self) -> CustomerState:
        b = self.base
        seen, filters = self.ids.frozen() if self.ids.changed else (b.seen, b.filters)
        old_days = b.old_days if len(self.old_days) == len(b.old_days) else tuple(sorted(self.old_days))
        return CustomerState(
            self.buckets,
            seen,
            filters,
            old_days,
            self.first,
            self.last,
            self.days,
            self.total,
            self.first_e4,
            self.count,
            self.first_seen,
            self.clock_ms,
            b.scored_day,
            b.tier,
            b.tier_since,
            b.segment,
            b.at_risk,
            b.score_centi,
            b.outbox,
            b.review_day,
            b.trials,
            self.last_seen,
            self.categories,
        )


def bought(
    kept: tuple[tuple[str, int], ...], categories: tuple[str, ...], day: int, limit: int
) -> tuple[tuple[str, int], ...]:
    """`kept` (category, latest day) after buying `categories` on `day`: the `limit` most recent (ties: by name),
    sorted by name. The same events in any order give the same result: a category dropped had `limit` more
    recent ones, and they only get more recent."""
    latest = dict(kept)
    for name in categories:
        if latest.get(name, day - 1) < day:
            latest[name] = day
    if len(latest) > limit:
        latest = dict(sorted(latest.items(), key=lambda kv: (-kv[1], kv[0]))[:limit])
    return tuple(sorted(latest.items()))


def _bump(bucket: Bucket | None, kind: Kind, severity: int, amount: int) -> Bucket:
    """The day's bucket with one more event of `kind`."""
    pc, pn, rc, rn, cs, cn, en = bucket or EMPTY_BUCKET
    if kind is Kind.PURCHASE:
        return (pc + amount, pn + 1, rc, rn, cs, cn, en)
    if kind is Kind.RETURN:
        return (pc, pn, rc + amount, rn + 1, cs, cn, en)
    if kind is Kind.COMPLAINT:
        return (pc, pn, rc, rn, cs + severity, cn + 1, en)
    return (pc, pn, rc, rn, cs, cn, en + 1)
