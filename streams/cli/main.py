"""The `tierstream` command: every command module, and the entry point.

Each command module adds its commands to `streams.cli.base.app` when imported; this module imports
them all (nothing else imports this module). To add a command: write `streams/cli/<name>.py` that
imports `streams.cli.base`, and import it here. Errors from bad arguments or config are one line
on stderr and exit 2; an unreachable Kafka is one line and exit 1.
"""

from __future__ import annotations

import sys

import typer

from scoring.errors import ConfigError
from streams.cli import (
    backfill,
    bootstrap,
    calibrate,
    customer,
    demo,
    generate,
    model,
    plan_report,
    replay,
    resync,
    schemas,
    topics,
    worker,
)
from streams.cli.base import app
from streams.kafka import KafkaUnavailableError

COMMAND_MODULES = (
    backfill, bootstrap, calibrate, customer, demo, generate, model, plan_report, replay, resync, schemas, topics,
    worker,
)


def _click_base(name: str) -> type[Exception]:
    """click's exception class `name` as the running typer raises it. typer < 0.26 raises click's own
    exceptions, later versions those of a copy of click inside typer; the public `typer.BadParameter` is
    a subclass of both UsageError and ClickException of whichever click typer runs on."""
    return next(c for c in typer.BadParameter.__mro__ if c.__name__ == name)


UsageError, ClickException = _click_base("UsageError"), _click_base("ClickException")


def main(argv: list[str] | None = None) -> None:
    """Entry point: one-line errors, exit 2 for bad arguments or config, 1 for an unreachable service."""
    command = typer.main.get_command(app)
    try:
        result = command.main(args=argv, prog_name="tierstream", standalone_mode=False)
    except UsageError as exc:
        ctx = getattr(exc, "ctx", None)
        if type(exc).__name__ == "NoArgsIsHelpError":  # `tierstream` or a group alone: its help
            print(ctx.get_help() if ctx else str(exc))
            sys.exit(2)
        name = ctx.command_path if ctx else "tierstream"
        print(f"tierstream: error: {exc.format_message()} (see '{name} --help')", file=sys.stderr)  # type: ignore[attr-defined]
        sys.exit(2)
    except ConfigError as exc:
        print(f"tierstream: {exc}", file=sys.stderr)
        sys.exit(2)
    except KafkaUnavailableError as exc:
        print(f"tierstream: error: {exc}", file=sys.stderr)
        sys.exit(1)
    except typer.Exit as exc:
        sys.exit(exc.exit_code)
    except (typer.Abort, KeyboardInterrupt):
        print("tierstream: interrupted", file=sys.stderr)
        sys.exit(130)
    except ClickException as exc:
        print(f"tierstream: error: {exc.format_message()}", file=sys.stderr)  # type: ignore[attr-defined]
        sys.exit(exc.exit_code)  # type: ignore[attr-defined]
    except OSError as exc:
        if exc.filename is None:  # not a file the user named: a bug or a service, keep the traceback
            raise
        print(f"tierstream: error: {exc.filename}: {exc.strerror}", file=sys.stderr)  # a file that went away,
        sys.exit(1)  # filled the disk or changed mode after the checks
    sys.exit(result if isinstance(result, int) else 0)


if __name__ == "__main__":
    main()
