"""Held-out check of the potential: do low-value customers in the high-potential cell move up more often?

At a cut-off day every customer with a purchase in the window is scored with a fresh tier; the low-value
ones (not in `potential.high_value_tiers`) are split by cell: high potential (`low_value_high_potential`)
and the rest. `horizon_days` later, each is scored again (the same rules and calibration); it "moved up"
when its tier is higher than at the cut-off. Rates carry 95 % Wilson intervals, their difference a
Newcombe (hybrid score) interval.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from typing import NamedTuple

from scoring.config import ScoringConfig
from scoring.potential import assess_potential, high_value_tiers
from scoring.state import CustomerState
from scoring.step import evaluate
from scoring.tiers import tier_rank

Z95 = 1.959964


class Rate(NamedTuple):
    """`moved` of `customers` moved up; `rate` with its 95 % interval [low, high]."""

    moved: int
    customers: int
    rate: float
    low: float
    high: float


class PotentialCheck(NamedTuple):
    high_potential: Rate
    others: Rate
    difference: float  # high_potential.rate - others.rate
    low: float
    high: float
    horizon_days: int


def wilson(moved: int, customers: int, z: float = Z95) -> Rate:
    """The share `moved / customers` with its Wilson score interval (0, 0, 1 for no customer)."""
    if customers == 0:
        return Rate(0, 0, 0.0, 0.0, 1.0)
    p, n = moved / customers, customers
    centre = (p + z * z / (2 * n)) / (1 + z * z / n)
    half = z * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n)) / (1 + z * z / n)
    return Rate(moved, customers, p, max(0.0, centre - half), min(1.0, centre + half))


def newcombe(a: Rate, b: Rate) -> tuple[float, float, float]:
    """a.rate - b.rate with Newcombe's interval from the two Wilson intervals."""
    d = a.rate - b.rate
    low = d - math.sqrt((a.rate - a.low) ** 2 + (b.high - b.rate) ** 2)
    high = d + math.sqrt((a.high - a.rate) ** 2 + (b.rate - b.low) ** 2)
    return d, low, high


def check_potential(
    at_cut: Mapping[str, CustomerState],
    after: Mapping[str, CustomerState],
    cut_day: int,
    horizon_days: int,
    config: ScoringConfig,
) -> PotentialCheck:
    """The check over the customers' states at the end of `cut_day` and `horizon_days` later (rules-based
    potential: no value model)."""
    top = high_value_tiers(config)
    target = config.potential.cells.low_value_high_potential
    counts = {True: [0, 0], False: [0, 0]}  # high potential -> [moved, customers]
    for customer, state in at_cut.items():
        ev = evaluate(state._replace(tier=None, tier_since=None), cut_day, config)
        if ev.score.frequency == 0 or ev.tier in top:
            continue
        cell = assess_potential(ev.score, ev.tier, None, config).cell
        later = after.get(customer, state)
        tier_after = evaluate(later._replace(tier=None, tier_since=None), cut_day + horizon_days, config).tier
        tally = counts[cell == target]
        tally[0] += tier_rank(tier_after, config) < tier_rank(ev.tier, config)
        tally[1] += 1
    hi, rest = wilson(*counts[True]), wilson(*counts[False])
    return PotentialCheck(hi, rest, *newcombe(hi, rest), horizon_days)


def merge_checks(checks: Sequence[PotentialCheck], horizon_days: int) -> PotentialCheck:
    """The check over the customers of all `checks` (disjoint populations, same cut-off and horizon): their
    tallies added, rates and intervals computed anew (one check: itself)."""
    hi = wilson(sum(c.high_potential.moved for c in checks), sum(c.high_potential.customers for c in checks))
    rest = wilson(sum(c.others.moved for c in checks), sum(c.others.customers for c in checks))
    return PotentialCheck(hi, rest, *newcombe(hi, rest), horizon_days)


def describe(check: PotentialCheck, config: ScoringConfig) -> list[str]:
    """The check in words, one line each."""
    cells = config.potential.cells

    def line(name: str, r: Rate) -> str:
        share = f"{r.rate:.1%}, 95% CI {r.low:.1%}-{r.high:.1%}"
        return f"  {name}: {r.moved:,} of {r.customers:,} moved up a tier ({share})"

    return [
        f"Potential, held out {check.horizon_days} days: low-value customers by cell at the cut-off",
        line(f"{cells.low_value_high_potential} (high potential)", check.high_potential),
        line("other low-value", check.others),
        f"  difference {check.difference:+.1%} (95% CI {check.low:+.1%} to {check.high:+.1%})",
    ]
