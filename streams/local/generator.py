"""Synthetic customer behaviour: a seedable, deterministic stream of typed input events.

Every customer is a `Persona` drawn from its own `random.Random(f"{seed}/{index}")`,
so customer 7 is the same customer whatever `customers` is, and one seed always
gives the same stream. What makes it realistic enough to score:

- activity is Pareto-skewed: most customers buy every two or three months, a few
  every week; each buys on their own rhythm (gamma-distributed gaps around their
  own mean gap, some regular, some erratic);
- order values are lognormal around a per-customer median (a few big spenders);
- about a third of customers lapse: they stop buying on a day of their own, often
  after a bad complaint;
- returns: a small share of orders for most, 35-70 % for serial returners (bad
  business); complaints (severity 1-5), more and worse from some customers;
  enquiries at a personal rate, also from prospects before their first order.

Times are days after `start` (floats) until they become messages; amounts are in
cents. Nothing here reads the clock: `LiveClock` is given the real time.
"""

from __future__ import annotations

import heapq
import math
import random
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any, NamedTuple

from schemas.inputs import ComplaintFiled, EnquiryReceived, LineItem, OrderReturned, PurchaseCompleted
from scoring.events import MS_PER_DAY, to_ms
from streams.convert import InputMessage

DEFAULT_START = datetime(2024, 1, 1, tzinfo=UTC)
CURRENCY = "USD"
CHANNELS = ("web", "web", "web", "app", "app", "store")
CATEGORIES = ("delivery", "quality", "billing", "service", "website")
TOPICS = ("order status", "delivery time", "product question", "sizing", "invoice", "opening hours")
RETURN_REASONS = ("wrong size", "damaged", "not as described", "changed mind", "late delivery")
# Groups of related product categories (a customer's taste); the first group is the most common taste
TASTES = (
    ("kitchen", "tableware", "home_decor", "bedding", "lighting", "garden"),
    ("toys", "baby", "books", "crafts", "party", "school"),
    ("sports", "outdoor", "bikes", "fitness", "camping", "swim"),
    ("electronics", "gaming", "office", "audio", "phones", "cameras"),
    ("fashion", "shoes", "bags", "jewellery", "watches", "beauty"),
    ("pets", "aquarium", "pet_food", "grooming", "pet_toys", "bird"),
)
TASTE_WEIGHTS = (24, 20, 17, 15, 13, 11)
WITHIN_TASTE = (6, 5, 4, 3, 2, 1)  # how often each category of the taste is chosen
SKUS_PER_CATEGORY = 20
GROWTH_SHARE = 0.2  # customers with a latent potential
SEVERITY_WEIGHTS = {"normal": (35, 30, 20, 10, 5), "complainer": (5, 15, 30, 30, 20)}


@dataclass(frozen=True, slots=True)
class Persona:
    """How one synthetic customer behaves. Days are counted from the stream's start."""

    index: int
    customer_id: str
    kind: str  # regular, big_spender, returner, complainer: for reading the data, not used by scoring
    joined_day: float  # first purchase, days after start
    gap_days: float  # mean days between purchases (their own rhythm)
    regularity: float  # gamma shape of the gaps: 1 is erratic, 8 is clockwork
    spend_median: float  # median order value, currency units
    spend_sigma: float  # lognormal spread of order values
    lapse_day: float | None  # no purchases from this day on; None: never lapses
    return_rate: float  # share of orders returned, 0-1
    complaint_rate: float  # complaints per order
    enquiry_gap_days: float  # mean days between enquiries
    taste: int = 0  # index into TASTES: the categories this customer mostly buys
    growth_day: float | None = None  # latent potential: from this day on, buys `growth` times as often and as much
    growth: float = 1.0

    @property
    def is_lapsing(self) -> bool:
        return self.lapse_day is not None


class Draft(NamedTuple):
    """An event before it becomes a message; sorts by time, then customer, then sequence."""

    at_ms: int
    customer: int
    seq: int
    kind: str  # purchase, return, complaint, enquiry
    cents: int = 0
    ref: int = -1  # sequence number of the order a return refers to
    detail: int = 0  # severity of a complaint; index into the text tables otherwise
    items: tuple[tuple[str, int], ...] = ()  # a purchase's items: (category, product number)


def customer_id(index: int) -> str:
    return f"C{index:06d}"


