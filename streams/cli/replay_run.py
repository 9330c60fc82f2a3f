"""The shell around `streams.offline.replay`: files, progress bar, summary, exit codes."""

from __future__ import annotations

import contextlib
import os
import sys
import tempfile
from pathlib import Path
from typing import IO, TYPE_CHECKING

from rich.console import Console

from scoring.concentration import REVENUE_DAYS, value_concentration
from scoring.config import ScoringConfig
from scoring.events import day_start
from streams.cli.progress import estimated_rows, terminal_progress
from streams.offline.history import BadRow, CsvLayout, HistoryError, Inputs, nothing_read
from streams.offline.parallel import replay_inputs
from streams.offline.replay import ReplayStats, StrictError

if TYPE_CHECKING:
    from scoring.calibration import Calibration
    from scoring.valuemodel.model import ValueModel

MAX_REPORTED = 20


def run(
    inputs: list[Path], as_of_day: int, config: ScoringConfig, out: Path, layout: CsvLayout,
    strict: bool, exact: bool, decisions_out: Path | None, console: Console, model: ValueModel | None = None,
    jobs: int | None = None, calibration: Calibration | None = None,
) -> int:
    """Run a replay; 0 on success, 1 on a bad row under --strict, 2 on a bad file or column option (or when
    no row could be read). The output files change only when it succeeds."""
    staged: list[tuple[Path, Path]] = []  # (written, final): renamed into place only when the run succeeds
    try:
        code = _run(inputs, as_of_day, config, out, layout, strict, exact, decisions_out, console, model, jobs,
                    calibration, staged)
        if code == 0:
            _commit(staged)
        return code
    finally:
        _discard(staged)  # what is still staged belongs to a failed run


def _run(
    inputs: list[Path], as_of_day: int, config: ScoringConfig, out: Path, layout: CsvLayout,
    strict: bool, exact: bool, decisions_out: Path | None, console: Console, model: ValueModel | None,
    jobs: int | None, calibration: Calibration | None, staged: list[tuple[Path, Path]],
) -> int:
    reported = 0
    first: list[BadRow] = []

    def on_bad(row: BadRow) -> None:
        nonlocal reported
        reported += 1
        first[:] = first or [row]
        if reported <= MAX_REPORTED:
            where = row.where if len(inputs) > 1 else f"line {row.line}"
            console.print(f"{where}: {row.reason} (skipped)", markup=False)

    try:
        with contextlib.ExitStack() as stack:
            sink = sys.stdout if str(out) == "-" else stack.enter_context(_create(out, staged, newline=""))
            decisions = stack.enter_context(_create(decisions_out, staged)) if decisions_out else None
            on_progress = stack.enter_context(terminal_progress(console, "replay", estimated_rows(inputs)))
            stats = replay_inputs(Inputs(tuple(inputs), layout), as_of_day, config, sink, strict=strict,
                                  exact=exact, decisions_out=decisions, on_bad=on_bad, model=model, jobs=jobs,
                                  on_progress=on_progress, calibration=calibration)
    except HistoryError as exc:  # the file or a column option is wrong: a usage error
        console.print(f"tierstream: error: {exc}", markup=False)
        return 2
    except StrictError as exc:
        console.print(f"tierstream: --strict: {exc}", markup=False)
        return 1
    if (more := stats.bad - stats.grouped_rows - MAX_REPORTED) > 0:
        console.print(f"... and {more:,} more bad rows")
    for line in grouped_lines(stats, inputs):
        console.print(line, markup=False)
    nothing = bool(stats.rows) and stats.bad == stats.rows
    for line in [] if nothing else calibration_lines(stats, config, as_of_day):  # no tiers to talk about
        console.print(line, markup=False)
    _summary(stats, config, console)
    if nothing:
        console.print(f"tierstream: error: {nothing_read(first[0] if first else None, stats.bad)}", markup=False)
        return 2
    return 0


def grouped_lines(stats: ReplayStats, inputs: list[Path]) -> list[str]:
    """One line per grouped reason: how many rows, and the first few line numbers (in file order)."""
    names = [str(p) for p in inputs]
    lines = []
    for reason, (count, first) in sorted(stats.grouped.items()):
        rows = sorted(first, key=lambda r: (names.index(r.source) if r.source in names else len(names), r.line))
        where = ", ".join(f"{r.source} line {r.line}" if len(inputs) > 1 else str(r.line) for r in rows[:5])
        label = "lines" if len(inputs) == 1 else "first at"
        more = ", ..." if count > len(rows[:5]) else ""
        lines.append(f"{count:,} row{'s' if count != 1 else ''} skipped: {reason} ({label} {where}{more})")
    return lines


