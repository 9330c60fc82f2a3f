"""Fold a table of events into customers' states with vectorised group-bys: `scoring.fold.fold`'s answer.

The per-event fold (`scoring.fold`) stays the reference; this computes the same `CustomerState` figures
for a batch replay (`streams.offline.replay`, default mode: the offline config, every id remembered) from
columns: the core's checks, its dedupe, its day buckets (in the order the fold first touches each day:
the order of the `buckets` mapping) and its all-time figures. A customer with more distinct event ids than
`dedupe_exact_ids` (beyond them the core remembers ids in Bloom filters, whose false positives a group-by
cannot foresee) has its events' dedupe decided as the core's id memory decides them, in file order
(`streams.offline.batchmemory`), and the events it applies folded in columns with everyone else's.

Two differences with the fold's state, neither read by an evaluation: the id memory (`seen`, `filters`)
is left empty (a replay's states are scored, never stored), and a redelivery is told from an id reused
with other content by comparing the content itself rather than its 32-bit hash.
"""

from __future__ import annotations

from functools import partial

import numpy as np
import polars as pl

from scoring.config import ScoringConfig
from scoring.events import MS_PER_DAY, CoreEvent, Kind
from scoring.fold import window_start
from scoring.state import Bucket, CustomerState
from streams.offline.batchmemory import decide

_CONTENT = ("kind", "at_ms", "amount_e4", "currency", "severity")  # what `scoring.dedupe.bare_hash` covers


