"""The batch replay at columnar speed: read with Polars, fold with group-bys, evaluate with the core.

The same output, bad-row reports and counts as `streams.offline.replay.run_replay` (default mode), which
stays the reference: `streams.offline.columnar` reads, `streams.offline.batchfold` folds, and each
customer's evaluation is the core's (`scoring.step.evaluate`), once, as of the end of the as-of day.
`--exact` and `--strict` are not done here (see `streams.offline.parallel.replay_inputs`).
"""

from __future__ import annotations

import shutil
import tempfile
import time
from collections.abc import Callable, Iterable, Iterator, Sequence
from pathlib import Path
from typing import IO, TYPE_CHECKING

import numpy as np
import numpy.typing as npt
import polars as pl

from scoring.config import ScoringConfig
from scoring.events import MS_PER_DAY, Kind
from scoring.money import SCALE, money_float
from scoring.step import evaluate
from streams.offline.background import can_fork, in_background
from streams.offline.batchfold import _base_e4
from streams.offline.columnar import BLOCK_BYTES, ColumnRead, read_columns
from streams.offline.history import BadRow, CsvLayout, Inputs, is_jsonl
from streams.offline.population import count_read, fold_population
from streams.offline.purchases import PurchaseRead
from streams.offline.replay import (
    Profile,
    ReplayStats,
    no_cyclic_gc,
    offline,
    scoring_config,
    write_profiles,
    write_rows,
)
from streams.offline.spill import CHUNK_BYTES, parts_for, replay_spilled

if TYPE_CHECKING:
    from scoring.calibration import Calibration
    from scoring.state import CustomerState
    from scoring.valuemodel.model import ValueModel
    from scoring.valuemodel.summary import PurchaseLog


def replay_columnar(
    inputs: Inputs, as_of_day: int, config: ScoringConfig, out: IO[str], *,
    on_bad: Callable[[BadRow], None] = lambda _: None, model: ValueModel | None = None,
    on_progress: Callable[[int], None] | None = None, calibration: Calibration | None = None,
    chunk_bytes: int | None = None, block_bytes: int | None = None,
) -> ReplayStats:
    """A batch replay of `inputs`: one CSV row per customer to `out`, as `run_replay` writes it.

    Inputs of more than `chunk_bytes` of text (default `spill.CHUNK_BYTES`) are folded in parts spilled to
    disk by customer (`streams.offline.spill`), reading `block_bytes` of text at a time: same output."""
    parts = parts_for(inputs, CHUNK_BYTES if chunk_bytes is None else chunk_bytes)
    if parts > 1:
        return replay_spilled(inputs, as_of_day, config, out, parts, on_bad=on_bad, model=model,
                              on_progress=on_progress, calibration=calibration,
                              block_bytes=BLOCK_BYTES if block_bytes is None else block_bytes)
    stats = ReplayStats()
    started = time.perf_counter()
    with no_cyclic_gc():
        states = batch_population(inputs, as_of_day, config, stats, on_bad, on_progress)
        base = offline(config)
        scoring = scoring_config(base, calibration, stats, states.values, as_of_day)
        write_population(out, list(states.items()), as_of_day, stats, scoring, model)
    stats.seconds = time.perf_counter() - started
    return stats


FORK_MIN_CUSTOMERS = 4_000  # below, forking (~50 ms) costs more than half the evaluation saves
COPY_BYTES = 1 << 20


def write_population(
    out: IO[str], states: Sequence[tuple[str, CustomerState]], as_of_day: int, stats: ReplayStats,
    config: ScoringConfig, model: ValueModel | None,
) -> None:
    """`replay.write_profiles` of each customer's evaluation: the header, then one CSV row per customer.

    From FORK_MIN_CUSTOMERS customers and where the platform forks, a child forked here evaluates and writes
    the second half of the customers to a temporary file while this process does the first half, then appends
    it: the same rows in the same order, by the same function, on two cores. The child touches no Polars (see
    `streams.offline.background`)."""

    def profiles(part: Sequence[tuple[str, CustomerState]]) -> Iterator[Profile]:
        return (Profile(c, s, evaluate(s, as_of_day, config, model)) for c, s in part)

    half = len(states) // 2
    if len(states) < FORK_MIN_CUSTOMERS or not half or not can_fork():
        write_profiles(out, profiles(states), as_of_day, stats, config, model)
        return
    with tempfile.TemporaryDirectory(prefix="tierstream-rows-") as folder:
        rows = Path(folder) / "second-half.csv"

        def second_half() -> ReplayStats:
            part = ReplayStats()
            with rows.open("w", encoding="utf-8", errors="surrogateescape", newline="") as sink:
                write_rows(sink, profiles(states[half:]), as_of_day, part, config, model)
            return part

        with in_background(second_half) as pending:
            write_profiles(out, profiles(states[:half]), as_of_day, stats, config, model)
            part = pending.result()
        with rows.open(encoding="utf-8", errors="surrogateescape", newline="") as written:  # `out` encodes
            shutil.copyfileobj(written, out, COPY_BYTES)
    stats.add(part)  # its customers and tiers (it read no rows)


