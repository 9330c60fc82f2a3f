"""`tierstream replay`."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from streams.cli.base import ConfigOpt, app, err, parse_day, settings_from
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

CalibrationOpt = Annotated[Path | None, typer.Option(
    help="Calibration from `tierstream calibrate` or `fit` (calibrated tiering; default: calibrate from this "
         "history).", exists=True, dir_okay=False)]


@app.command(epilog="""Examples:

\b
  tierstream replay purchases.csv --as-of 2024-12-31 --out scores.csv
  tierstream replay CDNOW_sample.txt --as-of 19980630 --delimiter whitespace \\
      --columns customer_id,id,occurred_at,quantity,amount
  tierstream replay events.jsonl --as-of 2024-12-31 --exact --decisions-out outputs.jsonl
  tierstream replay purchases.csv --as-of 2024-12-31 --model model.json
      # adds p_alive, clv columns
  tierstream replay events.jsonl --as-of 2024-12-31 --exact --calibration cal.json
      # as a worker with cal.json
  tierstream replay events.jsonl --as-of 2024-12-31 --exact --evidence evidence.json
      # the ROI guard on evidence (roi_evidence), as a worker with evidence_path
  tierstream replay online_retail.csv.gz --as-of 2011-12-09 --customer-col CustomerID \\
      --time-col InvoiceDate --amount-col UnitPrice --quantity-col Quantity --timezone Europe/London
  tierstream replay lines.csv --as-of 2024-12-31 --model model.json --item-col sku --category-col category
      # the proposition names a category (a model fitted with items)
""")
def replay(
    inputs: Inputs,
    as_of: Annotated[str, typer.Option("--as-of", help="Observation end day, YYYY-MM-DD or YYYYMMDD.")],
    config: ConfigOpt = None,
    out: Annotated[Path, typer.Option("--out", "-o", help="Output CSV ('-' for stdout).")] = Path("-"),
    customer_col: CustomerCol = "customer_id",
    time_col: TimeCol = "occurred_at",
    amount_col: AmountCol = "amount",
    type_col: TypeCol = None,
    id_col: IdCol = None,
    currency_col: CurrencyCol = None,
    quantity_col: QuantityCol = None,
    severity_col: SeverityCol = None,
    delimiter: Delimiter = ",",
    columns: Columns = None,
    date_format: DateFormat = None,
    timezone: Timezone = "UTC",
    item_col: ItemCol = None,
    category_col: CategoryCol = None,
    calibration: CalibrationOpt = None,
    strict: Annotated[bool, typer.Option(help="A bad row is fatal (exit 1).")] = False,
    exact: Annotated[bool, typer.Option(help="Step event by event exactly as the stream does (slower).")] = False,
    decisions_out: Annotated[Path | None, typer.Option(help="With --exact: write every output message as JSONL.")]
    = None,
    model: Annotated[Path | None, typer.Option(help="Value model from `tierstream fit`: adds p_alive, "
                                                    "expected purchases and clv; at-risk from the model.",
                                               exists=True, dir_okay=False)] = None,
    evidence: Annotated[Path | None, typer.Option(
        help="Evidence from `tierstream plan-report --evidence-out` for the ROI guard (with roi_evidence.enabled), "
             "as a worker's evidence_path.", exists=True, dir_okay=False)] = None,
    jobs: Annotated[int | None, typer.Option("--jobs", "-j", min=1, help=(
        "Replay row by row in this many processes (batch mode; same output). Default: the columnar "
        "batch path (Polars) in one process."))] = None,
) -> None:
    """Score a transaction history offline, one row per customer.

    Through the same core as the stream."""
    from streams.calibrationfile import calibration_for
    from streams.cli.replay_run import run

    settings = settings_from(config)
    if decisions_out is not None and not exact:
        raise typer.BadParameter("--decisions-out needs --exact", param_hint="--decisions-out")
    layout = csv_layout(**locals())
    value_model = None
    if model is not None:  # scipy and the value model load only when asked for (a second off the start)
        from streams.modelfile import load_model

        value_model = load_model(model)
    scoring = settings.scoring
    if evidence is not None:
        from streams.evidencefile import load_evidence

        scoring = scoring.with_evidence(load_evidence(evidence))
        if not scoring.roi_evidence.enabled:
            err.print(f"{evidence}: not used: roi_evidence.enabled is false", markup=False)
    chosen = calibration_for(scoring, calibration, err)
    code = run(inputs, parse_day(as_of), scoring, out, layout, strict, exact, decisions_out, err,
               value_model, jobs, chosen)
    raise typer.Exit(code)