def batch_states(
    events: pl.DataFrame, now_ms: int, config: ScoringConfig,
) -> tuple[dict[str, CustomerState], int, int]:
    """Each customer's state after folding its events (file order, none after `now_ms`) into a new state as
    of `now_ms`, in customer order: (states, rejected, duplicates). A customer none of whose events is
    applied has no state (as in `streams.offline.replay.folded`)."""
    if events.height == 0:
        return {}, 0, 0
    table = events.with_row_index("seq").with_columns(_passes(config))
    ids = table.filter(pl.col("passes")).get_column("eid")
    unique = _distinct(ids)  # the common log: no id twice, nothing to dedupe
    spilled = _spilled(table, config.dedupe_exact_ids, unique)
    rejected = duplicates = 0
    columns = table.columns
    remembered = table.clear()  # the spilled customers' applied events
    if spilled:
        by_memory = table.filter(pl.col("customer").is_in(spilled))
        table = table.filter(~pl.col("customer").is_in(spilled))
        remembered, rejected, duplicates = _memory_applied(by_memory, now_ms, config)
    table = _deduped(table) if not unique else table.with_columns(
        first=pl.lit(True), duplicate=pl.lit(False), reused=pl.lit(False))
    rejected += table.filter(~pl.col("passes") | pl.col("reused")).height
    duplicates += int(table.get_column("duplicate").sum())
    # One chunk: the group-bys below ran 1.5-2x as long on the two chunks of the concatenation (retail x4)
    applied = pl.concat([table.filter(pl.col("passes") & pl.col("first")).select(columns), remembered], rechunk=True)
    applied = applied.with_columns(base=_base_e4(applied, config), day=pl.col("at_ms") // MS_PER_DAY)
    return dict(sorted(_states(applied, now_ms, config).items())), rejected, duplicates


def _distinct(ids: pl.Series) -> bool:
    """No id twice: their 64-bit hashes all differ (then so do they: ~2x as fast as comparing the strings on
    1.6 M ids), else the ids themselves compared (a repeat, or two ids of one hash)."""
    return ids.hash().n_unique() == ids.len() or ids.n_unique() == ids.len()


def _passes(config: ScoringConfig) -> pl.Expr:
    """`scoring.fold.check_event` (the time check passes: no event is after `now_ms`)."""
    known = ["", config.base_currency, *config.fx_rates]
    severity = pl.col("severity")
    return ((pl.col("at_ms") >= 0) & (pl.col("amount_e4") >= 0)
            & ((pl.col("kind") != int(Kind.COMPLAINT)) | ((severity >= 1) & (severity <= 5)))
            & pl.col("currency").is_in(known)).alias("passes")


def _spilled(table: pl.DataFrame, limit: int, unique: bool) -> list[str]:
    """Customers with more distinct ids among their acceptable events than the core keeps exactly."""
    count = pl.len() if unique else pl.col("eid").n_unique()
    ids = table.filter(pl.col("passes")).group_by("customer").agg(count.alias("ids"))
    return ids.filter(pl.col("ids") > limit).get_column("customer").to_list()


def _memory_applied(table: pl.DataFrame, now_ms: int, config: ScoringConfig) -> tuple[pl.DataFrame, int, int]:
    """The rows of `table` that the core's fold of each customer applies, its id memory decided by
    `batchmemory.decide` (in file order; `passes` is the core's `check_event` here, as for everyone else's
    rows): (rows applied, rejected, duplicates)."""
    ids, days = table.get_column("eid").to_list(), (table.get_column("at_ms") // MS_PER_DAY).to_numpy()
    passes = table.get_column("passes").to_numpy()
    flags = np.zeros(table.height, dtype=np.bool_)
    rejected = duplicates = 0
    rows = table.select("customer").with_row_index("i").group_by("customer", maintain_order=True).agg("i")
    for positions in rows.get_column("i").to_list():
        at = np.asarray(positions, dtype=np.int64)
        applied, r, d = decide([ids[i] for i in positions], days[at], passes[at],
                               partial(_core_event, table, positions), config)
        flags[at[applied]] = True
        rejected, duplicates = rejected + r, duplicates + d
    return table.filter(pl.Series(flags)), rejected, duplicates


def _core_event(table: pl.DataFrame, rows: list[int], i: int) -> CoreEvent:
    """The core event of row `rows[i]` of `table` (as `core_events` makes it)."""
    (event,) = next(iter(core_events(table.slice(rows[i], 1)).values()))
    return event


def core_events(table: pl.DataFrame) -> dict[str, list[CoreEvent]]:
    """Customer -> the core events of its rows of `table`, in table order."""
    events: dict[str, list[CoreEvent]] = {}
    kinds = {int(k): k for k in Kind}  # the members themselves: a lookup, not Kind(kind)'s enum call per row
    for customer, kind, eid, at_ms, amount, currency, severity, categories in table.select(
            "customer", "kind", "eid", "at_ms", "amount_e4", "currency", "severity", "categories").iter_rows():
        events.setdefault(customer, []).append(
            CoreEvent(kinds.get(kind) or Kind(kind), eid, at_ms, amount, currency, severity,
                      tuple(categories) if categories else ()))
    return events


def _deduped(table: pl.DataFrame) -> pl.DataFrame:
    """`first`: the first acceptable event of its (customer, id); `duplicate`: a later one with the same content
    (a redelivery); `reused`: a later one with other content (refused). The content is `scoring.dedupe`'s: the
    fields of `_CONTENT` and the set of categories; as `Memory.admit` takes an entry's `bare_hash` too, a later
    event with categories is the same content as a first one without any (and the same other fields)."""
    ok = table.filter(pl.col("passes"))
    key = ["customer", "eid"]
    same = pl.lit(True)
    for name in _CONTENT:
        same = same & (pl.col(name) == pl.col(name).first().over(key))
    categories = pl.col("categories").list.unique().list.sort()  # a set (null: none)
    first = categories.first().over(key)
    same = same & (categories.eq_missing(first) | first.is_null())
    ok = ok.with_columns(first=pl.col("seq") == pl.col("seq").min().over(key), same=same)
    ok = ok.with_columns(duplicate=~pl.col("first") & pl.col("same"), reused=~pl.col("first") & ~pl.col("same"))
    flags = ok.select("seq", "first", "duplicate", "reused")
    return table.join(flags, on="seq", how="left", maintain_order="left").with_columns(
        pl.col("first", "duplicate", "reused").fill_null(False))


def _base_e4(applied: pl.DataFrame, config: ScoringConfig) -> pl.Series:
    """`scoring.fold.to_base_e4`: a rated currency's amount is round(amount x rate), half to even (float64,
    as Python's `round` of the same product)."""
    amount = applied.get_column("amount_e4").to_numpy()
    base = amount.copy()
    currency = applied.get_column("currency")
    for code, rate in config.fx_rates.items():
        if code == config.base_currency:
            continue
        mask = (currency == code).to_numpy()
        if mask.any():
            base[mask] = np.rint(amount[mask].astype(np.float64) * rate).astype(np.int64)
    return pl.Series("base", base, dtype=pl.Int64)


def _states(applied: pl.DataFrame, now_ms: int, config: ScoringConfig) -> dict[str, CustomerState]:
    if applied.height == 0:
        return {}
    start = window_start(now_ms // MS_PER_DAY, config)
    buckets = _buckets(applied.filter(pl.col("day") >= start))
    purchase = pl.col("kind") == int(Kind.PURCHASE)
    buys = applied.filter(purchase)
    first_day = pl.col("day").min()
    figures = buys.group_by("customer").agg(
        first_day.alias("first_day"), pl.col("day").max().alias("last_day"),
        pl.col("day").n_unique().alias("purchase_days"), pl.col("base").sum().alias("total"),
        pl.col("base").filter(pl.col("day") == first_day).sum().alias("first_e4"), pl.len().alias("count"),
        pl.col("day").filter(pl.col("day") < start).unique().sort().alias("old_days"),
    )
    seen = applied.group_by("customer").agg(pl.col("day").min().alias("first_seen"),
                                            pl.col("day").max().alias("last_seen"))
    people = seen.join(figures, on="customer", how="left")
    kept = _categories(buys, config)
    states: dict[str, CustomerState] = {}
    for customer, first_seen, last_seen, first, last, days, total, first_e4, count, old in people.select(
            "customer", "first_seen", "last_seen", "first_day", "last_day", "purchase_days", "total", "first_e4",
            "count", "old_days").iter_rows():
        states[customer] = CustomerState(
            buckets=buckets.get(customer) or {}, old_days=tuple(old or ()), first_day=first,
            last_day=last, purchase_days=days or 0, total_e4=total or 0, first_day_e4=first_e4 or 0,
            purchases=count or 0, first_seen_day=first_seen, clock_ms=max(0, now_ms), last_seen_day=last_seen,
            categories=kept.get(customer, ()))
    return states


def _categories(buys: pl.DataFrame, config: ScoringConfig) -> dict[str, tuple[tuple[str, int], ...]]:
    """Customer -> the state's `categories`: `scoring.fold.bought` over its applied purchases, which in any order
    keeps the `categories_kept` categories with the latest purchase days (ties: by name), sorted by name; the
    excluded categories (`affinity.excluded`) left out."""
    affinity = config.affinity
    named = buys.select("customer", "day", "categories").filter(pl.col("categories").is_not_null())
    named = named.explode("categories").rename({"categories": "category"}).filter(pl.col("category").is_not_null())
    if affinity.excluded:
        named = named.filter(~pl.col("category").is_in(list(affinity.excluded)))
    if named.height == 0:
        return {}
    latest = named.group_by("customer", "category").agg(pl.col("day").max())
    ranked = latest.sort("customer", "day", "category", descending=[False, True, False])
    kept = ranked.group_by("customer", maintain_order=True).head(affinity.categories_kept).sort("customer", "category")
    out: dict[str, tuple[tuple[str, int], ...]] = {}
    for customer, categories, days in kept.group_by("customer", maintain_order=True).agg(
            "category", "day").iter_rows():
        out[customer] = tuple(zip(categories, days, strict=True))
    return out


def _buckets(inside: pl.DataFrame) -> dict[str, dict[int, Bucket]]:
    """Customer -> {day: bucket} of the days in the window, each inserted in the order the fold first
    touches it (its first applied event in file order)."""
    kind, base, sev = pl.col("kind"), pl.col("base"), pl.col("severity")

    def of(k: Kind, value: pl.Expr) -> pl.Expr:
        return value.filter(kind == int(k)).sum()

    days = inside.group_by("customer", "day").agg(
        of(Kind.PURCHASE, base).alias("pc"), (kind == int(Kind.PURCHASE)).sum().alias("pn"),
        of(Kind.RETURN, base).alias("rc"), (kind == int(Kind.RETURN)).sum().alias("rn"),
        of(Kind.COMPLAINT, sev).alias("cs"), (kind == int(Kind.COMPLAINT)).sum().alias("cn"),
        (kind == int(Kind.ENQUIRY)).sum().alias("en"), pl.col("seq").min().alias("order"),
    ).sort("customer", "order")
    # built from whole columns (a tuple per day, then a dict per customer's run of rows), not row by row
    customers, day = days.get_column("customer").to_list(), days.get_column("day").to_list()
    names = ("pc", "pn", "rc", "rn", "cs", "cn", "en")
    pairs = list(zip(day, zip(*(days.get_column(name).to_list() for name in names), strict=True), strict=True))
    ends = days.select(pl.col("customer").ne_missing(pl.col("customer").shift(-1)).arg_true()).to_series()
    out: dict[str, dict[int, Bucket]] = {}
    begin = 0
    for end in ends.to_list():  # the last row of each customer's run
        out[customers[begin]] = dict(pairs[begin:end + 1])
        begin = end + 1
    return out
