"""The shell around `streams.replay`: files, progress bar, summary, exit codes."""

from __future__ import annotations

import contextlib
import sys
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import IO, TYPE_CHECKING

from rich.console import Console
from rich.progress import Progress, SpinnerColumn, TextColumn, TimeElapsedColumn

from scoring.config import ScoringConfig
from streams.history import BadRow, CsvLayout, HistoryError, Row, read_history
from streams.replay import ReplayStats, StrictError, run_replay

if TYPE_CHECKING:
    from scoring.valuemodel.model import ValueModel

MAX_REPORTED = 20


def _rows(inputs: list[Path], layout: CsvLayout) -> Iterator[Row | BadRow]:
    for path in inputs:
        yield from read_history(path, layout)


def _with_progress(rows: Iterable[Row | BadRow], console: Console) -> Iterable[Row | BadRow]:
    return _progress(rows, console) if console.is_terminal else rows


def _progress(rows: Iterable[Row | BadRow], console: Console) -> Iterator[Row | BadRow]:
    columns = (SpinnerColumn(), TextColumn("{task.completed:,} rows"), TimeElapsedColumn())
    with Progress(*columns, console=console, transient=True) as progress:
        task = progress.add_task("replay")
        for n, row in enumerate(rows, start=1):
            if n % 20_000 == 0:
                progress.update(task, completed=n)
            yield row


def run(
    inputs: list[Path], as_of_day: int, config: ScoringConfig, out: Path, layout: CsvLayout,
    strict: bool, exact: bool, decisions_out: Path | None, console: Console, model: ValueModel | None = None,
    jobs: int | None = None,
) -> int:
    """Run a replay; 0 on success, 1 on a bad row under --strict, 2 on a bad file or column option."""
    reported: list[BadRow] = []

    def on_bad(row: BadRow) -> None:
        reported.append(row)
        if len(reported) <= MAX_REPORTED:
            where = row.where if len(inputs) > 1 else f"line {row.line}"
            console.print(f"{where}: {row.reason} (skipped)", markup=False)

    try:
        with contextlib.ExitStack() as stack:
            sink = sys.stdout if str(out) == "-" else stack.enter_context(_create(out, newline=""))
            decisions = stack.enter_context(_create(decisions_out)) if decisions_out else None
            stats = run_replay(_with_progress(_rows(inputs, layout), console), as_of_day, config, sink,
                               strict=strict, exact=exact, decisions_out=decisions, on_bad=on_bad,
                               model=model, jobs=jobs)
    except HistoryError as exc:  # the file or a column option is wrong: a usage error
        console.print(f"tierstream: error: {exc}", markup=False)
        return 2
    except StrictError as exc:
        console.print(f"tierstream: --strict: {exc}", markup=False)
        return 1
    if len(reported) > MAX_REPORTED:
        console.print(f"... and {len(reported) - MAX_REPORTED:,} more bad rows")
    _summary(stats, config, console)
    return 0


def _create(path: Path, newline: str | None = None) -> IO[str]:
    """An output file opened for writing; a path that cannot be written is a usage error (one line)."""
    try:
        return path.open("w", newline=newline, encoding="utf-8")
    except OSError as exc:
        raise HistoryError(f"cannot write {path}: {exc.strerror}") from None


def _summary(stats: ReplayStats, config: ScoringConfig, console: Console) -> None:
    tiers = ", ".join(f"{t} {stats.tiers.get(t, 0):,}" for t in config.tier_names)
    console.print(
        f"rows read {stats.rows:,}; skipped: {stats.bad:,} bad, {stats.after_as_of:,} after as-of, "
        f"{stats.duplicates:,} duplicate, {stats.rejected:,} rejected\n"
        f"customers {stats.customers:,} ({tiers})\n"
        f"{stats.seconds:.2f} s, {stats.rows_per_s:,.0f} rows/s", markup=False)


