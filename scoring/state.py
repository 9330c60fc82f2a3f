"""Per-customer state: a value folded from events.

Memory is bounded: figures live in one bucket per UTC day that has activity,
and a bucket is dropped when its day leaves the rolling window. What the state
remembers of the events it applied (to recognise a redelivery) is bounded by
construction, whatever the number of events (`scoring.dedupe`). All-time
figures (first/last purchase day, distinct purchase days, totals) are a few
integers, and the purchase days before the window one small number each.
Money is in cents of the base currency.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from types import MappingProxyType
from typing import Any, Final, Literal, NamedTuple

from scoring.decisions import Decision, decode_decisions, encode_decisions
from scoring.dedupe import IdFilter
from scoring.errors import StateDecodeError
from scoring.trial import Trial

# A day bucket: (purchase_e4, purchases, return_e4, returns, complaint_severity, complaints, enquiries)
Bucket = tuple[int, int, int, int, int, int, int]
P_E4: Final = 0
P_COUNT: Final = 1
R_E4: Final = 2
R_COUNT: Final = 3
C_SEV: Final = 4
C_COUNT: Final = 5
E_COUNT: Final = 6
DecayedSlot = Literal[4, 6]  # the counters that decay: complaint severity, enquiries
EMPTY_BUCKET: Bucket = (0, 0, 0, 0, 0, 0, 0)
OUTBOX_KEPT = 4


@dataclass(frozen=True, slots=True)
class OutboxEntry:
    """Outputs a cause produced, kept so a redelivered cause resends them with the same ids.

    The decisions are held serialised (`payload`, JSON): they are written once
    and read back only on a resend, never on every state encode/decode.
    """

    cause: str
    emitted_ms: int
    payload: bytes

    @classmethod
    def of(cls, cause: str, emitted_ms: int, decisions: tuple[Decision, ...]) -> OutboxEntry:
        return cls(cause, emitted_ms, encode_decisions(decisions))

    @property
    def decisions(self) -> tuple[Decision, ...]:
        """The decisions, read back; a damaged payload raises StateDecodeError."""
        try:
            return decode_decisions(self.payload)
        except (ValueError, KeyError, TypeError) as exc:
            raise StateDecodeError(f"damaged outbox entry for {self.cause!r}: {exc!r}") from None


_NO_BUCKETS: Mapping[int, Bucket] = MappingProxyType({})


class CustomerState(NamedTuple):
    """Everything the core remembers about one customer: an immutable value.

    Invariants: every bucket day is inside the window as of `clock_ms`;
    `first_day <= last_day`; `purchase_days >= 1` iff a purchase was seen.
    A named tuple rather than a frozen dataclass: replay makes one per
    customer and a frozen dataclass costs 4x as much to build. `buckets` is
    never changed in place (the fold works on a copy).
    """

    buckets: Mapping[int, Bucket] = _NO_BUCKETS
    seen: tuple[int, ...] = ()  # sorted exact entries of the events applied (scoring.dedupe.entry)
    filters: tuple[IdFilter, ...] = ()  # Bloom filters of the events beyond the exact ones, by period
    old_days: tuple[int, ...] = ()  # sorted purchase days before the window (exact distinct-day counts)
    first_day: int | None = None
    last_day: int | None = None
    purchase_days: int = 0
    total_e4: int = 0
    first_day_e4: int = 0
    purchases: int = 0
    first_seen_day: int | None = None
    clock_ms: int = 0
    scored_day: int | None = None
    tier: str | None = None
    tier_since: int | None = None
    segment: str | None = None
    at_risk: bool = False
    score_centi: int | None = None
    outbox: tuple[OutboxEntry, ...] = ()
    review_day: int | None = None  # cached next_review_day after the last step (for the deadline index)
    trials: tuple[Trial, ...] = ()  # open outcome windows of measured contact-plan decisions (scoring.outcomes)
    last_seen_day: int | None = None  # latest day of an applied event of any kind (scoring.retention)
    # (category, latest purchase day) of the `affinity.categories_kept` most recently bought categories, by name
    categories: tuple[tuple[str, int], ...] = ()

    @property
    def figures(self) -> tuple[object, ...]:
        """The order-independent part: what any permutation of the same events yields."""
        return (
            tuple(sorted(self.buckets.items())),
            self.seen,
            self.filters,
            self.old_days,
            self.first_day,
            self.last_day,
            self.purchase_days,
            self.total_e4,
            self.first_day_e4,
            self.purchases,
            self.first_seen_day,
            self.last_seen_day,
            self.categories,
        )


NEW_STATE = CustomerState()


def evolve(state: CustomerState, **changes: Any) -> CustomerState:
    """A copy of `state` with `changes`."""
    return state._replace(**changes)
