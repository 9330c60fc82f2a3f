"""`tierstream calibrate`: the population calibration of a history, and what a new one would move."""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable, Iterator
from contextlib import ExitStack, contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

from scoring.calibrate import CustomerFigures, calibrate_figures
from scoring.calibration import Calibration
from scoring.config import ScoringConfig
from scoring.errors import CalibrationError
from scoring.state import CustomerState
from streams.calibrationfile import applied, load_calibration, save_calibration
from streams.cli.base import ConfigOpt, app, check_writable, err, parse_day, settings_from
from streams.cli.options import (
    AmountCol,
    CategoryCol,
    Columns,
    CurrencyCol,
    CustomerCol,
    DateFormat,
    Delimiter,
    IdCol,
    Inputs,
    ItemCol,
    QuantityCol,
    SeverityCol,
    TimeCol,
    Timezone,
    TypeCol,
    csv_layout,
)
from streams.offline.history import HistoryError, nothing_read
from streams.offline.history import Inputs as History

if TYPE_CHECKING:
    from streams.offline.columnar import ColumnRead
    from streams.offline.populations import Population
    from streams.offline.replay import ReplayStats


@app.command(epilog="""Examples:

\b
  tierstream calibrate purchases.csv --as-of 2024-12-31 --out cal.json
  tierstream calibrate purchases.csv --as-of 2025-01-31 --out new.json --diff cal.json
      # who would move
  tierstream calibrate online_retail.csv.gz --as-of 2011-12-09 --customer-col CustomerID \\
      --time-col InvoiceDate --amount-col UnitPrice --quantity-col Quantity
""")
def calibrate(
    inputs: Inputs,
    as_of: Annotated[str, typer.Option("--as-of", help="The population as of the end of this day.")],
    config: ConfigOpt = None,
    out: Annotated[Path, typer.Option("--out", "-o", help="Where to write the calibration (JSON).")]
    = Path("calibration.json"),
    diff: Annotated[Path | None, typer.Option(
        help="An older calibration: print how many customers would move from each tier to each tier.",
        exists=True, dir_okay=False)] = None,
    customer_col: CustomerCol = "customer_id", time_col: TimeCol = "occurred_at", amount_col: AmountCol = "amount",
    type_col: TypeCol = None, id_col: IdCol = None, currency_col: CurrencyCol = None,
    quantity_col: QuantityCol = None, severity_col: SeverityCol = None, delimiter: Delimiter = ",",
    columns: Columns = None, date_format: DateFormat = None, timezone: Timezone = "UTC",
    item_col: ItemCol = None, category_col: CategoryCol = None,
) -> None:
    """Calibrate tiers to a population of customers.

    Writes R/F/M percentile tables and the scores that give each tier its share of the active customers
    (`tier_shares`). Replay, fit and workers use the file it writes."""
    check_writable(out, "--out")
    configured = settings_from(config).scoring
    scoring = calibrating(configured)
    day = parse_day(as_of)
    old = applied(scoring, load_calibration(diff), diff) if diff is not None else None
    from streams.offline import populations

    with read_people(History(tuple(inputs), csv_layout(**locals())), scoring, "calibrate") as (people, stats):
        calibration = calibrated(lambda: populations.calibrate(people, day, scoring))
        try:
            save_calibration(calibration, out)
        except OSError as exc:
            err.print(f"tierstream: error: cannot write {out}: {exc.strerror}", markup=False)
            raise typer.Exit(2) from None
        for line in report(calibration, out, stats, configured):
            err.print(line, markup=False)
        if old is not None and old.calibration is not None:
            moves = populations.moves(people, day, scoring, old, scoring.calibrated(calibration))
            for line in moves_table(moves, scoring.tier_names, old.calibration.version, calibration.version):
                err.print(line, markup=False)


def calibration_of(figures: list[CustomerFigures], day: int, config: ScoringConfig) -> Calibration:
    """The calibration of these customers; exit 1 (one line) when none is active."""
    return calibrated(lambda: calibrate_figures(figures, day, config))


def calibrated(calibrate: Callable[[], Calibration]) -> Calibration:
    """`calibrate()`'s calibration; exit 1 (one line) when no customer is active."""
    try:
        return calibrate()
    except CalibrationError as exc:
        err.print(f"tierstream: cannot calibrate: {exc}", markup=False)
        raise typer.Exit(1) from None


def calibrating(config: ScoringConfig) -> ScoringConfig:
    """The config to calibrate under: calibrated tiering, whatever the file says (the artefact is the same)."""
    return config if config.tiering == "calibrated" else config.model_copy(update={"tiering": "calibrated"})


