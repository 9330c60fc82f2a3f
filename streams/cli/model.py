"""`tierstream fit` and `tierstream evaluate`: the customer value model."""

from __future__ import annotations

import json
import os
import sys
from collections.abc import Callable, Iterator
from contextlib import ExitStack, contextmanager, suppress
from functools import partial
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer
from rich.table import Table

from scoring.calibrate import customer_figures
from scoring.config import ScoringConfig
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
    TimeCol,
    Timezone,
    TypeCol,
    csv_layout,
)
from streams.offline.background import given_later
from streams.offline.history import CsvLayout, HistoryError, nothing_read

# Input bytes from which `fit` fits the model in a forked process beside the reading and the calibration's fold
# (~20,000 rows of a CSV; below it both take well under a second, and a fork costs tens of milliseconds).
BACKGROUND_MIN_BYTES = 1 << 20

if TYPE_CHECKING:
    from scoring.affinity import Affinity
    from scoring.calibration import Calibration
    from scoring.valuemodel.summary import PurchaseLog
    from streams.offline.columnar import ColumnRead
    from streams.offline.purchases import PurchaseRead
    from streams.offline.replay import ReplayStats
    from streams.offline.spill import SpilledPopulation


def _columns(inputs: list[Path], layout: CsvLayout) -> ColumnRead:
    """The inputs read in columns (with a progress bar on a terminal), for the commands that read them twice;
    a file or column problem is a usage error (exit 2)."""
    from streams.cli.progress import estimated_rows, terminal_progress
    from streams.offline.columnar import read_columns
    from streams.offline.history import Inputs as History

    try:
        with terminal_progress(err, "read", estimated_rows(inputs)) as on_progress:
            return read_columns(History(tuple(inputs), layout), on_progress)
    except HistoryError as exc:
        err.print(f"tierstream: error: {exc}", markup=False)
        raise typer.Exit(2) from None


def _purchases(
    inputs: list[Path], layout: CsvLayout, until_day: int | None = None, config: Path | None = None,
    per_row: bool = False, columns: ColumnRead | None = None, as_log: bool = False,
) -> tuple[PurchaseRead, PurchaseLog | None]:
    """The purchases read (row by row with `per_row`, else in columns), and with `as_log` (in columns) their
    purchase log instead of the per-customer lists (`batch_purchase_log`: what the fit makes of them)."""
    from streams.offline.batch import batch_purchase_log, batch_purchases  # read_purchases' answer, in columns
    from streams.offline.purchases import read_purchases

    scoring = settings_from(config).scoring  # fx_rates for a currency column; a bad config is one line (main)
    log = None
    try:
        if per_row:  # the reference reader
            read = read_purchases(inputs, layout, until_day, scoring)
        elif as_log:
            read, log = batch_purchase_log(inputs, layout, until_day, scoring, columns or _columns(inputs, layout))
        else:
            read = batch_purchases(inputs, layout, until_day, scoring, columns=columns or _columns(inputs, layout))
    except HistoryError as exc:
        err.print(f"tierstream: error: {exc}", markup=False)
        raise typer.Exit(2) from None
    _say_read(read, log.n_customers if log is not None else len(read.histories))
    return read, log


def _say_read(read: PurchaseRead, customers: int) -> None:
    """Exit 2 (one line) when an input could not be read at all; else what was left out, if anything."""
    if read.unreadable is not None:  # wrong columns or format: one clear line instead of a fit error
        path, row = read.unreadable
        err.print(f"tierstream: error: {nothing_read(row._replace(source=str(path)))}", markup=False)
        raise typer.Exit(2)
    if read.left_out():
        err.print(f"read {read.purchases:,} purchases of {customers:,} customers; left out: "
                  f"{read.left_out()}", markup=False, soft_wrap=True)


