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
from rich.table import Table
from typer._click import exceptions as click_errors  # typer >= 0.16 vendors click

from scoring.errors import ConfigError
from streams.settings import Settings, load_settings

app = typer.Typer(
    name="tierstream", no_args_is_help=True, add_completion=False, pretty_exceptions_enable=False,
    help="Real-time customer value scoring on Kafka: RFM state, tiers, contact plans, at-risk alerts.",
    rich_markup_mode=None,
)
schemas_app = typer.Typer(help="Message schemas.", no_args_is_help=True)
app.add_typer(schemas_app, name="schemas")
err = Console(stderr=True, highlight=False, soft_wrap=True)  # soft_wrap: one-line errors stay one line

ConfigOpt = Annotated[Path | None, typer.Option(
    "--config", "-c", help="tierstream.yaml (default: ./tierstream.yaml if present).", dir_okay=False)]


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


def tier_table(counts: dict[str, int], order: tuple[str, ...]) -> Table:
    table = Table("tier", "customers")
    for tier in order:
        table.add_row(tier, f"{counts.get(tier, 0):,}")
    return table


def _register_commands() -> None:
    """Import the command modules: each adds its commands to `app`."""
    import streams.commands  # noqa: F401


def main(argv: list[str] | None = None) -> None:
    """Entry point: one-line errors, exit 2 for bad arguments or config."""
    _register_commands()
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
