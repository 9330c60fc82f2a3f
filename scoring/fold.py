"""Fold events into state: `apply` for one event, `fold` for many.

Both are pure: the input state is never changed. `fold` copies the state
once and folds a batch into the copy, which is what makes replay fast.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from enum import Enum
from typing import Any

from scoring.config import ScoringConfig
from scoring.events import MS_PER_DAY, CoreEvent, Kind
from scoring.ids import hash64
from scoring.state import (
    EMPTY_BUCKET,
    IDS,
    P_COUNT,
    Bucket,
    CustomerState,
)

# Bucket counter slots touched by each kind: (cents slot, count slot).
_SLOTS = {Kind.PURCHASE: (0, 1), Kind.RETURN: (2, 3), Kind.COMPLAINT: (4, 5), Kind.ENQUIRY: (None, 6)}


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


def to_base_cents(event: CoreEvent, config: ScoringConfig) -> int | None:
    """The event's amount in base-currency cents; None when the currency has no rate."""
    if not event.currency or event.currency == config.base_currency:
        return event.amount_cents
    rate = config.fx_rates.get(event.currency)
    return None if rate is None else round(event.amount_cents * rate)


def check_event(event: CoreEvent, now_ms: int, config: ScoringConfig) -> str:
    """Why the core refuses the event, or "" when it is acceptable."""
    if event.at_ms > now_ms + config.max_future_seconds * 1000:
        return f"occurred_at is more than {config.max_future_seconds:g}s after now"
    if event.amount_cents < 0:
        return "amount must be >= 0"
    if event.kind is Kind.COMPLAINT and not 1 <= event.severity <= 5:
        return "severity must be 1-5"
    if to_base_cents(event, config) is None:
        return f"currency {event.currency!r} has no rate to {config.base_currency}"
    return ""


def apply(state: CustomerState, event: CoreEvent, now_ms: int, config: ScoringConfig) -> Applied:
    """Apply one event as of `now_ms` (epoch ms). Idempotent by event id."""
    reason = check_event(event, now_ms, config)
    if reason:
        return Applied(state, Outcome.REJECTED, reason)
    draft = _Draft(state, now_ms, config)
    if not draft.add(event):
        return Applied(state, Outcome.DUPLICATE)
    return Applied(draft.freeze(), Outcome.APPLIED)


def fold(
    state: CustomerState, events: Iterable[CoreEvent], now_ms: int, config: ScoringConfig,
) -> tuple[CustomerState, int, list[tuple[CoreEvent, str]]]:
    """Apply many events as of `now_ms`: (new state, events applied, rejected with reasons)."""
    draft = _Draft(state, now_ms, config)
    applied, rejected = 0, []
    for event in events:
        reason = check_event(event, now_ms, config)
        if reason:
            rejected.append((event, reason))
        elif draft.add(event):
            applied += 1
    return draft.freeze(), applied, rejected


def advance(state: CustomerState, now_ms: int, config: ScoringConfig) -> CustomerState:
    """Move the state's clock to `now_ms`, dropping days that left the window."""
    if now_ms <= state.clock_ms:
        return state
    return _Draft(state, now_ms, config).freeze()


class _Draft:
    """A private, mutable working copy; never escapes this module."""

    __slots__ = ("base", "buckets", "clock_ms", "config", "figs", "horizon", "old_days", "old_ids", "start")

    def __init__(self, state: CustomerState, now_ms: int, config: ScoringConfig) -> None:
        self.base = state
        self.config = config
        self.clock_ms = max(state.clock_ms, now_ms)
        self.start = window_start(self.clock_ms // MS_PER_DAY, config)
        self.horizon = self.clock_ms // MS_PER_DAY - config.dedupe_days + 1  # first day whose ids are kept
        self.buckets = {d: b for d, b in state.buckets.items() if d >= self.start}
        self.old_ids = {key: day for day, key in state.old_ids if day >= self.horizon}
        self.old_days = set(state.old_days)
        if len(self.buckets) != len(state.buckets):  # days left the window: keep their purchase days and ids
            for day, b in state.buckets.items():
                if day < self.start:
                    self._retire(day, b)
        self.figs: list[Any] = [state.first_day, state.last_day, state.purchase_days, state.total_cents,
                                state.first_day_cents, state.purchases, state.first_seen_day]

    def _retire(self, day: int, bucket: Bucket) -> None:
        """A day left the window: its purchase day and event ids move to the all-time memory."""
        if bucket[P_COUNT]:
            self.old_days.add(day)
        if day >= self.horizon:
            self.old_ids.update(dict.fromkeys(bucket[IDS], day))

    def add(self, event: CoreEvent) -> bool:
        """Fold one checked event in; False when it was already applied."""
        day = event.at_ms // MS_PER_DAY
        key = hash64(event.event_id)
        bucket = self.buckets.get(day)
        if day < self.start:
            if key in self.old_ids:
                return False
            if day >= self.horizon:  # older events cannot be recognised again (see dedupe_days)
                self.old_ids[key] = day
        elif bucket is not None and key in bucket[IDS]:
            return False
        cents = to_base_cents(event, self.config) or 0
        if event.kind is Kind.PURCHASE:
            self._purchase_all_time(day, cents, bucket)
        figs = self.figs
        if figs[6] is None or day < figs[6]:
            figs[6] = day
        if day >= self.start:
            self.buckets[day] = _bump(bucket or EMPTY_BUCKET, event, cents, key)
        return True

    def _purchase_all_time(self, day: int, cents: int, bucket: Bucket | None) -> None:
        first, last, days, total, first_cents, count, _ = self.figs
        if first is None or last is None:
            self.figs[0:6] = [day, day, 1, cents, cents, 1]
            if day < self.start:
                self.old_days.add(day)
            return
        new_day = not (day in self.old_days or (bucket is not None and bucket[P_COUNT] > 0))
        if day < self.start:
            self.old_days.add(day)
        if day < first:
            first, first_cents = day, cents
        elif day == first:
            first_cents += cents
        self.figs[0:6] = [first, max(last, day), days + new_day, total + cents, first_cents, count + 1]

    def freeze(self) -> CustomerState:
        b = self.base
        old_ids = tuple(sorted((day, key) for key, day in self.old_ids.items()))
        old_days = b.old_days if len(self.old_days) == len(b.old_days) else tuple(sorted(self.old_days))
        return CustomerState(  # type: ignore[call-arg] # positional: dataclasses.replace costs 4x here
            self.buckets, old_ids, old_days, *self.figs, self.clock_ms, b.scored_day, b.tier, b.tier_since,
            b.segment, b.at_risk, b.score_centi, b.outbox, b.review_day,
        )


def _bump(bucket: Bucket, event: CoreEvent, cents: int, key: int) -> Bucket:
    values: list[Any] = list(bucket)
    cents_slot, count_slot = _SLOTS[event.kind]
    if cents_slot is not None:
        values[cents_slot] += cents if event.kind is not Kind.COMPLAINT else event.severity
    values[count_slot] += 1
    ids = bucket[IDS]
    values[IDS] = tuple(sorted((*ids, key)))
    return tuple(values)
