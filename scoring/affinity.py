"""Category affinity: which category a customer is most likely to buy next, learned from co-purchases.

`fit_affinity` counts, over customers, who bought each category (`n(A)`) and each pair of categories
(`n(A, B)`); for each category A it keeps the `related_kept` categories B with the highest
`P(B | A) = n(A, B) / n(A)` among the pairs with `n(A, B) >= min_support` (ties: the more popular B, then
its name), so the same baskets always give the same affinity.

`next_category` scores every category B the customer has not bought by `sum over their categories A of
P(B | A)` and names the best (ties: the more popular, then the name), with the category A that
contributed most as the reason. None when no bought category has a related one: the rule-based
proposition stands alone. Pure: numpy/scipy only for counting the pairs (imported by the fit alone).
"""

from __future__ import annotations

from collections.abc import Collection, Iterable, Mapping
from dataclasses import dataclass, field
from functools import cached_property
from typing import Any, NamedTuple

AFFINITY_FORMAT = "tierstream.affinity/1"


class Suggestion(NamedTuple):
    """The category to propose, its score (sum of P(category | bought)), and the bought category that weighs most
    with its P(category | bought)."""

    category: str
    score: float
    because: str
    share: float

    def reason(self) -> str:
        return f"{self.share:.0%} of the customers who bought {self.because} also bought {self.category}"


@dataclass(frozen=True)
class Affinity:
    """Co-purchase affinity between categories, fitted on `customers` customers' baskets.

    `popular`: categories by the number of customers who bought them, most first (ties: name), with that
    number; `related`: category -> (other category, P(other | category)) best first.
    """

    customers: int
    min_support: int
    popular: tuple[tuple[str, int], ...]
    related: Mapping[str, tuple[tuple[str, float], ...]] = field(default_factory=dict)

    @cached_property
    def rank(self) -> dict[str, int]:
        """Popularity rank of each category (0: the most popular); computed once."""
        return {name: i for i, (name, _) in enumerate(self.popular)}

    def most_popular(self, bought: Collection[str]) -> str | None:
        """The most popular category not in `bought` (the proposal made to everyone alike)."""
        return next((name for name, _ in self.popular if name not in bought), None)

    def to_dict(self) -> dict[str, Any]:
        return {
            "format": AFFINITY_FORMAT,
            "customers": self.customers,
            "min_support": self.min_support,
            "popular": [[name, n] for name, n in self.popular],
            "related": {a: [[b, p] for b, p in others] for a, others in sorted(self.related.items())},
        }

    @classmethod
    def from_dict(cls, data: Any) -> Affinity:
        """Inverse of `to_dict`; ValueError on another format or a malformed mapping."""
        if not isinstance(data, dict) or data.get("format") != AFFINITY_FORMAT:
            raise ValueError(f"affinity: expected a mapping with format {AFFINITY_FORMAT!r}")
        try:
            popular = tuple((str(name), int(n)) for name, n in data["popular"])
            related = {str(a): tuple((str(b), float(p)) for b, p in others) for a, others in data["related"].items()}
            return cls(int(data["customers"]), int(data["min_support"]), popular, related)
        except (KeyError, TypeError, ValueError, AttributeError) as exc:
            raise ValueError(f"affinity: malformed mapping: {exc!r}") from None


def fit_affinity(
    baskets: Iterable[Collection[str]], min_support: int = 5, related_kept: int = 10, popular_kept: int = 1000
) -> Affinity:
    """The affinity of customers' baskets (each: the categories one customer bought; order is irrelevant)."""
    import numpy as np  # noqa: PLC0415 - the scoring path reads an affinity, never fits one: `import scoring`
    from scipy import sparse  # noqa: PLC0415 - stays free of numpy and scipy

    names: dict[str, int] = {}
    rows: list[int] = []
    cols: list[int] = []
    customers = 0
    for basket in baskets:
        distinct = set(basket)
        if not distinct:
            continue
        for name in distinct:
            rows.append(customers)
            cols.append(names.setdefault(name, len(names)))
        customers += 1
    if not names:
        return Affinity(0, min_support, ())
    x = sparse.csr_matrix((np.ones(len(rows), dtype=np.int32), (rows, cols)), shape=(customers, len(names)))
    pairs = (x.T @ x).tocsr()  # n(A, B); the diagonal is n(A)
    bought = pairs.diagonal()
    pairs.setdiag(0)
    pairs.data[pairs.data < min_support] = 0
    pairs.eliminate_zeros()
    label = sorted(names, key=names.__getitem__)
    order = sorted(range(len(label)), key=lambda i: (-int(bought[i]), label[i]))
    rank = np.empty(len(label), dtype=np.int64)
    rank[order] = np.arange(len(label))
    popular = tuple((label[i], int(bought[i])) for i in order[:popular_kept])
    related: dict[str, tuple[tuple[str, float], ...]] = {}
    for a in np.flatnonzero(np.diff(pairs.indptr)):
        start, end = pairs.indptr[a], pairs.indptr[a + 1]
        others, counts = pairs.indices[start:end], pairs.data[start:end]
        best = np.lexsort((rank[others], -counts))[:related_kept]  # n(A, B) / n(A) orders as n(A, B)
        n_a = int(bought[a])
        related[label[a]] = tuple((label[others[i]], round(int(counts[i]) / n_a, 4)) for i in best)
    return Affinity(customers, min_support, popular, related)


def next_category(bought: Collection[str], affinity: Affinity) -> Suggestion | None:
    """The category a customer who bought `bought` is most likely to buy next among those they have not."""
    scores: dict[str, float] = {}
    best: dict[str, tuple[float, str]] = {}
    for a in sorted(bought):
        for b, p in affinity.related.get(a, ()):
            if b in bought:
                continue
            scores[b] = scores.get(b, 0.0) + p
            if b not in best or p > best[b][0]:
                best[b] = (p, a)
    if not scores:
        return None
    rank = affinity.rank
    far = len(rank)
    choice = min(scores, key=lambda b: (-round(scores[b], 9), rank.get(b, far), b))
    share, because = best[choice]
    return Suggestion(choice, round(scores[choice], 4), because, share)
