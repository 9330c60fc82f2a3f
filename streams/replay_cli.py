"""The shell around `streams.replay`: files, progress bar, summary, exit codes."""

from __future__ import annotations

import contextlib
import sys
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import IO, TYPE_CHECKING

from rich.console import Console
from rich.progress import Progress, SpinnerColumn, TextColumn, TimeElapsedColumn

from scoring.config import ScoringConfig
from streams.history import BadRow, CsvLayout, HistoryError, Inputs
from streams.replay import ReplayStats, StrictError
from streams.replay_parallel import replay_inputs

if TYPE_CHECKING:
    from scoring.valuemodel.model import ValueModel

MAX_REPORTED = 20


@contextlib.contextmanager
def _progress(console: Console) -> Iterator[Callable[[int], None] | None]:
    """On a terminal, a progress line (rows read, time) and the callback that advances it."""
    if not console.is_terminal:
        yield None
        return
    columns = (SpinnerColumn(), TextColumn("{task.completed:,} rows read"), TimeElapsedColumn())
    # No refresh thread: the batch may fork, and a fork should not copy a thread holding a lock.
    with Progress(*columns, console=console, transient=True, auto_refresh=False) as progress:
        task = progress.add_task("replay")
        yield lambda rows: progress.update(task, advance=rows, refresh=True)


def run(
    inputs: list[Path], as_of_day: int, config: ScoringConfig, out: Path, layout: CsvLayout,
    strict: bool, exact: bool, decisions_out: Path | None, console: Console, model: ValueModel | None = None,
    jobs: int | None = None,
) -> int:
    """Run a replay; 0 on success, 1 on a bad row under --strict, 2 on a bad file or column option."""
    reported = 0

    def on_bad(row: BadRow) -> None:
        nonlocal reported
        reported += 1
        if reported <= MAX_REPORTED:
            where = row.where if len(inputs) > 1 else f"line {row.line}"
            console.print(f"{where}: {row.reason} (skipped)", markup=False)

    try:
        with contextlib.ExitStack() as stack:
            sink = sys.stdout if str(out) == "-" else stack.enter_context(_create(out, newline=""))
            decisions = stack.enter_context(_create(decisions_out)) if decisions_out else None
            on_progress = stack.enter_context(_progress(console))
            stats = replay_inputs(Inputs(tuple(inputs), layout), as_of_day, config, sink, strict=strict,
                                  exact=exact, decisions_out=decisions, on_bad=on_bad, model=model, jobs=jobs,
                                  on_progress=on_progress)
    except HistoryError as exc:  # the file or a column option is wrong: a usage error
        console.print(f"tierstream: error: {exc}", markup=False)
        return 2
    except StrictError as exc:
        console.print(f"tierstream: --strict: {exc}", markup=False)
        return 1
    if stats.bad > MAX_REPORTED:
        console.print(f"... and {stats.bad - MAX_REPORTED:,} more bad rows")
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