@app.command(epilog="""Examples:

\b
  tierstream fit purchases.csv --as-of 2024-12-31 --out model.json
  tierstream fit CDNOW_sample.txt --as-of 19980630 --delimiter whitespace \\
      --columns customer_id,id,occurred_at,quantity,amount --out model.json
  tierstream fit online_retail.csv.gz --as-of 2011-09-09 --customer-col CustomerID \\
      --time-col InvoiceDate --amount-col UnitPrice --quantity-col Quantity

Writes the calibration of the same history beside the model: model.calibration.json.
""")
def fit(
    inputs: Inputs,
    as_of: Annotated[str, typer.Option("--as-of", help="Fit on purchases up to this day (inclusive).")],
    out: Annotated[Path, typer.Option("--out", "-o", help="Where to write the model (JSON).")] = Path("model.json"),
    calibration_out: Annotated[Path | None, typer.Option(
        help="Where to write the population calibration of the same history (default: beside the model, "
             "NAME.calibration.json).")] = None,
    config: ConfigOpt = None,
    horizon_days: Annotated[int, typer.Option(help="At-risk horizon: P(no purchase in the next N days).")] = 90,
    window_days: Annotated[int, typer.Option(help="Window of the learned F/M thresholds.")] = 365,
    version: Annotated[str | None, typer.Option(help="Model version stamped on outputs.")] = None,
    customer_col: CustomerCol = "customer_id", time_col: TimeCol = "occurred_at",
    amount_col: AmountCol = "amount", type_col: TypeCol = None, id_col: IdCol = None,
    currency_col: CurrencyCol = None, quantity_col: QuantityCol = None,
    delimiter: Delimiter = ",", columns: Columns = None, date_format: DateFormat = None, timezone: Timezone = "UTC",
    per_row: Annotated[bool, typer.Option(
        "--per-row", help="Read the history row by row (the reference reader; slower, same model).")] = False,
    item_col: ItemCol = None, category_col: CategoryCol = None,
) -> None:
    """Fit the customer value model to a purchase history.

    BG/NBD, Gamma-Gamma, the at-risk model and data-driven R/F/M thresholds; calibrates tiers to the
    same history (see `tierstream calibrate`). With items (--item-col or --category-col, or JSONL purchases
    with items), the categories' co-purchase affinity too (what a cross-sell proposes)."""
    day = parse_day(as_of)
    calibration_out = calibration_out or out.with_suffix(".calibration.json")
    check_writable(out, "--out")  # before the fit, which may take minutes (and its imports, seconds)
    check_writable(calibration_out, "--calibration-out")
    _one_blas_thread()
    from scoring.valuemodel.errors import ValueModelError  # the rest of the model (SciPy) where it is fitted
    from streams.offline.replay import no_cyclic_gc

    scoring = settings_from(config).scoring
    layout = csv_layout(**locals())
    affinity = partial(_affinity, inputs, layout, day, scoring)
    fitting = partial(_fitted, day, horizon_days, window_days, version, affinity, out)
    # The model is fitted and written in a forked process, which imports SciPy while this one reads the history
    # and then fits it while this one folds the calibration's population: the box's two cores, the same answers
    # as one after the other. The calibration's lines wait for the model's.
    forked = _input_bytes(inputs) >= BACKGROUND_MIN_BYTES
    parts = 1 if per_row else _parts(inputs, layout)
    # no cyclic collector (the values are acyclic: it would only re-scan them), in the forked child too
    with no_cyclic_gc(), given_later(fitting, _model_modules, forked, (ValueModelError,)) as give, \
            ExitStack() as spilled:
        if parts > 1:  # more text than a part: read once, spilled to disk by customer, folded part by part
            log, calibrate = spilled.enter_context(_in_parts(inputs, layout, day, scoring, parts))
            pending = give((log, log.n_customers))
            calibration = None if pending.failed else calibrate()
        else:
            read = None if per_row else _columns(inputs, layout)  # one read for the fit and the calibration
            purchases, whole = _purchases(inputs, layout, day, config, per_row, read, as_log=not per_row)
            customers = whole.n_customers if whole is not None else len(purchases.histories)
            pending = give((whole or purchases.histories, customers))
            calibration = None if pending.failed else _calibration(inputs, layout, day, scoring, per_row, read)
        try:
            report = pending.result()
        except ValueModelError as exc:
            err.print(f"tierstream: cannot fit: {exc}", markup=False)
            raise typer.Exit(1) from None
    err.print(report, markup=False, soft_wrap=True)  # one line per part: never wrapped mid-sentence
    assert calibration is not None  # computed unless the model failed
    calibration(calibration_out)


def _input_bytes(inputs: list[Path]) -> int:
    """The inputs' size on disk (what is not a regular file counts as large: stdin, a pipe)."""
    total = 0
    for path in inputs:
        with suppress(OSError):  # reported by the read, as before
            total += path.stat().st_size if path.is_file() else BACKGROUND_MIN_BYTES
    return total