def read_population(
    inputs: History, day: int, config: ScoringConfig, per_row: bool = False, read: ColumnRead | None = None,
) -> tuple[dict[str, CustomerState], ReplayStats]:
    """Every customer's state at the end of `day` (`per_row`: read and folded by the reference, row by row;
    `read`: the inputs read in columns already); a file or column problem is a usage error (exit 2)."""
    from streams.cli.progress import estimated_rows, terminal_progress
    from streams.offline.batch import batch_population, population_of
    from streams.offline.replay import ReplayStats, population

    stats = ReplayStats()
    try:
        if per_row:
            states = population(inputs.rows(), day, config, stats)
        elif read is not None:
            states = population_of(read, day, config, stats)
        else:
            with terminal_progress(err, "calibrate", estimated_rows(list(inputs.paths))) as on_progress:
                states = batch_population(inputs, day, config, stats, on_progress=on_progress)  # in columns
    except HistoryError as exc:
        err.print(f"tierstream: error: {exc}", markup=False)
        raise typer.Exit(2) from None
    check_read(stats)
    return states, stats


@contextmanager
def read_people(inputs: History, config: ScoringConfig, task: str) -> Iterator[tuple[Population, ReplayStats]]:
    """The customers of `inputs` under `config` (`streams.offline.populations.population`: in memory, or in
    parts spilled to disk when the inputs are larger than a part); a file or column problem is a usage error
    (exit 2), bad rows are summed up in one line as `read_population` does."""
    from streams.cli.progress import estimated_rows, terminal_progress
    from streams.offline.populations import population
    from streams.offline.replay import ReplayStats

    stats = ReplayStats()
    with ExitStack() as stack:
        try:
            with terminal_progress(err, task, estimated_rows(list(inputs.paths))) as on_progress:
                people = stack.enter_context(population(inputs, config, stats, on_progress=on_progress))
        except HistoryError as exc:
            err.print(f"tierstream: error: {exc}", markup=False)
            raise typer.Exit(2) from None
        check_read(stats)
        yield people, stats


def check_read(stats: ReplayStats) -> None:
    """Exit 2 when no row could be read; else one line summing up the bad rows (if any)."""
    if stats.rows and stats.bad == stats.rows:
        err.print(f"tierstream: error: {nothing_read(None, stats.bad)}", markup=False)
        raise typer.Exit(2)
    if stats.bad:
        reasons = ", ".join(f"{n:,} {reason}" for reason, (n, _) in sorted(stats.grouped.items()))
        err.print(f"skipped {stats.bad:,} bad rows{f' ({reasons})' if reasons else ''}; "
                  "`tierstream replay` reports them by line", markup=False)


def report(calibration: Calibration, out: Path, stats: ReplayStats, config: ScoringConfig) -> list[str]:
    """What was calibrated: version, population, thresholds."""
    thresholds = ", ".join(f"{t} >= {s:g}" for t, s in calibration.thresholds.items())
    shares = ", ".join(f"{t} {s:.0%}" for t, s in calibration.shares.items())
    lines = [
        f"calibration {calibration.version} -> {out}: {calibration.active:,} active customers of "
        f"{calibration.customers:,} as of {calibration.as_of} (rows read {stats.rows:,})",
        f"thresholds: {thresholds} (shares of the active customers: {shares})",
    ]
    if config.tiering != "calibrated":
        lines.append("note: this config has tiering: absolute; the calibration applies under tiering: calibrated")
    return lines


def moves_table(moves: Counter[tuple[str, str]], tiers: tuple[str, ...], old: str, new: str) -> list[str]:
    """Customers per tier move: a row per old tier, a column per new tier, with totals."""
    width = max(8, *(len(t) + 2 for t in tiers))
    total = sum(moves.values())
    moved = sum(n for (a, b), n in moves.items() if a != b)
    lines = [f"customers per tier move, old {old} (rows) -> new {new} (columns):",
             "old \\ new".ljust(width) + "".join(t.rjust(width) for t in tiers) + "total".rjust(width)]
    for a in tiers:
        row = [moves.get((a, b), 0) for b in tiers]
        lines.append(a.ljust(width) + "".join(f"{n:,}".rjust(width) for n in row) + f"{sum(row):,}".rjust(width))
    columns = [sum(moves.get((a, b), 0) for a in tiers) for b in tiers]
    lines.append("total".ljust(width) + "".join(f"{n:,}".rjust(width) for n in columns) + f"{total:,}".rjust(width))
    share = moved / total if total else 0.0
    lines.append(f"moved: {moved:,} of {total:,} customers ({share:.1%})")
    return lines

