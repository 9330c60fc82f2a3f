"""The core's view of an input event: small, typed, already in base units.

Schemas (`schemas/`) are converted to `CoreEvent` at the edge; replay builds
them straight from CSV rows. Times are epoch milliseconds (UTC); days are
epoch days (UTC calendar days since 1970-01-01).
"""

from __future__ import annotations

from datetime import UTC, datetime
from enum import IntEnum
from typing import NamedTuple

MS_PER_DAY = 86_400_000
EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


class Kind(IntEnum):
    """Event kinds; the value is stable and used in serialised state."""

    PURCHASE = 1
    RETURN = 2
    COMPLAINT = 3
    ENQUIRY = 4
    ERASURE = 5  # an erasure request: never folded, the step forgets the customer (scoring.retention)


class CoreEvent(NamedTuple):
    """One input event (immutable; a named tuple because replay makes one per row).

    `amount_e4` is in 1/10,000 of `currency` (`scoring.money`) and >= 0 (the refund
    for a return); `severity` is 1-5 for complaints, 0 otherwise; `categories` are the distinct
    categories of a purchase's items (their category, else their product code; () without items).
    """

    kind: Kind
    event_id: str
    at_ms: int
    amount_e4: int = 0
    currency: str = ""
    severity: int = 0
    categories: tuple[str, ...] = ()

    @property
    def day(self) -> int:
        return self.at_ms // MS_PER_DAY


def to_ms(moment: datetime) -> int:
    """Epoch milliseconds of a tz-aware datetime."""
    if moment.tzinfo is None:
        raise ValueError("datetime must be timezone-aware")
    return (moment - EPOCH) // _ONE_MS


def from_ms(ms: int) -> datetime:
    """The UTC datetime of epoch milliseconds."""
    return datetime.fromtimestamp(ms / 1000, tz=UTC)


def day_of(moment: datetime) -> int:
    """Epoch day (UTC) of a tz-aware datetime."""
    return to_ms(moment) // MS_PER_DAY


def day_start(day: int) -> datetime:
    """Midnight UTC that opens epoch day `day`."""
    return from_ms(day * MS_PER_DAY)


_ONE_MS = datetime(1970, 1, 1, 0, 0, 0, 1000, tzinfo=UTC) - EPOCH
