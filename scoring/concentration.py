"""Value concentration: how much of the revenue each tier brings against how many customers it holds.

A tier's lift is its share of the last 12 months' revenue divided by its share
of the customers: a top tier that recognises the best customers has a lift
well above 1. Revenue is net purchases (purchases - returns) in the 365 days
to the day: in 1/10,000 of the base currency from a state (`scoring.money`);
`value_concentration` takes totals in any one unit (the worker's Redis view
sums cents). Pure: the replay summary, and the worker's /tiers and /metrics,
aggregate their customers and call `value_concentration`.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable, Mapping, Sequence
from typing import NamedTuple

from scoring.state import P_E4, R_E4, CustomerState

REVENUE_DAYS = 365


class TierValue(NamedTuple):
    """One tier's customers and revenue; shares in [0, 1]; None where the total revenue is not positive."""

    tier: str
    customers: int
    customer_share: float
    revenue: int  # in the unit of the totals given
    revenue_share: float | None
    lift: float | None


def revenue_e4(state: CustomerState, day: int, days: int = REVENUE_DAYS) -> int:
    """Net purchases in the `days` days ending on epoch day `day` (inclusive), in 1/10,000 of the base currency.

    The state keeps only its rolling window: with `window_days` shorter than
    `days`, this is the window's net purchases.
    """
    start = day - days + 1
    return sum(b[P_E4] - b[R_E4] for d, b in state.buckets.items() if start <= d <= day)


class TierTotals(NamedTuple):
    """Customers and revenue (one unit: 1/10,000 from states) per tier, accumulated by whoever sees the customers."""

    customers: Counter[str]
    revenue: Counter[str]


def tier_totals(customers: Iterable[tuple[str, int]]) -> TierTotals:
    """Totals from (tier, revenue) per customer."""
    counts: Counter[str] = Counter()
    revenue: Counter[str] = Counter()
    for tier, amount in customers:
        counts[tier] += 1
        revenue[tier] += amount
    return TierTotals(counts, revenue)


def value_concentration(
    customers: Mapping[str, int], revenue: Mapping[str, int], tier_names: Sequence[str]
) -> tuple[TierValue, ...]:
    """Per tier (in `tier_names` order): customers, revenue, their shares and the lift.

    `customers` and `revenue` (any one integer unit) map a tier to its totals; tiers missing from them count 0.
    """
    all_customers = sum(customers.get(t, 0) for t in tier_names)
    all_revenue = sum(revenue.get(t, 0) for t in tier_names)
    rows = []
    for tier in tier_names:
        n, amount = customers.get(tier, 0), revenue.get(tier, 0)
        customer_share = n / all_customers if all_customers else 0.0
        revenue_share = amount / all_revenue if all_revenue > 0 else None
        lift = revenue_share / customer_share if revenue_share is not None and customer_share else None
        rows.append(TierValue(tier, n, customer_share, amount, revenue_share, lift))
    return tuple(rows)