def _parts(inputs: list[Path], layout: CsvLayout) -> int:
    """How many parts `fit` reads the inputs in (`streams.offline.spill.parts_for`: 1 when they fit a part)."""
    from streams.offline import spill
    from streams.offline.history import Inputs as History

    return spill.parts_for(History(tuple(inputs), layout), spill.CHUNK_BYTES)


@contextmanager
def _in_parts(
    inputs: list[Path], layout: CsvLayout, day: int, config: ScoringConfig, parts: int,
) -> Iterator[tuple[PurchaseLog, Callable[[], Callable[[Path], None]]]]:
    """The inputs read once and spilled by customer to `parts` parts (`_spilled_log`): the purchase log, and a
    call that computes the calibration part by part (`spill.calibrate_population`) as `_calibration` does
    (what it printed held until its answer writes it). What is held at once: one part, and the purchase days."""
    from streams.cli.calibrate import calibrated as calibrated_or_exit
    from streams.cli.calibrate import calibrating, check_read
    from streams.offline import spill

    scoring = calibrating(config)
    with _spilled_log(inputs, layout, day, scoring, parts) as (people, stats, log):

        def calibration() -> tuple[Calibration, ReplayStats]:
            check_read(stats)
            return calibrated_or_exit(lambda: spill.calibrate_population(people, day, scoring)), stats

        yield log, partial(_held_calibration, calibration, config)


@contextmanager
def _spilled_log(
    inputs: list[Path], layout: CsvLayout, until_day: int | None, config: ScoringConfig, parts: int,
) -> Iterator[tuple[SpilledPopulation, ReplayStats, PurchaseLog]]:
    """The inputs read once and spilled by customer to `parts` parts of a temporary folder (removed on exit),
    what the read counted, and the purchase log (up to `until_day`) made part by part
    (`batch.parts_purchase_log`: the log of the inputs read whole); what was left out said as `_purchases`
    says it. What is held at once: one part, and the purchase days."""
    from streams.cli.progress import estimated_rows, terminal_progress
    from streams.offline import columnar, spill
    from streams.offline.batch import InputsSeen, parts_purchase_log
    from streams.offline.history import Inputs as History
    from streams.offline.replay import ReplayStats

    stats = ReplayStats()
    seen = InputsSeen()
    with ExitStack() as stack:
        try:
            with terminal_progress(err, "read", estimated_rows(inputs)) as on_progress:
                people = stack.enter_context(spill.spilled(  # the block size looked up now (the tests patch it)
                    History(tuple(inputs), layout), parts, config, stats, lambda _: None, on_progress,
                    columnar.BLOCK_BYTES, seen.add))
        except HistoryError as exc:
            err.print(f"tierstream: error: {exc}", markup=False)
            raise typer.Exit(2) from None
        read, log = parts_purchase_log((spill.part_events(files) for files in people.files), inputs, layout,
                                       until_day, config, seen, stats.bad)
        _say_read(read, log.n_customers)
        yield people, stats, log


def _purchase_log(inputs: list[Path], layout: CsvLayout, config: Path | None) -> PurchaseLog:
    """Every purchase of the inputs as the value model's purchase log: read in columns, or spilled by customer
    and made part by part when the inputs are larger than a part (`_spilled_log`; what is held then: one part,
    and the purchase days, never every row)."""
    parts = _parts(inputs, layout)
    if parts > 1:
        with _spilled_log(inputs, layout, None, settings_from(config).scoring, parts) as (_, _, log):
            return log
    whole = _purchases(inputs, layout, None, config, as_log=True)[1]
    assert whole is not None  # as_log: the columns' log
    return whole


def _held_calibration(
    compute: Callable[[], tuple[Calibration, ReplayStats]], config: ScoringConfig,
) -> Callable[[Path], None]:
    """`compute()` run now, what it prints held: the answer prints that, then exits as computing did, or writes
    the calibration to a path and reports it (`fit` prints the model's lines first)."""
    from streams.offline.replay import ReplayStats

    failure: typer.Exit | None = None
    calibration, stats = None, ReplayStats()
    with err.capture() as held:
        try:
            calibration, stats = compute()
        except typer.Exit as exc:
            failure = exc
    return partial(_write_calibration, held.get(), failure, calibration, stats, config)


def _write_calibration(
    held: str, failure: typer.Exit | None, calibration: Calibration | None, stats: ReplayStats,
    config: ScoringConfig, out: Path,
) -> None:
    """Print what computing the calibration printed, then exit as it did, or write it to `out` and report it."""
    from streams.calibrationfile import save_calibration
    from streams.cli.calibrate import report

    err.file.write(held)
    if failure is not None:
        raise failure
    assert calibration is not None
    save_calibration(calibration, out)
    for line in report(calibration, out, stats, config):
        err.print(line, markup=False)


