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

from scoring.decisions import OutcomeObserved

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


def observation_of(customer_id: str, outcome: OutcomeObserved) -> Observation:
    """The observation of a closed window as the core decided it."""
    return Observation(
        customer_id,
        outcome.rule,
        outcome.tier,
        outcome.group == "held_out",
        outcome.purchases > 0,
        outcome.revenue - outcome.returns,
        outcome.tier_move == "up",
        outcome.churned,
        outcome.cost,
    )


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


@dataclass(frozen=True, slots=True)
class Moments:
    """Count, sum and sum of squares of a figure: enough for its mean and variance, in constant memory."""

    n: int = 0
    total: float = 0.0
    squares: float = 0.0

    def add(self, value: float) -> Moments:
        return Moments(self.n + 1, self.total + value, self.squares + value * value)

    def merge(self, other: Moments) -> Moments:
        return Moments(self.n + other.n, self.total + other.total, self.squares + other.squares)

    @property
    def mean(self) -> float:
        return self.total / self.n if self.n else 0.0

    @property
    def variance(self) -> float:
        """The sample variance (n - 1); 0 below 2 values."""
        if self.n < 2:
            return 0.0
        return max(self.squares - self.total * self.total / self.n, 0.0) / (self.n - 1)


def moments(values: Iterable[float]) -> Moments:
    out = Moments()
    for v in values:
        out = out.add(v)
    return out


@dataclass(frozen=True, slots=True)
class Arm:
    """One group (treated or held out) of a rule and tier, as running moments of each outcome figure: what
    `effect_of` needs, in constant memory (a worker keeps one per rule, tier and group)."""

    purchased: Moments = Moments()
    net_revenue: Moments = Moments()
    tier_up: Moments = Moments()
    churned: Moments = Moments()
    cost: Moments = Moments()

    @property
    def n(self) -> int:
        return self.purchased.n

    def add(self, o: Observation) -> Arm:
        return Arm(
            self.purchased.add(float(o.purchased)),
            self.net_revenue.add(float(o.net_revenue)),
            self.tier_up.add(float(o.tier_up)),
            self.churned.add(float(o.churned)),
            self.cost.add(float(o.cost)),
        )

    def merge(self, other: Arm) -> Arm:
        return Arm(
            self.purchased.merge(other.purchased),
            self.net_revenue.merge(other.net_revenue),
            self.tier_up.merge(other.tier_up),
            self.churned.merge(other.churned),
            self.cost.merge(other.cost),
        )


def arm(observations: Iterable[Observation]) -> Arm:
    out = Arm()
    for o in observations:
        out = out.add(o)
    return out


def estimate(treated: list[float], held_out: list[float], binary: bool = False) -> Estimate:
    """Difference of means with a normal 95 % interval (Wald for 0/1 values, Welch otherwise)."""
    return estimate_of(moments(treated), moments(held_out), binary)


def estimate_of(treated: Moments, held_out: Moments, binary: bool = False) -> Estimate:
    """`estimate` from each group's moments."""
    mt, vt = treated.mean, treated.variance
    mc, vc = held_out.mean, held_out.variance
    if binary:  # the unpooled binomial variance (n, not n - 1)
        vt, vc = mt * (1 - mt), mc * (1 - mc)
    if treated.n < MIN_GROUP or held_out.n < MIN_GROUP:
        return Estimate(mt, mc, mt - mc, None, None)
    half = Z95 * math.sqrt(vt / treated.n + vc / held_out.n)
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
    """The effect of a rule in a tier, the customer as the unit (`per_customer`)."""
    units = per_customer(observations)
    return effect_of(rule, tier, arm(o for o in units if not o.held_out), arm(o for o in units if o.held_out))


def effect_of(rule: str, tier: str, treated: Arm, held_out: Arm) -> RuleEffect:
    """The effect of a rule in a tier from its two groups' moments (what `plan-report` and the dashboard show)."""
    revenue = estimate_of(treated.net_revenue, held_out.net_revenue)
    cost = treated.cost.mean
    return RuleEffect(
        rule,
        tier,
        treated.n,
        held_out.n,
        estimate_of(treated.purchased, held_out.purchased, binary=True),
        revenue,
        estimate_of(treated.tier_up, held_out.tier_up, binary=True),
        estimate_of(treated.churned, held_out.churned, binary=True),
        cost,
        _shifted(revenue, cost),
    )


def effects_of(arms: dict[tuple[str, str, bool], Arm]) -> list[RuleEffect]:
    """`effects` from the moments of each (rule, tier, held out) group: per rule (sorted), every tier together,
    then per tier (sorted)."""
    groups: dict[tuple[str, str], dict[bool, Arm]] = {}
    for (rule, tier, held), one in arms.items():
        for key in ((rule, ALL_TIERS), (rule, tier)):
            pair = groups.setdefault(key, {})
            pair[held] = pair.get(held, Arm()).merge(one)
    return [
        effect_of(rule, tier, pair.get(False, Arm()), pair.get(True, Arm()))
        for (rule, tier), pair in sorted(groups.items())
    ]


def effects(observations: Iterable[Observation]) -> list[RuleEffect]:
    """Per rule (sorted), its effect over every tier, then per tier (sorted)."""
    groups: dict[tuple[str, str], list[Observation]] = {}
    for o in observations:
        groups.setdefault((o.rule, ALL_TIERS), []).append(o)
        groups.setdefault((o.rule, o.tier), []).append(o)
    return [effect(rule, tier, obs) for (rule, tier), obs in sorted(groups.items())]
