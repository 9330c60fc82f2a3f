"""What every command module shares: the Typer app, the error console, common options and parsers.

Command modules import this module (never `streams.cli.main`), as faust's `faust/cli/base.py` is
used; `streams.cli.main` imports every command module and is the entry point.
"""

from __future__ import annotations

import os
from collections.abc import Coroutine
from datetime import date
from importlib.metadata import PackageNotFoundError, version
from pathlib import Path
from typing import Annotated, Any, TypeVar
from urllib.parse import urlsplit

import typer
from rich.console import Console
from rich.table import Table

from scoring.errors import ConfigError
from streams.settings import Settings, load_settings

T = TypeVar("T")

app = typer.Typer(
    name="tierstream", no_args_is_help=True, add_completion=False, pretty_exceptions_enable=False,
    help="Real-time customer value scoring on Kafka: RFM state, tiers, contact plans, at-risk alerts.",
    rich_markup_mode=None, context_settings={"max_content_width": 120},  # a wide terminal gets wide help
)
schemas_app = typer.Typer(help="Message schemas.", no_args_is_help=True)
app.add_typer(schemas_app, name="schemas")
err = Console(stderr=True, highlight=False, soft_wrap=True)  # soft_wrap: one-line errors stay one line

ConfigOpt = Annotated[Path | None, typer.Option(
    "--config", "-c", help="tierstream.yaml (default: ./tierstream.yaml if present).", dir_okay=False)]


def package_version() -> str:
    try:
        return version("tierstream")
    except PackageNotFoundError:  # run from a checkout that was never installed
        return "unknown (not installed)"


def _print_version(value: bool) -> None:
    if value:
        print(f"tierstream {package_version()}")
        raise typer.Exit(0)


@app.callback()
def _root(
    show_version: Annotated[bool, typer.Option("--version", help="Print the version and exit.",
                                               callback=_print_version, is_eager=True)] = False,
) -> None:
    """Options before the command name (--version); the help text is the app's."""


def run_with_kafka(settings: Settings, main: Coroutine[Any, Any, T]) -> T:
    """Run `main` against Kafka: topics that disagree with the config are a config error (exit 2); an
    unreachable or failing Kafka is one line and exit 1 (`streams.cli.main`)."""
    from streams.kafka import TopicMismatchError, run_kafka

    try:
        return run_kafka(settings, main)
    except TopicMismatchError as exc:
        raise ConfigError(f"error: {exc}") from None


def check_writable(path: Path, option: str) -> None:
    """A usage error (one line, exit 2) unless `path` can be written: checked before any long work."""
    if str(path) == "-":
        return
    try:
        problem = _write_problem(path)
    except OSError as exc:  # even asking fails: a name too long, a loop of links
        problem = exc.strerror or type(exc).__name__
    if problem:
        raise typer.BadParameter(f"cannot write {path}: {problem}", param_hint=option)


def _write_problem(path: Path) -> str:
    parent = path.parent
    if path.is_dir():
        return "it is a directory"
    if not parent.is_dir():
        return f"{parent} is not a directory" if parent.exists() else f"no directory {parent}"
    if not os.access(parent, os.W_OK) or (path.exists() and not os.access(path, os.W_OK)):
        return "permission denied"
    return _open_problem(path)


def _open_problem(path: Path) -> str:
    """Why `path` cannot be opened for writing ("" when it can). Access bits do not tell (root, /proc, a
    read-only mount), so open it for appending, which keeps what is there, and remove it again if it is new."""
    existed = path.exists()
    try:
        with path.open("a"):
            pass
    except OSError as exc:
        return exc.strerror or type(exc).__name__
    if not existed:
        path.unlink(missing_ok=True)
    return ""


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
    warn_password_in_argv(overrides.get("redis_url"))
    return load_settings(config, **overrides)


def warn_password_in_argv(redis_url: object) -> None:
    """A password given as `--redis-url` shows in the process list (`ps`) of everyone on the host: say so."""
    if isinstance(redis_url, str) and urlsplit(redis_url).password:
        typer.echo("warning: --redis-url holds a password, which other users can read in the process list; "
                   "set REDIS_URL or redis_password in the environment instead", err=True)


def tier_table(counts: dict[str, int], order: tuple[str, ...]) -> Table:
    table = Table("tier", "customers")
    for tier in order:
        table.add_row(tier, f"{counts.get(tier, 0):,}")
    return table