def _model_modules() -> None:
    """What fitting a model imports (NumPy, SciPy: about a second), imported ahead."""
    import scoring.valuemodel.model
    import scoring.valuemodel.report  # noqa: F401
    import streams.modelfile  # noqa: F401


def _fitted(
    day: int, horizon_days: int, window_days: int, version: str | None, affinity: Callable[[], Affinity | None],
    out: Path, given: tuple[PurchaseLog | dict[str, list[tuple[int, float]]], int],
) -> str:
    """Fit the value model (and the categories' affinity), write it to `out`: what `fit` reports of it."""
    from scoring.valuemodel import fit_value_model
    from scoring.valuemodel.report import fit_lines
    from streams.modelfile import save_model

    history, customers = given
    model = fit_value_model(history, day, horizon_days, window_days, version).with_affinity(affinity())
    save_model(model, out)
    return "\n".join([f"fitted {model.version} on {customers:,} customers -> {out}", *fit_lines(model)])


def _one_blas_thread() -> None:
    """One OpenBLAS thread for this process (unless the environment says otherwise), set before NumPy loads
    it: the fit's matrices are small, its two processes already take the two cores, and OpenBLAS's idle
    threads spin on a core for a while after each call (on a busy 2-core box the window fits took 3-4x as
    long). Its threads also split sums differently, which moved the at-risk weights by ~1e-15."""
    if "numpy" not in sys.modules:
        os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")


def _affinity(inputs: list[Path], layout: CsvLayout, day: int, config: ScoringConfig) -> Affinity | None:
    """The categories' affinity on purchases up to `day` (None when the history has no items)."""
    from scoring.affinity import fit_affinity
    from streams.offline.baskets import has_categories, read_baskets
    from streams.offline.history import Inputs as History

    history = History(tuple(inputs), layout)
    if not has_categories(history):
        return None
    baskets = read_baskets(history, day, 0, config)
    if not baskets.before:
        return None
    a = config.affinity
    return fit_affinity(baskets.before.values(), a.min_support, a.related_kept)


def _calibration(
    inputs: list[Path], layout: CsvLayout, day: int, config: ScoringConfig, per_row: bool = False,
    columns: ColumnRead | None = None,
) -> Callable[[Path], None]:
    """The calibration of the history (what `tierstream calibrate` writes), computed now; the answer writes it
    to a path and reports it, or exits as computing it did. What computing it printed is held until then
    (`fit` prints the model's lines first)."""
    from streams.cli.calibrate import calibrating, calibration_of, read_population
    from streams.offline.history import Inputs as History

    scoring = calibrating(config)

    def calibration() -> tuple[Calibration, ReplayStats]:
        states, stats = read_population(History(tuple(inputs), layout), day, scoring, per_row, columns)
        return calibration_of([customer_figures(s, day, scoring) for s in states.values()], day, scoring), stats

    return _held_calibration(calibration, config)