def draw_persona(seed: int, index: int, growth: bool = True) -> Persona:
    """Customer `index` of the population of `seed`: the same for any population size (`growth` False: never a
    latent potential, every other draw the same)."""
    rng = random.Random(f"tierstream/{seed}/{index}")
    kind = rng.choices(("regular", "big_spender", "returner", "complainer"), (78, 8, 8, 6))[0]
    gap = min(365.0, max(4.0, 120.0 / rng.paretovariate(1.2)))  # Pareto-ish activity
    median = math.exp(math.log(45.0) + 0.6 * rng.gauss(0, 1))
    if kind == "big_spender":
        median *= rng.uniform(4.0, 10.0)
        gap = min(gap, rng.uniform(5.0, 21.0))
    lapsing = rng.random() < (0.55 if kind == "complainer" else 0.33)
    joined = rng.random() * rng.random() * 120.0  # most customers are there early on
    return Persona(
        index=index, customer_id=customer_id(index), kind=kind, joined_day=joined, gap_days=gap,
        regularity=rng.uniform(1.5, 8.0), spend_median=median, spend_sigma=rng.uniform(0.3, 0.7),
        lapse_day=joined + rng.expovariate(1.0 / (gap * rng.uniform(3.0, 9.0))) if lapsing else None,
        return_rate=rng.uniform(0.35, 0.7) if kind == "returner" else rng.uniform(0.0, 0.08),
        complaint_rate=rng.uniform(0.2, 0.45) if kind == "complainer" else rng.uniform(0.0, 0.04),
        enquiry_gap_days=rng.uniform(30.0, 180.0),
        **_latent(seed, index, joined, growth),
    )


def _latent(seed: int, index: int, joined: float, growth: bool) -> dict[str, Any]:
    """The taste and the latent potential, from a random stream of their own."""
    rng = random.Random(f"tierstream/{seed}/{index}/latent")
    taste = rng.choices(range(len(TASTES)), TASTE_WEIGHTS)[0]
    if rng.random() >= GROWTH_SHARE or not growth:
        return {"taste": taste}
    return {"taste": taste, "growth_day": joined + rng.uniform(30.0, 300.0), "growth": rng.uniform(2.0, 4.0)}


def _items(rng: random.Random, taste: int) -> tuple[tuple[str, int], ...]:
    """One order's items: 1-3 categories, mostly of the customer's taste."""
    chosen: dict[str, int] = {}
    for _ in range(rng.choice((1, 1, 2, 3))):
        group = TASTES[taste] if rng.random() < 0.85 else TASTES[rng.choices(range(len(TASTES)), TASTE_WEIGHTS)[0]]
        category = rng.choices(group, WITHIN_TASTE)[0]
        chosen.setdefault(category, rng.randrange(1, SKUS_PER_CATEGORY + 1))
    return tuple(chosen.items())


def personas(seed: int, customers: int, growth: bool = True) -> list[Persona]:
    return [draw_persona(seed, i, growth) for i in range(1, customers + 1)]


def customer_drafts(persona: Persona, seed: int, days: float) -> list[Draft]:
    """Every event of one customer in [0, days), in time order."""
    rng = random.Random(f"tierstream/{seed}/{persona.index}/events")
    picks = random.Random(f"tierstream/{seed}/{persona.index}/items")
    p, out, seq = persona, [], 0

    def add(
        day: float, kind: str, cents: int = 0, ref: int = -1, detail: int = 0, items: tuple[tuple[str, int], ...] = ()
    ) -> None:
        nonlocal seq
        if 0 <= day < days:
            out.append(Draft(round(day * MS_PER_DAY / 1000) * 1000, p.index, seq, kind, cents, ref, detail, items))
        seq += 1

    stop = min(days, p.lapse_day if p.lapse_day is not None else days)
    day = p.joined_day
    while day < stop:
        order = seq
        boost = p.growth if p.growth_day is not None and day >= p.growth_day else 1.0
        cents = max(100, round(rng.lognormvariate(math.log(p.spend_median * boost), p.spend_sigma) * 100))
        add(day, "purchase", cents, detail=rng.randrange(len(CHANNELS)), items=_items(picks, p.taste))
        if rng.random() < p.return_rate:
            refund = cents if rng.random() < 0.7 else round(cents * rng.uniform(0.2, 0.9))
            add(day + rng.uniform(2, 25), "return", refund, ref=order, detail=rng.randrange(len(RETURN_REASONS)))
        if rng.random() < p.complaint_rate:
            add(day + rng.uniform(0, 10), "complaint", detail=_severity(rng, p))
        day += rng.gammavariate(p.regularity, p.gap_days / p.regularity) / boost
    if p.lapse_day is not None and p.lapse_day < days and rng.random() < 0.3:
        add(p.lapse_day - rng.uniform(0, 3), "complaint", detail=rng.choice((4, 5)))  # why they left
    day = p.joined_day - rng.uniform(0, 20)  # prospects ask before they buy
    end = min(days, (p.lapse_day if p.lapse_day is not None else days) + 30)
    while True:
        day += rng.expovariate(1.0 / p.enquiry_gap_days)
        if day >= end:
            break
        add(day, "enquiry", detail=rng.randrange(len(TOPICS)))
    return sorted(out)