def batch_population(
    inputs: Inputs, as_of_day: int, config: ScoringConfig, stats: ReplayStats,
    on_bad: Callable[[BadRow], None] = lambda _: None, on_progress: Callable[[int], None] | None = None,
) -> dict[str, CustomerState]:
    """Every customer's state at the end of the as-of day, in customer order (`replay.population`'s answer);
    counts in `stats`, bad rows reported to `on_bad` (grouped reasons counted in `stats.grouped`)."""
    read = read_columns(inputs, on_progress)
    count_read(read, stats, on_bad)
    return fold_population(read.events, as_of_day, config, stats)


def population_of(
    read: ColumnRead, as_of_day: int, config: ScoringConfig, stats: ReplayStats,
    on_bad: Callable[[BadRow], None] = lambda _: None,
) -> dict[str, CustomerState]:
    """`batch_population`'s answer from inputs read already (`read_columns`): one read for several days."""
    count_read(read, stats, on_bad)
    return fold_population(read.events, as_of_day, config, stats)


def batch_purchases(
    paths: list[Path], layout: CsvLayout, until_day: int | None = None, config: ScoringConfig | None = None,
    on_progress: Callable[[int], None] | None = None, columns: ColumnRead | None = None,
) -> PurchaseRead:
    """`streams.offline.purchases.read_purchases`' answer, read and sorted in columns (same histories, same
    customer order, same counts); `columns`: the inputs read already (`read_columns`). Raises HistoryError
    when a file as a whole cannot be read."""
    read, ordered = _purchase_rows(paths, layout, until_day, config, on_progress, columns)
    grouped = ordered.group_by("customer", maintain_order=True).agg("day", "base")
    # divided in Python (money_float): Polars divides by multiplying (one ulp apart at times)
    read.histories = {customer: [(day, money_float(units)) for day, units in zip(days, amounts, strict=True)]
                      for customer, days, amounts in grouped.iter_rows()}
    return read


def batch_purchase_log(
    paths: list[Path], layout: CsvLayout, until_day: int | None = None, config: ScoringConfig | None = None,
    columns: ColumnRead | None = None,
) -> tuple[PurchaseRead, PurchaseLog]:
    """`batch_purchases`' answer as the value model's purchase log, without the per-customer lists (the read's
    `histories` is left empty): the arrays `scoring.valuemodel.summary.purchase_log` makes of its histories
    (customers in the same order, amounts the same floats), made from the columns."""
    from scoring.valuemodel.summary import purchase_log_of  # noqa: PLC0415 - the package imports SciPy

    read, ordered = _purchase_rows(paths, layout, until_day, config, None, columns)
    first = ordered.get_column("first").to_numpy()
    starts = np.ones(first.size, dtype=np.bool_)
    starts[1:] = first[1:] != first[:-1]  # a customer's rows are together (sorted by its first row)
    customer = np.cumsum(starts, dtype=np.int64) - 1
    day = ordered.get_column("day").to_numpy().astype(np.int64)
    return read, purchase_log_of(customer, day, _amounts(ordered), int(starts.sum()))


def parts_purchase_log(
    parts: Iterable[pl.DataFrame], paths: list[Path], layout: CsvLayout, until_day: int | None,
    config: ScoringConfig, seen: InputsSeen, bad: int,
) -> tuple[PurchaseRead, PurchaseLog]:
    """`batch_purchase_log`'s answer (the same arrays, the same counts) from inputs spilled by customer
    (`streams.offline.spill`): each part's events in file order (loaded as the iterable is read), every event
    of a customer in one part; `seen`: every block of the read; `bad`: the bad rows of the whole read.

    A part's rows are numbered by (input, line), the order the inputs' rows have when read whole, and its
    customers' (customer, day) purchase rows summed as `purchase_log_of` sums them; the parts' logs are then
    put in customers' first-row order. What is held at once: one part's events, and the purchase days."""
    from scoring.valuemodel.summary import PurchaseLog, purchase_log_of  # noqa: PLC0415 - the package imports SciPy

    read = PurchaseRead(bad=bad, unreadable=seen.unreadable(paths))
    firsts, days, amounts = [], [], []
    for events in parts:
        seq = (pl.col("src").cast(pl.Int64) * _LINES + pl.col("line")).alias("seq")
        ordered = _purchases_of(events.with_columns(seq), paths, layout, until_day, config, read)
        first = ordered.get_column("first").to_numpy()
        mine, local = np.unique(first, return_inverse=True)  # the part's customers, in first-row order
        log = purchase_log_of(local.astype(np.int64), ordered.get_column("day").to_numpy().astype(np.int64),
                              _amounts(ordered), mine.size)
        firsts.append(mine[log.customer])
        days.append(log.day)
        amounts.append(log.amount)
        del events, ordered
    first = np.concatenate(firsts) if firsts else np.zeros(0, dtype=np.int64)
    day = np.concatenate(days) if days else np.zeros(0, dtype=np.int64)
    order = np.lexsort((day, first))  # each (customer, day) is one row: the order is total
    customers, customer = np.unique(first[order], return_inverse=True)
    amount = np.concatenate(amounts)[order] if amounts else np.zeros(0, dtype=np.float64)
    return read, PurchaseLog(customer.astype(np.int64), day[order], amount, int(customers.size))