def calibration_lines(stats: ReplayStats, config: ScoringConfig, as_of_day: int) -> list[str]:
    """Which calibration tiered the customers, how the active ones spread over the tiers, and how much of the
    last 12 months' revenue each tier brings against its share of the customers (the lift)."""
    day = day_start(as_of_day).date().isoformat()
    active = sum(stats.active.values())
    out = [_source_line(stats, config, day, active)]
    if active:
        shares = ", ".join(f"{t} {stats.active.get(t, 0) / active:.1%}" for t in config.tier_names)
        out.append(f"tiers of the {active:,} active customers: {shares}")
    parts = [
        f"{r.tier} {r.customer_share:.1%} of customers, "
        + ("no revenue" if r.revenue_share is None else f"{r.revenue_share:.1%} of revenue")
        + ("" if r.lift is None else f" (lift {r.lift:.2f})")
        for r in value_concentration(stats.tiers, stats.revenue, config.tier_names)]
    out.append(f"value concentration, net purchases in the {REVENUE_DAYS} days to {day}: " + "; ".join(parts))
    return out


def _source_line(stats: ReplayStats, config: ScoringConfig, day: str, active: int) -> str:
    cal = stats.calibration
    if stats.calibrated_from == "history" and cal is not None:
        return (f"calibrated from this history: {active:,} active customers of {stats.customers:,} "
                f"(a purchase in the {config.window_days} days to {day}); calibration {cal.version}")
    if stats.calibrated_from == "file" and cal is not None:
        return f"calibration {cal.version} (as of {cal.as_of}, {cal.active:,} active customers of {cal.customers:,})"
    if stats.calibrated_from == "none":
        return (f"not calibrated: no active customer (a purchase in the {config.window_days} days to {day}); "
                "the absolute cut points and thresholds apply")
    return "tiering: absolute (the configured cut points and thresholds)"


def _create(path: Path, staged: list[tuple[Path, Path]], newline: str | None = None) -> IO[str]:
    """An output file opened for writing; a path that cannot be written is a usage error (one line).

    A regular file (or a new one) is written beside its place and renamed there when the run succeeds
    (`_commit`), so a failed run keeps what the path held; other paths (/dev/null, a pipe) are written directly."""
    try:
        if path.exists() and not path.is_file():
            return path.open("w", newline=newline, encoding="utf-8")
        fd, name = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".partial", dir=path.parent)
        staged.append((Path(name), path))
        return os.fdopen(fd, "w", newline=newline, encoding="utf-8")
    except OSError as exc:
        raise HistoryError(f"cannot write {path}: {exc.strerror}") from None


def _commit(staged: list[tuple[Path, Path]]) -> None:
    """Move each staged output into place (the run succeeded)."""
    umask = os.umask(0)
    os.umask(umask)
    while staged:
        written, final = staged.pop()
        mode = final.stat().st_mode & 0o7777 if final.exists() else 0o666 & ~umask  # what `open(..., "w")` gives
        os.chmod(written, mode)
        os.replace(written, final)


def _discard(staged: list[tuple[Path, Path]]) -> None:
    """Remove what a failed run wrote."""
    while staged:
        with contextlib.suppress(OSError):
            staged.pop()[0].unlink()


def _summary(stats: ReplayStats, config: ScoringConfig, console: Console) -> None:
    tiers = ", ".join(f"{t} {stats.tiers.get(t, 0):,}" for t in config.tier_names)
    console.print(
        f"rows read {stats.rows:,}; skipped: {stats.bad:,} bad, {stats.after_as_of:,} after as-of, "
        f"{stats.duplicates:,} duplicate, {stats.rejected:,} rejected\n"
        f"customers {stats.customers:,} ({tiers}){_forgotten(stats)}\n"
        f"{stats.seconds:.2f} s, {stats.rows_per_s:,.0f} rows/s", markup=False)


def _forgotten(stats: ReplayStats) -> str:
    """The customers left out as forgotten (retention, erasure requests), when there are any."""
    return f"; forgotten {stats.forgotten:,}" if stats.forgotten else ""