def _severity(rng: random.Random, p: Persona) -> int:
    weights = SEVERITY_WEIGHTS["complainer" if p.kind == "complainer" else "normal"]
    return rng.choices((1, 2, 3, 4, 5), weights)[0]


def drafts(seed: int, customers: int, days: float) -> Iterator[Draft]:
    """All customers' events merged in time order (ties: customer, then sequence)."""
    return heapq.merge(*(customer_drafts(p, seed, days) for p in personas(seed, customers)))


def to_message(draft: Draft, seed: int, start_ms: int) -> InputMessage:
    """The typed input message of a draft; event ids are unique per (seed, customer, sequence)."""
    who = customer_id(draft.customer)
    event_id = f"g{seed}-{who}-{draft.seq}"
    at = datetime.fromtimestamp((start_ms + draft.at_ms) / 1000, tz=UTC)
    order_id = f"O{seed}-{who}-{draft.ref if draft.kind == 'return' else draft.seq}"
    if draft.kind == "purchase":
        return PurchaseCompleted(event_id=event_id, customer_id=who, occurred_at=at, amount=_money(draft.cents),
                                 currency=CURRENCY, order_id=order_id, channel=CHANNELS[draft.detail],
                                 items=_lines(draft) or None)
    if draft.kind == "return":
        return OrderReturned(event_id=event_id, customer_id=who, occurred_at=at, amount=_money(draft.cents),
                             currency=CURRENCY, order_id=order_id, reason=RETURN_REASONS[draft.detail])
    if draft.kind == "complaint":
        category = CATEGORIES[(draft.seq + draft.detail) % len(CATEGORIES)]
        return ComplaintFiled(event_id=event_id, customer_id=who, occurred_at=at, severity=draft.detail,
                              category=category)
    return EnquiryReceived(event_id=event_id, customer_id=who, occurred_at=at, topic=TOPICS[draft.detail])


def _lines(draft: Draft) -> list[LineItem]:
    """The order lines of a purchase: one unit of each item, the amount split between them."""
    n = len(draft.items)
    each = draft.cents // n if n else 0
    return [
        LineItem(sku=f"{category.upper()}-{number:02d}", quantity=1, category=category,
                 unit_price=_money(each if i < n - 1 else draft.cents - each * (n - 1)))
        for i, (category, number) in enumerate(draft.items)
    ]


def _money(cents: int) -> Decimal:
    return Decimal(cents).scaleb(-2)


def generate(seed: int, customers: int, days: float, start: datetime = DEFAULT_START) -> Iterator[InputMessage]:
    """The whole synthetic history from `start` over `days` days, in time order."""
    start_ms = to_ms(start)
    for draft in drafts(seed, customers, days):
        yield to_message(draft, seed, start_ms)


def to_json(message: InputMessage) -> str:
    """One JSONL line (without newline): the message with its `type`, optional nulls left out."""
    return message.model_dump_json(exclude_none=True)


class LiveClock:
    """Simulated time that runs `speed` times faster than real time.

    `virtual_ms(real_s)` = anchor_virtual + (real_s - anchor_real) x speed. The anchor can
    only move forward (`catch_up`): a generator following a worker's sped-up clock
    lines up with it from the outputs' `emitted_at` without ever going back in time.
    """

    def __init__(self, virtual_ms: int, real_s: float, speed: float) -> None:
        if speed <= 0:
            raise ValueError("speed must be > 0")
        self.speed = speed
        self._virtual_ms, self._real_s = virtual_ms, real_s

    def virtual_ms(self, real_s: float) -> int:
        return self._virtual_ms + int((real_s - self._real_s) * 1000 * self.speed)

    def real_s(self, virtual_ms: int) -> float:
        """The real time at which `virtual_ms` comes."""
        return self._real_s + (virtual_ms - self._virtual_ms) / 1000 / self.speed

    def catch_up(self, observed_virtual_ms: int, real_s: float) -> bool:
        """Another clock read `observed_virtual_ms` at or before `real_s`: move forward to it if behind."""
        if observed_virtual_ms <= self.virtual_ms(real_s):
            return False
        self._virtual_ms, self._real_s = observed_virtual_ms, real_s
        return True


def day_seconds(speed: float) -> float:
    """Real seconds one simulated day takes at `speed`."""
    return 86_400 / speed


def speed_for_rate(events_per_day: float, rate: float) -> float:
    """Time compression that makes a stream of `events_per_day` arrive at `rate` events per real second."""
    if events_per_day <= 0:
        return 1.0
    return max(1.0, rate * 86_400 / events_per_day)
