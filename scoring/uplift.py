"""What a contact-plan rule does: treated against held out, from closed outcome windows.

The unit is the customer: a customer with several windows of a rule (and tier) counts once, with the
means of their windows, so that a customer's windows (never independent: a held-out customer stays held
out) do not narrow the intervals. Per rule and tier (and per rule over all tiers): counts of customers,
purchase rate, net revenue per customer
(purchases minus refunds in the window), tier-up and churn rates, each group's mean, and the uplift
(treated minus held out) with a 95 % interval: normal approximation, unpooled (Wald) for rates,
Welch for revenue. `net_value` is the revenue uplift minus the mean cost of a treated action; its
interval is the revenue uplift's, shifted (the cost is known, not estimated). A rule is flagged when
the interval of its purchase-rate uplift or of its net value lies entirely below zero: it harms or
costs more than it brings, at 95 %. An interval needs at least `MIN_GROUP` outcomes in each group.
"""

from __future__ import annotations

import math
from collections.abc import Iterable
from dataclasses import dataclass
from typing import NamedTuple

Z95 = 1.959963984540054
MIN_GROUP = 2
ALL_TIERS = "*"


class Observation(NamedTuple):
    """One closed outcome window (`scoring.decisions.OutcomeObserved`, or a ContactOutcome message)."""

    customer_id: str
    rule: str
    tier: str
    held_out: bool
    purchased: bool
    net_revenue: float  # base currency
    tier_up: bool
    churned: bool
    cost: float  # base currency; 0 when held out


@dataclass(frozen=True, slots=True)
class Estimate:
    """Treated mean, held-out mean, their difference and its 95 % interval (None: too few outcomes)."""

    treated: float
    held_out: float
    uplift: float
    low: float | None
    high: float | None

    @property
    def is_below_zero(self) -> bool:
        return self.high is not None and self.high < 0


@dataclass(frozen=True, slots=True)
class RuleEffect:
    rule: str
    tier: str  # ALL_TIERS: every tier together
    treated: int  # customers
    held_out: int
    purchase: Estimate
    revenue: Estimate
    tier_up: Estimate
    churn: Estimate
    cost: float  # mean cost of a treated action
    net_value: Estimate  # revenue uplift minus cost; treated/held_out hold the revenue means

    @property
    def flagged(self) -> str:
        """Why the rule is flagged ("" when it is not)."""
        if self.purchase.is_below_zero:
            return "lowers the purchase rate"
        if self.net_value.is_below_zero:
            return "costs more than it brings"
        return ""


def _mean_var(values: list[float]) -> tuple[float, float]:
    n = len(values)
    mean = sum(values) / n if n else 0.0
    var = sum((v - mean) ** 2 for v in values) / (n - 1) if n > 1 else 0.0
    return mean, var


def estimate(treated: list[float], held_out: list[float], binary: bool = False) -> Estimate:
    """Difference of means with a normal 95 % interval (Wald for 0/1 values, Welch otherwise)."""
    mt, vt = _mean_var(treated)
    mc, vc = _mean_var(held_out)
    if binary:  # the unpooled binomial variance (n, not n - 1)
        vt, vc = mt * (1 - mt), mc * (1 - mc)
    if len(treated) < MIN_GROUP or len(held_out) < MIN_GROUP:
        return Estimate(mt, mc, mt - mc, None, None)
    half = Z95 * math.sqrt(vt / len(treated) + vc / len(held_out))
    return Estimate(mt, mc, mt - mc, mt - mc - half, mt - mc + half)


def _shifted(e: Estimate, by: float) -> Estimate:
    return Estimate(
        e.treated,
        e.held_out,
        e.uplift - by,
        None if e.low is None else e.low - by,
        None if e.high is None else e.high - by,
    )


def per_customer(observations: list[Observation]) -> list[Observation]:
    """One observation per customer and group: the means of their windows (rates become shares)."""
    by: dict[tuple[str, bool], list[Observation]] = {}
    for o in observations:
        by.setdefault((o.customer_id, o.held_out), []).append(o)
    out = []
    for (customer, held), obs in by.items():
        if len(obs) == 1:
            out.append(obs[0])
            continue
        n = len(obs)
        mean = [
            sum(float(getattr(o, f)) for o in obs) / n
            for f in ("purchased", "net_revenue", "tier_up", "churned", "cost")
        ]
        out.append(Observation(customer, obs[0].rule, obs[0].tier, held, *mean))  # type: ignore[arg-type]
    return out


def effect(rule: str, tier: str, observations: list[Observation]) -> RuleEffect:
    units = per_customer(observations)
    t = [o for o in units if not o.held_out]
    c = [o for o in units if o.held_out]

    def of(attr: str, binary: bool = True) -> Estimate:
        return estimate([float(getattr(o, attr)) for o in t], [float(getattr(o, attr)) for o in c], binary)

    revenue = of("net_revenue", binary=False)
    cost = sum(o.cost for o in t) / len(t) if t else 0.0
    return RuleEffect(
        rule,
        tier,
        len(t),
        len(c),
        of("purchased"),
        revenue,
        of("tier_up"),
        of("churned"),
        cost,
        _shifted(revenue, cost),
    )


def effects(observations: Iterable[Observation]) -> list[RuleEffect]:
    """Per rule (sorted), its effect over every tier, then per tier (sorted)."""
    groups: dict[tuple[str, str], list[Observation]] = {}
    for o in observations:
        groups.setdefault((o.rule, ALL_TIERS), []).append(o)
        groups.setdefault((o.rule, o.tier), []).append(o)
    return [effect(rule, tier, obs) for (rule, tier), obs in sorted(groups.items())]