@app.command("evaluate", epilog="""Examples:

\b
  tierstream evaluate purchases.csv --cal-end 2024-06-30
  tierstream evaluate CDNOW_sample.txt --cal-end 19971231 --delimiter whitespace \\
      --columns customer_id,id,occurred_at,quantity,amount
  tierstream evaluate online_retail.csv.gz --cal-end 2011-09-09 --customer-col CustomerID \\
      --time-col InvoiceDate --amount-col UnitPrice --quantity-col Quantity --item-col StockCode
""")
def evaluate_command(
    inputs: Inputs,
    cal_end: Annotated[str, typer.Option("--cal-end", help="Calibrate up to this day; predict after it.")],
    horizon_days: Annotated[int | None, typer.Option(help="Holdout length (default: to the end of the data).")]
    = None,
    json_out: Annotated[Path | None, typer.Option("--json", help="Also write the figures as JSON.")] = None,
    bootstrap: Annotated[int, typer.Option(min=0, help="Resamples of customers for the intervals (0: none).")]
    = 1000,
    potential_days: Annotated[int, typer.Option("--potential-days", min=0,
                                                help="Held-out days of the potential check (0: skip it).")] = 90,
    affinity_days: Annotated[int, typer.Option("--affinity-days", min=0, help=(
        "Held-out days of the category affinity check (0: skip it; needs --item-col or --category-col, "
        "or JSONL purchases with items)."))] = 90,
    customer_col: CustomerCol = "customer_id", time_col: TimeCol = "occurred_at",
    amount_col: AmountCol = "amount", type_col: TypeCol = None, id_col: IdCol = None,
    currency_col: CurrencyCol = None, quantity_col: QuantityCol = None,
    delimiter: Delimiter = ",", columns: Columns = None, date_format: DateFormat = None, timezone: Timezone = "UTC",
    item_col: ItemCol = None, category_col: CategoryCol = None,
    config: ConfigOpt = None,
) -> None:
    """Held-out checks of at-risk, potential and category affinity.

    At-risk against 1 - P(alive) and days since the last purchase; potential: do low-value customers in
    the high-potential cell move up a tier more often than the other low-value ones? Affinity: is the
    proposed category bought more often than the best seller proposed to everyone (hit rate at 1)?"""
    from rich.console import Console

    from scoring.valuemodel import ValueModelError, evaluate
    from scoring.valuemodel.report import evaluation_notes, evaluation_rows, evaluation_title

    if json_out is not None:
        check_writable(json_out, "--json")
    log = _purchase_log(inputs, csv_layout(**locals()), config)
    try:
        result = evaluate(log, parse_day(cal_end), horizon_days, bootstrap_rounds=bootstrap)
    except ValueModelError as exc:
        err.print(f"tierstream: cannot evaluate: {exc}", markup=False)
        raise typer.Exit(1) from None
    del log  # every customer's purchase days: not held through the checks below
    table = Table("segment", "method", "customers", "did not buy", "ROC AUC", "precision@top20%",
                  "model - this: AUC", "model - this: P@20", title=evaluation_title(result))
    for row in evaluation_rows(result):
        table.add_row(*row)
    console = Console(width=max(Console().width, 150))  # never cut the segment names or figures
    console.print(table)
    for note in evaluation_notes(result):
        console.print(note, markup=False, soft_wrap=True)
    if potential_days:
        for line in _potential_lines(inputs, csv_layout(**locals()), parse_day(cal_end), potential_days, config):
            console.print(line, markup=False, soft_wrap=True)
    if affinity_days:
        for line in _affinity_lines(inputs, csv_layout(**locals()), parse_day(cal_end), affinity_days, config):
            console.print(line, markup=False, soft_wrap=True)
    if json_out is not None:
        json_out.write_text(json.dumps(result.to_dict(), indent=2) + "\n")


def _potential_lines(inputs: list[Path], layout: CsvLayout, cut_day: int, days: int, config: Path | None) -> list[str]:
    """The held-out potential check (`scoring.potential_check`), scored under a calibration made at the cut:
    one read for both days, in parts spilled to disk when the inputs are larger than a part."""
    from scoring.potential_check import describe
    from streams.cli.calibrate import calibrated, calibrating, read_people
    from streams.offline import populations
    from streams.offline.history import Inputs as History

    scoring = settings_from(config).scoring
    with read_people(History(tuple(inputs), layout), scoring, "read") as (people, _):
        if scoring.tiering == "calibrated":
            calibration = calibrated(lambda: populations.calibrate(people, cut_day, calibrating(scoring)))
            scoring = scoring.calibrated(calibration)
        return describe(populations.potential(people, cut_day, days, scoring), scoring)


def _affinity_lines(inputs: list[Path], layout: CsvLayout, cut_day: int, days: int, config: Path | None) -> list[str]:
    """The held-out affinity check (`scoring.affinity_check`): fitted on the purchases up to the cut."""
    from scoring.affinity import fit_affinity
    from scoring.affinity_check import check_affinity, describe
    from streams.offline.baskets import has_categories, read_baskets
    from streams.offline.history import Inputs as History

    scoring = settings_from(config).scoring
    history = History(tuple(inputs), layout)
    if not has_categories(history):
        return ["Category affinity: not checked (no items: give --item-col or --category-col)"]
    baskets = read_baskets(history, cut_day, days, scoring)
    if not baskets.before:
        return ["Category affinity: not checked (no purchase before the cut-off has an item)"]
    a = scoring.affinity
    affinity = fit_affinity(baskets.before.values(), a.min_support, a.related_kept)
    kept = {customer: [name for name, _ in pairs] for customer, pairs in baskets.kept.items()}
    return describe(check_affinity(kept, baskets.after, affinity, days))
