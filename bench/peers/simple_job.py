"""The simple version of the worker's job, shared by every peer and its reference.

Per customer, in stream order: day buckets of net spend and purchase counts over the last
`WINDOW_DAYS` days (event time: a customer's clock is the latest event day seen), an RFM score from
fixed thresholds, a tier from the score, and one output each time the tier changes. Returns subtract
from their day's spend; complaints and enquiries only move the clock (recency ages). A customer
without a purchase in the window has no tier. Stdlib only, no clock reads: it runs unchanged inside
the peers' own virtualenv, and the same events give the same outputs everywhere.

The state is a JSON value (lists, no integer keys), so engines that store state as JSON (Quix
Streams) keep it as it is.
"""

from __future__ import annotations

import json
from datetime import date
from typing import Any

WINDOW_DAYS = 365
RECENCY_DAYS = (30, 90, 180, 270)  # days since the last purchase: at most 30 scores 5, ..., over 270 scores 1
FREQUENCY = (1, 2, 4, 8)  # purchases in the window: 1 scores 1, 2 scores 2, 3-4 score 3, 5-8 score 4, more 5
MONETARY_CENTS = (5_000, 15_000, 40_000, 100_000)  # net spend in the window: below 50.00 scores 1, ..., 1000.00+ 5
TIERS = ((12, "platinum"), (9, "gold"), (7, "silver"), (0, "bronze"))  # lowest score of each tier

State = dict[str, Any]  # {"now": day, "buckets": [[day, net cents, purchases], ...] by day, "tier": str | None}


def day_of(occurred_at: str) -> int:
    """The event's UTC calendar day (proleptic ordinal) from its ISO 8601 text."""
    return date.fromisoformat(occurred_at[:10]).toordinal()


def cents_of(amount: str) -> int:
    """A decimal amount text ('27.45', '-3', '5.5') in cents."""
    negative = amount.startswith("-")
    units, _, fraction = amount.lstrip("+-").partition(".")
    value = int(units or "0") * 100 + int((fraction + "00")[:2])
    return -value if negative else value


def _above(value: int, limits: tuple[int, ...]) -> int:
    """How many of `limits` `value` is above."""
    return sum(value > limit for limit in limits)


def tier_of(state: State) -> str | None:
    """The tier of a state: RFM score summed (3-15) into a tier; None without a purchase in the window."""
    buckets = state["buckets"]
    purchases = sum(b[2] for b in buckets)
    if not purchases:
        return None
    last = max(b[0] for b in buckets if b[2])
    spend = sum(b[1] for b in buckets)
    score = (5 - _above(state["now"] - last, RECENCY_DAYS) + 1 + _above(purchases, FREQUENCY)
             + 1 + _above(spend + 1, MONETARY_CENTS))
    return next(name for lowest, name in TIERS if score >= lowest)


def _add(buckets: list[list[int]], day: int, cents: int, purchases: int) -> None:
    for bucket in buckets:
        if bucket[0] == day:
            bucket[1] += cents
            bucket[2] += purchases
            return
    buckets.append([day, cents, purchases])
    buckets.sort()


def step(state: State | None, event: dict[str, Any]) -> tuple[State, dict[str, Any] | None]:
    """Fold one decoded input event into the customer's state; the tier change it causes, if any."""
    state = state or {"now": 0, "buckets": [], "tier": None}
    day = day_of(event["occurred_at"])
    now = max(state["now"], day)
    buckets = [b for b in state["buckets"] if b[0] > now - WINDOW_DAYS]
    if event["type"] == "purchase":
        _add(buckets, day, cents_of(event["amount"]), 1)
    elif event["type"] == "return":
        _add(buckets, day, -cents_of(event["amount"]), 0)
    new = {"now": now, "buckets": buckets, "tier": state["tier"]}
    new["tier"] = tier_of(new)
    if new["tier"] == state["tier"]:
        return new, None
    return new, {"customer_id": event["customer_id"], "event_id": event["event_id"], "tier": new["tier"],
                 "previous": state["tier"]}


def reference(values: list[bytes]) -> list[dict[str, Any]]:
    """Every tier change of the simple job over raw JSON events in stream order (one process, a dict)."""
    states: dict[str, State] = {}
    changes = []
    for value in values:
        event = json.loads(value)
        states[event["customer_id"]], change = step(states.get(event["customer_id"]), event)
        if change is not None:
            changes.append(change)
    return changes


def by_customer(changes: list[dict[str, Any]]) -> dict[str, list[tuple[str, str | None, str | None]]]:
    """Customer -> its (event id, tier, previous) in order: what a correct peer must produce, per key."""
    out: dict[str, list[tuple[str, str | None, str | None]]] = {}
    for c in changes:
        out.setdefault(c["customer_id"], []).append((c["event_id"], c["tier"], c["previous"]))
    return out