_LINES = 1 << 40  # a row's number in a part: input x _LINES + line (an input of fewer lines than this)


def _amounts(ordered: pl.DataFrame) -> npt.NDArray[np.float64]:
    """The purchases' base amounts as floats: units / 10,000 as `money_float` divides them."""
    units = ordered.get_column("base").to_numpy().astype(np.int64)
    if units.size and int(np.abs(units).max()) >= 2**53:  # beyond it float(units) rounds: as money_float does
        return np.array([money_float(int(u)) for u in units], dtype=np.float64)
    return units / SCALE  # IEEE double division, correctly rounded as Python's int / int (money_float)


def _purchase_rows(
    paths: list[Path], layout: CsvLayout, until_day: int | None, config: ScoringConfig | None,
    on_progress: Callable[[int], None] | None, columns: ColumnRead | None,
) -> tuple[PurchaseRead, pl.DataFrame]:
    """The counts of `batch_purchases` and its purchases (customer, day, base, first: the customer's first row),
    in the histories' order: customers by their first row, each one's rows by day and amount."""
    config = config or ScoringConfig()
    read = PurchaseRead()
    if columns is None:
        columns = read_columns(Inputs(tuple(paths), layout), on_progress)
    read.bad = len(columns.bad)
    seen = InputsSeen()
    seen.add(columns)
    read.unreadable = seen.unreadable(paths)
    return read, _purchases_of(columns.events.with_row_index("seq"), paths, layout, until_day, config, read)


class InputsSeen:
    """What a read (whole, or block by block: `add` each) found of each input: its first bad row, and whether
    any of its rows was read; enough to name the first input none of whose rows could be read."""

    def __init__(self) -> None:
        self.first_bad: dict[str, BadRow] = {}  # input -> its first bad row
        self.with_events: set[int] = set()  # inputs of which some row was read

    def add(self, read: ColumnRead) -> None:
        for row in read.bad:
            self.first_bad.setdefault(row.source, row)
        self.with_events.update(read.events.get_column("src").unique().to_list())

    def unreadable(self, paths: list[Path]) -> tuple[Path, BadRow] | None:
        """The first input none of whose rows could be read, and its first bad row (None: no such input)."""
        for src, path in enumerate(paths):
            if str(path) in self.first_bad and src not in self.with_events:
                return path, self.first_bad[str(path)]
        return None


def _purchases_of(
    events: pl.DataFrame, paths: list[Path], layout: CsvLayout, until_day: int | None, config: ScoringConfig,
    read: PurchaseRead,
) -> pl.DataFrame:
    """`_purchase_rows`' purchases of `events` (numbered in file order: `seq`), their counts added to `read`."""
    deduped = [src for src, path in enumerate(paths) if layout.event_id or is_jsonl(path)]
    if deduped:  # ids of their own (else each row's id is its file and line: no repeat to look for)
        repeat = pl.col("src").is_in(deduped) & (pl.col("seq") != pl.col("seq").min().over("src", "customer", "eid"))
        events = events.with_columns(repeat=repeat)
        read.duplicates += events.filter(pl.col("repeat")).height
        events = events.filter(~pl.col("repeat"))
    kind = pl.col("kind")
    read.returns += events.filter(kind == int(Kind.RETURN)).height
    read.not_purchases += events.filter((kind != int(Kind.RETURN)) & (kind != int(Kind.PURCHASE))).height
    buys = events.filter(kind == int(Kind.PURCHASE))
    rated = ["", config.base_currency, *config.fx_rates]
    read.no_rate += buys.filter(~pl.col("currency").is_in(rated)).height
    buys = buys.filter(pl.col("currency").is_in(rated))
    buys = buys.with_columns(base=_base_e4(buys, config), day=pl.col("at_ms") // MS_PER_DAY)
    if until_day is not None:
        read.later += buys.filter(pl.col("day") > until_day).height
        buys = buys.filter(pl.col("day") <= until_day)
    read.purchases += buys.height
    buys = buys.with_columns(first=pl.col("seq").min().over("customer"))
    ordered = buys.sort("first", "day", "base")  # 1/10,000 units sort as their amounts do
    return ordered.select("customer", "day", "base", "first")
