"""Customers' states from events read in columns: what the batch paths (in memory, spilled) fold with."""

from __future__ import annotations

from collections.abc import Callable

import polars as pl

from scoring.config import ScoringConfig
from scoring.events import Kind
from scoring.state import CustomerState
from streams.offline.batchfold import batch_states, core_events
from streams.offline.columnar import ColumnRead
from streams.offline.history import BadRow
from streams.offline.replay import GROUPED_REASONS, ReplayStats, end_of_day_ms, folded, offline


def count_read(read: ColumnRead, stats: ReplayStats, on_bad: Callable[[BadRow], None]) -> None:
    """Count what was read in `stats` and report its bad rows (grouped reasons counted in `stats.grouped`)."""
    stats.rows += read.events.height + len(read.bad)
    stats.bad += len(read.bad)
    for row in read.bad:
        if row.reason in GROUPED_REASONS:
            stats.group(row)
        else:
            on_bad(row)


def fold_population(
    events: pl.DataFrame, as_of_day: int, config: ScoringConfig, stats: ReplayStats,
) -> dict[str, CustomerState]:
    """The states of the customers of `events` (`EVENT_SCHEMA`, file order; every event of each of them) at the
    end of the as-of day, in customer order; counts what is left out in `stats`."""
    now = end_of_day_ms(as_of_day)
    read_events = events
    events = read_events.filter(pl.col("at_ms") <= now)
    stats.after_as_of += read_events.height - events.height
    erased = events.filter(pl.col("kind") == int(Kind.ERASURE)).get_column("customer").unique()
    by_core: dict[str, CustomerState] = {}
    if erased.len():  # customers with an erasure request: the per-row reference (`surviving`), not the columns
        rows = events.filter(pl.col("customer").is_in(erased.implode()))
        events = events.filter(~pl.col("customer").is_in(erased.implode()))
        by_core = dict(folded(core_events(rows), as_of_day, offline(config), stats))
    states, rejected, duplicates = batch_states(events, now, offline(config))
    stats.rejected += rejected
    stats.duplicates += duplicates
    return dict(sorted((states | by_core).items())) if by_core else states
