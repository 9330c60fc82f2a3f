"""Read the categories customers bought from a history with an item or category column (category affinity).

Each purchase row's category (the category column's, else the item's: `CsvLayout.item`, `.category`; a
JSONL purchase's items) is read with its day. Excluded categories (`affinity.excluded`) are left out.
"""

from __future__ import annotations

from typing import NamedTuple

from scoring.config import ScoringConfig
from scoring.events import MS_PER_DAY, Kind
from scoring.fold import bought
from streams.offline.history import BadRow, Inputs, is_jsonl


class Baskets(NamedTuple):
    """Per customer: every category bought up to the cut (what `fit` learns from), the categories the state
    would keep at the cut (the most recent, `affinity.categories_kept`), and those bought in the held-out days."""

    before: dict[str, set[str]]
    kept: dict[str, tuple[tuple[str, int], ...]]
    after: dict[str, set[str]]
    rows: int  # purchase rows with a category


def read_baskets(inputs: Inputs, cut_day: int, horizon_days: int, config: ScoringConfig) -> Baskets:
    """The baskets of `inputs` at the end of `cut_day`, and in the `horizon_days` after it (bad rows are skipped:
    the value model's reader reports them)."""
    excluded = frozenset(config.affinity.excluded)
    limit = config.affinity.categories_kept
    before: dict[str, set[str]] = {}
    kept: dict[str, tuple[tuple[str, int], ...]] = {}
    after: dict[str, set[str]] = {}
    rows = 0
    for row in inputs.rows():
        if isinstance(row, BadRow) or row.event.kind is not Kind.PURCHASE or not row.event.categories:
            continue
        categories = tuple(c for c in row.event.categories if c not in excluded)
        if not categories:
            continue
        rows += 1
        day = row.event.at_ms // MS_PER_DAY
        customer = row.customer_id
        if day <= cut_day:
            before.setdefault(customer, set()).update(categories)
            kept[customer] = bought(kept.get(customer, ()), categories, day, limit)
        elif day <= cut_day + horizon_days:
            after.setdefault(customer, set()).update(categories)
    return Baskets(before, kept, after, rows)


def has_categories(inputs: Inputs) -> bool:
    """The history can carry categories: a CSV layout with an item or category column, or JSONL events."""
    return inputs.layout.item is not None or inputs.layout.category is not None or any(
        is_jsonl(p) for p in inputs.paths
    )
