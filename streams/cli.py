"""The `tierstream` command. Every command has examples in its help.

Errors from bad arguments or config are one line on stderr and exit 2.
"""

from __future__ import annotations

import sys
from datetime import date
from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console
from typer._click import exceptions as click_errors  # typer >= 0.16 vendors click
from rich.table import Table

from scoring.errors import ConfigError
from streams.settings import Settings, load_settings

app = typer.Typer(
    name="tierstream", no_args_is_help=True, add_completion=False, pretty_exceptions_enable=False,
    help="Real-time customer value scoring on Kafka: RFM state, tiers, contact plans, at-risk alerts.",
    rich_markup_mode=None,
)
schemas_app = typer.Typer(help="Message schemas.", no_args_is_help=True)
app.add_typer(schemas_app, name="schemas")
err = Console(stderr=True, highlight=False)

ConfigOpt = Annotated[Path | None, typer.Option("--config", "-c", help="tierstream.yaml (default: ./tierstream.yaml if present).",
                                                dir_okay=False)]


def parse_day(text: str) -> int:
    """Epoch day of an ISO date or YYYYMMDD."""
    try:
        if len(text) == 8 and text.isdigit():
            text = f"{text[:4]}-{text[4:6]}-{text[6:]}"
        return date.fromisoformat(text).toordinal() - date(1970, 1, 1).toordinal()
    except ValueError:
        raise typer.BadParameter(f"{text!r} is not a date (use YYYY-MM-DD or YYYYMMDD)") from None


def settings_from(config: Path | None, **overrides: object) -> Settings:
    if config is not None and not config.is_file():
        raise ConfigError(f"config: {config}: no such file")
    return load_settings(config, **overrides)


@app.command(epilog="""Examples:

  tierstream replay purchases.csv --as-of 2024-12-31 --out scores.csv

  tierstream replay CDNOW_sample.txt --as-of 19980630 --delimiter whitespace
      --columns customer_id,id,occurred_at,quantity,amount

  tierstream replay events.jsonl --as-of 2024-12-31 --exact --decisions-out outputs.jsonl
""")
def replay(
    inputs: Annotated[list[Path], typer.Argument(help="CSV or JSONL (.jsonl) histories; '-' reads stdin.",
                                                 exists=True, dir_okay=False, allow_dash=True)],
    as_of: Annotated[str, typer.Option("--as-of", help="Observation end day, YYYY-MM-DD or YYYYMMDD.")],
    config: ConfigOpt = None,
    out: Annotated[Path, typer.Option("--out", "-o", help="Output CSV ('-' for stdout).")] = Path("-"),
    customer_col: Annotated[str, typer.Option(help="Customer id column.")] = "customer_id",
    time_col: Annotated[str, typer.Option(help="Event time column (ISO or YYYYMMDD).")] = "occurred_at",
    amount_col: Annotated[str, typer.Option(help="Amount column (negative in a purchases log: a refund).")] = "amount",
    type_col: Annotated[str | None, typer.Option(help="Event type column of a mixed log "
                                                      "(purchase, return, complaint, enquiry).")] = None,
    id_col: Annotated[str | None, typer.Option(help="Event id column; rows without one are distinct events.")] = None,
    currency_col: Annotated[str | None, typer.Option(help="Currency column (default: base currency).")] = None,
    quantity_col: Annotated[str | None, typer.Option(help="Quantity column: amount = amount x quantity.")] = None,
    severity_col: Annotated[str | None, typer.Option(help="Complaint severity column (1-5; default 3).")] = None,
    delimiter: Annotated[str, typer.Option(help="Field delimiter, or 'whitespace'.")] = ",",
    columns: Annotated[str | None, typer.Option(help="Comma-separated names for a file without header.")] = None,
    date_format: Annotated[str | None, typer.Option(help="strptime format of the time column.")] = None,
    strict: Annotated[bool, typer.Option(help="A bad row is fatal (exit 1).")] = False,
    exact: Annotated[bool, typer.Option(help="Step event by event exactly as the stream does (slower).")] = False,
    decisions_out: Annotated[Path | None, typer.Option(help="With --exact: write every output message as JSONL.")]
    = None,
) -> None:
    """Score a transaction history offline through the same core as the stream: one row per customer."""
    from streams.replay_cli import run

    settings = settings_from(config)
    layout_args = dict(customer=customer_col, time=time_col, amount=amount_col, type=type_col, event_id=id_col,
                       currency=currency_col, quantity=quantity_col, severity=severity_col, delimiter=delimiter,
                       columns=tuple(c.strip() for c in columns.split(",")) if columns else (),
                       date_format=date_format)
    if decisions_out is not None and not exact:
        raise typer.BadParameter("--decisions-out needs --exact", param_hint="--decisions-out")
    code = run(inputs, parse_day(as_of), settings.scoring, out, layout_args, strict, exact, decisions_out, err)
    raise typer.Exit(code)


@schemas_app.command("export", epilog="Example:\n\n  tierstream schemas export --dir schemas/json")
def schemas_export(
    directory: Annotated[Path, typer.Option("--dir", help="Where to write the JSON Schema files.")] = Path(
        "schemas/json"),
) -> None:
    """Write the JSON Schema of every message (and the AsyncAPI document) to a directory."""
    from schemas.export import json_schemas

    directory.mkdir(parents=True, exist_ok=True)
    for name, text in json_schemas().items():
        (directory / name).write_text(text)
    err.print(f"wrote {len(json_schemas())} schemas to {directory}")


def tier_table(counts: dict[str, int], order: tuple[str, ...]) -> Table:
    table = Table("tier", "customers")
    for tier in order:
        table.add_row(tier, f"{counts.get(tier, 0):,}")
    return table


def main(argv: list[str] | None = None) -> None:
    """Entry point: one-line errors, exit 2 for bad arguments or config."""
    command = typer.main.get_command(app)
    try:
        result = command.main(args=argv, prog_name="tierstream", standalone_mode=False)
    except click_errors.NoArgsIsHelpError as exc:
        print(exc.ctx.get_help() if exc.ctx else str(exc))
        sys.exit(2)
    except click_errors.UsageError as exc:
        name = exc.ctx.command_path if exc.ctx else "tierstream"
        print(f"tierstream: error: {exc.format_message()} (see '{name} --help')", file=sys.stderr)
        sys.exit(2)
    except ConfigError as exc:
        print(f"tierstream: {exc}", file=sys.stderr)
        sys.exit(2)
    except typer.Exit as exc:
        sys.exit(exc.exit_code)
    except (typer.Abort, KeyboardInterrupt):
        print("tierstream: interrupted", file=sys.stderr)
        sys.exit(130)
    except click_errors.ClickException as exc:
        print(f"tierstream: error: {exc.format_message()}", file=sys.stderr)
        sys.exit(exc.exit_code)
    sys.exit(result if isinstance(result, int) else 0)


if __name__ == "__main__":
    main()
