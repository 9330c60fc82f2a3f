"""`tierstream fit` and `tierstream evaluate`: the customer value model."""

from __future__ import annotations

import json
from collections import defaultdict
from pathlib import Path
from typing import Annotated

import typer
from rich.table import Table

from scoring.events import MS_PER_DAY, Kind
from streams.cli import app, err, parse_day
from streams.commands.options import (
    AmountCol,
    Columns,
    CustomerCol,
    DateFormat,
    Delimiter,
    Inputs,
    QuantityCol,
    TimeCol,
    TypeCol,
    csv_layout,
)
from streams.history import BadRow, CsvLayout, HistoryError, read_history

History = dict[str, list[tuple[int, float]]]


def purchase_histories(
    inputs: list[Path], layout: CsvLayout, until_day: int | None = None
) -> tuple[History, int, tuple[Path, BadRow] | None]:
    """Per customer, (epoch day, amount) purchases sorted by day; the number of bad rows skipped; and
    the first bad row of the first input none of whose rows could be read (None when each had a good row)."""
    histories: History = defaultdict(list)
    bad, unreadable = 0, None
    for path in inputs:
        first_bad, good = None, 0
        for row in read_history(path, layout):
            if isinstance(row, BadRow):
                bad += 1
                first_bad = first_bad or row
                continue
            good += 1
            event = row.event
            day = event.at_ms // MS_PER_DAY
            if event.kind is Kind.PURCHASE and (until_day is None or day <= until_day):
                histories[row.customer_id].append((day, event.amount_cents / 100))
        if first_bad is not None and not good and unreadable is None:
            unreadable = (path, first_bad)
    for purchases in histories.values():
        purchases.sort()
    return dict(histories), bad, unreadable


def _histories(inputs: list[Path], layout: CsvLayout, until_day: int | None = None) -> History:
    try:
        histories, bad, all_bad = purchase_histories(inputs, layout, until_day)
    except HistoryError as exc:
        err.print(f"tierstream: error: {exc}", markup=False)
        raise typer.Exit(2) from None
    if all_bad is not None:  # wrong columns or format: one clear line instead of a fit error
        path, row = all_bad
        err.print(f"tierstream: error: {path}: no row could be read; first bad row, line {row.line}: {row.reason}",
                  markup=False)
        raise typer.Exit(2)
    if bad:
        err.print(f"skipped {bad:,} bad rows (see `tierstream replay --strict` to find them)")
    return histories


@app.command(epilog="""Examples:

  tierstream fit purchases.csv --as-of 2024-12-31 --out model.json

  tierstream fit CDNOW_sample.txt --as-of 19980630 --delimiter whitespace
      --columns customer_id,id,occurred_at,quantity,amount --out model.json
""")
def fit(
    inputs: Inputs,
    as_of: Annotated[str, typer.Option("--as-of", help="Fit on purchases up to this day (inclusive).")],
    out: Annotated[Path, typer.Option("--out", "-o", help="Where to write the model (JSON).")] = Path("model.json"),
    horizon_days: Annotated[int, typer.Option(help="At-risk horizon: P(no purchase in the next N days).")] = 90,
    window_days: Annotated[int, typer.Option(help="Window of the learned F/M thresholds.")] = 365,
    version: Annotated[str | None, typer.Option(help="Model version stamped on outputs.")] = None,
    customer_col: CustomerCol = "customer_id", time_col: TimeCol = "occurred_at",
    amount_col: AmountCol = "amount", type_col: TypeCol = None, quantity_col: QuantityCol = None,
    delimiter: Delimiter = ",", columns: Columns = None, date_format: DateFormat = None,
) -> None:
    """Fit BG/NBD, Gamma-Gamma, the at-risk model and data-driven R/F/M thresholds."""
    from scoring.valuemodel import ValueModelError, fit_value_model
    from streams.modelfile import save_model

    day = parse_day(as_of)
    histories = _histories(inputs, csv_layout(**locals()), day)
    try:
        model = fit_value_model(histories, day, horizon_days, window_days, version)
    except ValueModelError as exc:
        err.print(f"tierstream: cannot fit: {exc}", markup=False)
        raise typer.Exit(1) from None
    save_model(model, out)
    bg, gg, th, risk = model.bg, model.gg, model.thresholds, model.at_risk
    err.print(f"fitted {model.version} on {len(histories):,} customers -> {out}\n"
              f"BG/NBD r={bg.r:.4f} alpha={bg.alpha:.4f} a={bg.a:.4f} b={bg.b:.4f}; "
              f"Gamma-Gamma p={gg.p:.4f} q={gg.q:.4f} v={gg.v:.4f}\n"
              f"at-risk: P(no purchase in {risk.horizon_days} days){_shortened(risk.requested_horizon_days)}, "
              f"trained on {risk.windows} windows {risk.step_days} days apart, L2 {risk.l2:g}\n"
              f"thresholds (adopt in tierstream.yaml `scoring:`): {json.dumps(th.to_dict())}", markup=False)


def _shortened(requested: int) -> str:
    return f" (history too short for the {requested} days asked for)" if requested else ""


@app.command("evaluate", epilog="""Examples:

  tierstream evaluate purchases.csv --cal-end 2024-06-30

  tierstream evaluate CDNOW_sample.txt --cal-end 19971231 --delimiter whitespace
      --columns customer_id,id,occurred_at,quantity,amount
""")
def evaluate_command(
    inputs: Inputs,
    cal_end: Annotated[str, typer.Option("--cal-end", help="Calibrate up to this day; predict after it.")],
    horizon_days: Annotated[int | None, typer.Option(help="Holdout length (default: to the end of the data).")]
    = None,
    json_out: Annotated[Path | None, typer.Option("--json", help="Also write the figures as JSON.")] = None,
    customer_col: CustomerCol = "customer_id", time_col: TimeCol = "occurred_at",
    amount_col: AmountCol = "amount", type_col: TypeCol = None, quantity_col: QuantityCol = None,
    delimiter: Delimiter = ",", columns: Columns = None, date_format: DateFormat = None,
) -> None:
    """Held-out check of the at-risk score against 1 - P(alive) and days since last purchase."""
    from scoring.valuemodel import ValueModelError, evaluate

    histories = _histories(inputs, csv_layout(**locals()))
    try:
        result = evaluate(histories, parse_day(cal_end), horizon_days)
    except ValueModelError as exc:
        err.print(f"tierstream: cannot evaluate: {exc}", markup=False)
        raise typer.Exit(1) from None
    trained = (f"; at-risk model trained on {result.label_horizon_days}-day labels, the calibration period "
               f"being too short for {result.horizon_days}" if result.label_horizon_days != result.horizon_days else "")
    table = Table("segment", "method", "customers", "did not buy", "ROC AUC", "precision@top20%",
                  title=f"who stops buying in the {result.horizon_days} days after the calibration end{trained}")
    for segment, methods in result.scores.items():
        for method, score in methods.items():
            table.add_row(segment, method, f"{score.customers:,}", f"{score.positives:,}",
                          f"{score.roc_auc:.3f}", f"{score.precision_at_20:.3f}")
    from rich.console import Console

    console = Console()
    Console(width=max(console.width, 120)).print(table)  # never cut the segment names or figures
    if json_out is not None:
        json_out.write_text(json.dumps(result.to_dict(), indent=2) + "\n")
