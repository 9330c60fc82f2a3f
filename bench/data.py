"""Benchmark inputs: a CDNOW-shaped purchases log, a mixed event stream, first purchases.

Everything is deterministic given its arguments. Timed inputs end at a given
moment (usually now) so that the worker's wall clock finds them inside the
rolling window, as in production.
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

from scoring.events import CoreEvent
from streams.convert import InputMessage, to_core
from streams.local.generator import generate, to_json

ROOT = Path(__file__).resolve().parents[1]
CDNOW_SAMPLE = ROOT / "tests" / "fixtures" / "cdnow" / "CDNOW_sample.txt"
CDNOW_AS_OF = "1998-06-30"
EVENTS_PER_CUSTOMER_DAY = 0.037  # the generator's mean rate (measured), to size a stream


@dataclass(frozen=True)
class Record:
    """One Kafka record to produce: key (customer id), JSON value, input type."""

    key: bytes
    value: bytes
    type: str


def write_purchases_log(path: Path, clones: int) -> tuple[int, int]:
    """A CDNOW-shaped purchases CSV: the 1/10 sample repeated `clones` times under new ids.

    With 10 clones it is the size of the full CDNOW log (~69,000 rows, ~23,600
    customers). Returns (rows, customers).
    """
    sample = [line.split() for line in CDNOW_SAMPLE.read_text().splitlines() if line.strip()]
    customers = {row[0] for row in sample}
    with path.open("w") as out:
        out.write("customer_id,occurred_at,amount\n")
        for clone in range(clones):
            for cid, _, day, _, amount in sample:
                out.write(f"{clone:02d}-{cid},{day[:4]}-{day[4:6]}-{day[6:]},{amount}\n")
    return len(sample) * clones, len(customers) * clones


def days_for(customers: int, events: int) -> float:
    """Days of generated history that give about `events` events for `customers` customers."""
    return max(7.0, events / (customers * EVENTS_PER_CUSTOMER_DAY))


def mixed_messages(seed: int, customers: int, days: float, end: datetime) -> list[InputMessage]:
    """The generator's realistic mixed stream (all four types), ending at `end`."""
    return list(generate(seed, customers, days, start=end - timedelta(days=days)))


def records_of(messages: Iterable[InputMessage]) -> list[Record]:
    return [Record(m.customer_id.encode(), to_json(m).encode(), m.type) for m in messages]


def core_events_by_customer(messages: Iterable[InputMessage]) -> dict[str, list[CoreEvent]]:
    """Customer -> core events in stream order."""
    out: dict[str, list[CoreEvent]] = {}
    for m in messages:
        out.setdefault(m.customer_id, []).append(to_core(m))
    return out


def first_purchase(customer: str, at: datetime, amount: str = "42.50") -> Record:
    """A brand-new customer's first purchase: it always causes a TierChanged 'new'."""
    doc = {"type": "purchase", "event_id": f"{customer}-p1", "customer_id": customer,
           "occurred_at": at.astimezone(UTC).isoformat(), "amount": amount, "currency": "USD",
           "order_id": f"{customer}-o1"}
    return Record(customer.encode(), json.dumps(doc, separators=(",", ":")).encode(), "purchase")


def first_purchases(prefix: str, count: int, at: datetime) -> list[Record]:
    """`count` new customers `{prefix}{i}` with one purchase each at `at`."""
    return [first_purchase(f"{prefix}{i:07d}", at, f"{20 + i % 180}.{i % 100:02d}") for i in range(count)]
