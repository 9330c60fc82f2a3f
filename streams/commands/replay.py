"""`tierstream replay`."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from streams.cli import ConfigOpt, app, err, parse_day, settings_from
from streams.commands.options import (
    AmountCol,
    Columns,
    CurrencyCol,
    CustomerCol,
    DateFormat,
    Delimiter,
    IdCol,
    Inputs,
    QuantityCol,
    SeverityCol,
    TimeCol,
    TypeCol,
    csv_layout,
)


@app.command(epilog="""Examples:

  tierstream replay purchases.csv --as-of 2024-12-31 --out scores.csv

  tierstream replay CDNOW_sample.txt --as-of 19980630 --delimiter whitespace
      --columns customer_id,id,occurred_at,quantity,amount

  tierstream replay events.jsonl --as-of 2024-12-31 --exact --decisions-out outputs.jsonl

  tierstream replay purchases.csv --as-of 2024-12-31 --model model.json   # adds p_alive, clv columns
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
    strict: Annotated[bool, typer.Option(help="A bad row is fatal (exit 1).")] = False,
    exact: Annotated[bool, typer.Option(help="Step event by event exactly as the stream does (slower).")] = False,
    decisions_out: Annotated[Path | None, typer.Option(help="With --exact: write every output message as JSONL.")]
    = None,
    model: Annotated[Path | None, typer.Option(help="Value model from `tierstream fit`: adds p_alive, "
                                                    "expected purchases and clv; at-risk from the model.",
                                               exists=True, dir_okay=False)] = None,
    jobs: Annotated[int | None, typer.Option("--jobs", "-j", min=1, help=(
        "Processes that score customers (batch mode; same output). Default: one per CPU (at most 8) "
        "from 20,000 customers up, else 1."))] = None,
) -> None:
    """Score a transaction history offline through the same core as the stream: one row per customer."""
    from streams.replay_cli import run

    settings = settings_from(config)
    if decisions_out is not None and not exact:
        raise typer.BadParameter("--decisions-out needs --exact", param_hint="--decisions-out")
    layout = csv_layout(**locals())
    value_model = None
    if model is not None:  # scipy and the value model load only when asked for (a second off the start)
        from streams.modelfile import load_model

        value_model = load_model(model)
    code = run(inputs, parse_day(as_of), settings.scoring, out, layout, strict, exact, decisions_out, err,
               value_model, jobs)
    raise typer.Exit(code)
