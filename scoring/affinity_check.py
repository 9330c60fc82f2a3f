"""Held-out check of the category affinity: is the proposed category bought more often than the popular one?

At a cut-off day each customer has the categories their state keeps (`affinity.categories_kept`, the most
recent); the affinity (fitted on purchases up to the cut) proposes the category they are most likely to
buy next (`scoring.affinity.next_category`), and the baseline proposes the most popular category they have
not bought, and the single best seller proposed to every customer alike (`everyone`, whether they bought it
already or not: the baseline the issue names). A proposal is a hit when the customer buys that category in
the `horizon_days` after the cut (hit rate at 1). Only customers the affinity has a proposal for count
(`covered` of `customers`), so all three are measured on the same customers: the rates carry 95 % Wilson
intervals, the differences a Wald interval for paired proportions.
"""

from __future__ import annotations

import math
from collections.abc import Collection, Mapping
from typing import NamedTuple

from scoring.affinity import Affinity, next_category
from scoring.potential_check import Z95, Rate, wilson


class AffinityCheck(NamedTuple):
    customers: int  # with a category bought by the cut
    covered: int  # of them, those the affinity proposes a category to
    proposed: Rate
    popular: Rate  # the most popular category not bought yet, same customers
    everyone: Rate  # the single most popular category, same customers
    best_seller: str
    versus_everyone: tuple[float, float, float]  # proposed.rate - everyone.rate, its 95 % interval
    versus_popular: tuple[float, float, float]  # proposed.rate - popular.rate, its 95 % interval
    horizon_days: int

    @property
    def holds(self) -> bool:
        """The proposed category is bought more often than either baseline (both intervals above 0)."""
        return self.versus_everyone[1] > 0 and self.versus_popular[1] > 0


def paired_difference(only_a: int, only_b: int, n: int, z: float = Z95) -> tuple[float, float, float]:
    """Difference of two paired hit rates over `n` customers (`only_a`: hits of a alone, `only_b`: of b alone),
    with its Wald interval."""
    if n == 0:
        return 0.0, -1.0, 1.0
    d = (only_a - only_b) / n
    se = math.sqrt(max(0.0, only_a + only_b - (only_a - only_b) ** 2 / n)) / n
    return d, max(-1.0, d - z * se), min(1.0, d + z * se)


def check_affinity(
    kept: Mapping[str, Collection[str]], later: Mapping[str, Collection[str]], affinity: Affinity, horizon_days: int
) -> AffinityCheck:
    """The check over each customer's kept categories at the cut (`kept`) and those bought after it (`later`)."""
    best_seller = affinity.popular[0][0] if affinity.popular else ""
    hits = dict.fromkeys(("proposed", "popular", "everyone", "only_p", "only_b", "only_e", "only_b2"), 0)
    customers = covered = 0
    for customer, categories in kept.items():
        if not categories:
            continue
        customers += 1
        bought = frozenset(categories)
        suggestion = next_category(bought, affinity)
        if suggestion is None:
            continue
        covered += 1
        after = later.get(customer, ())
        a, b, e = suggestion.category in after, affinity.most_popular(bought) in after, best_seller in after
        hits["proposed"] += a
        hits["popular"] += b
        hits["everyone"] += e
        hits["only_p"] += a and not b
        hits["only_b"] += b and not a
        hits["only_e"] += a and not e
        hits["only_b2"] += e and not a
    return AffinityCheck(
        customers,
        covered,
        wilson(hits["proposed"], covered),
        wilson(hits["popular"], covered),
        wilson(hits["everyone"], covered),
        best_seller,
        paired_difference(hits["only_e"], hits["only_b2"], covered),
        paired_difference(hits["only_p"], hits["only_b"], covered),
        horizon_days,
    )


def describe(check: AffinityCheck) -> list[str]:
    """The check in words, one line each."""

    def line(name: str, r: Rate) -> str:
        return f"  {name}: bought by {r.moved:,} of {r.customers:,} ({r.rate:.1%}, 95% CI {r.low:.1%}-{r.high:.1%})"

    def diff(name: str, d: tuple[float, float, float]) -> str:
        return f"  difference proposed - {name}: {d[0]:+.1%} (95% CI {d[1]:+.1%} to {d[2]:+.1%})"

    return [
        f"Category affinity, held out {check.horizon_days} days: hit rate at 1 of the proposed category "
        f"({check.covered:,} of {check.customers:,} customers with categories have a proposal)",
        line("proposed (affinity)", check.proposed),
        line("most popular not yet bought", check.popular),
        line(f"best seller {check.best_seller} to everyone", check.everyone),
        diff("best seller", check.versus_everyone),
        diff("most popular not yet bought", check.versus_popular),
    ]
