"""Retention: when the state forgets a customer, and what a history leaves of one.

A customer is forgotten for inactivity at the review of day `last_seen_day + forget_after_days` (UTC days):
on that day `forget_after_days` whole days have passed since the latest day with an event of any kind. An
erasure request forgets the customer at once, whatever the setting; one for a customer with no state has
nothing to erase and sends nothing (so a request redelivered after its forget was written is recognised).
Either way the step returns no state (the shell deletes it: a table tombstone, the Redis profile, the
deadline) and a `Forgotten` decision; a later event of the same id starts a new customer (its redelivery
too: the id memory went with the state). Inputs a stream worker reads again after a crash, before it committed
them, are told apart by the forgotten state's `remnant` (`is_reread`).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import NamedTuple

from scoring.config import ScoringConfig
from scoring.decisions import Forgotten
from scoring.dedupe import DUPLICATE, Memory, bare_hash, content_hash
from scoring.events import MS_PER_DAY, CoreEvent, Kind
from scoring.fold import check_event
from scoring.ids import hash64, output_id
from scoring.state import NEW_STATE, CustomerState


def forget_day(state: CustomerState, config: ScoringConfig) -> int | None:
    """The epoch day whose review forgets the customer for inactivity (None: never, or nothing seen)."""
    days = config.retention.forget_after_days
    if days is None or state.last_seen_day is None:
        return None
    return state.last_seen_day + days


def is_forgotten_by(state: CustomerState, today: int, config: ScoringConfig) -> bool:
    """Whether an evaluation on `today` finds the customer inactive for `forget_after_days` (or more)."""
    day = forget_day(state, config)
    return day is not None and day <= today


def forgotten(
    state: CustomerState, customer_id: str, cause: str, at_ms: int, reason: str, config: ScoringConfig
) -> Forgotten:
    """The decision that forgets `state` (its last activity and tier), with a deterministic id."""
    if reason == "erasure":
        text = "erasure requested"
    else:
        text = f"no activity for {config.retention.forget_after_days} days"
    return Forgotten(
        output_id(customer_id, cause, "forgotten", 0),
        cause,
        at_ms,
        "erasure" if reason == "erasure" else "inactive",
        state.last_seen_day,
        state.tier,
        cause_text=text,
    )


def remnant(forgotten_state: CustomerState) -> CustomerState:
    """What a forget leaves for the inputs that may be read again after it: the forgotten state's id memory,
    nothing else of the customer.

    A stream worker reads again, after a crash, the inputs it had not committed. Those the forgotten state
    had applied are no new activity of the customer: `is_reread` tells them, so they are not applied to a
    state begun after the forget (nor to none, as a new customer). The worker keeps a remnant only until
    those inputs are committed (`streams.worker.remnants`); replay, reading each input once, needs none."""
    return NEW_STATE._replace(seen=forgotten_state.seen, filters=forgotten_state.filters)


def is_reread(left: CustomerState, event: CoreEvent) -> bool:
    """Whether `event` is one the state forgotten with `left` (its `remnant`) had applied, read again (the
    same id with the same content). Never an erasure request: a request read again finds the state it would
    erase (none, or one begun after it: `scoring.step` sends nothing then) and decides by that."""
    if event.kind is Kind.ERASURE or not (left.seen or left.filters):
        return False
    memory = Memory(left.seen, left.filters, 0, False, len(left.seen) + 1, 1)
    content = content_hash(event)
    bare = bare_hash(event) if event.categories else content  # as the fold admits it (scoring.fold)
    return memory.admit(hash64(event.event_id), event.at_ms // MS_PER_DAY, content, bare) == DUPLICATE


class Survival(NamedTuple):
    """What a customer's history leaves at the end of a day: the events its state holds, and how many times the
    customer was forgotten on the way (each erasure request of a known customer, each idle gap, and at the end)."""

    events: list[CoreEvent]
    forgets: int


def surviving(events: Sequence[CoreEvent], as_of_day: int, config: ScoringConfig) -> Survival:
    """The events (in stepping order: time, then id) a customer's state still holds at the end of `as_of_day`:
    those after the last erasure request or gap of `forget_after_days` (events the core refuses whatever the
    state left out); none when the customer is forgotten by then. What a batch replay folds (the exact
    replay steps every event and gets the same customers)."""
    days = config.retention.forget_after_days
    kept: list[CoreEvent] = []
    last: int | None = None
    forgets = 0
    for event in events:
        day = event.at_ms // MS_PER_DAY
        if days is not None and last is not None and last + days <= day:  # forgotten before this event
            kept, last, forgets = [], None, forgets + 1
        if event.kind is Kind.ERASURE:  # (one with nothing to erase is no forget)
            kept, last, forgets = [], None, forgets + bool(kept)
            continue
        if check_event(event, event.at_ms, config):  # refused whatever the state: no activity
            continue
        kept.append(event)
        last = day if last is None else max(last, day)
    if days is not None and last is not None and last + days <= as_of_day:
        return Survival([], forgets + 1)
    return Survival(kept, forgets)
