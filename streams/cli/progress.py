"""The progress bar of the batch commands (`replay`, `fit`) on a terminal: rows read of about how many.

The text and when to redraw it are plain functions of the counts and a clock reading (`progress_text`,
`Ticker`), tested as such; `terminal_progress` shows them with rich, on stderr, only when it is a terminal
(rich prints bad-row reports above the bar, and a transient bar leaves nothing behind).
"""

from __future__ import annotations

import contextlib
import gzip
import math
import time
import zlib
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

from rich.console import Console
from rich.progress import Progress, TextColumn

BAR_WIDTH = 30
REDRAW_SECONDS = 0.25  # at most four redraws a second, however fast rows come
SAMPLE_BYTES = 1 << 20  # text read to estimate a file's bytes per row


def progress_text(label: str, rows: int, total: int | None, seconds: float) -> str:
    """`label [#####.....]  50% 1,000 of ~2,000 rows, 3 s, 333 rows/s`; without a total (stdin), no bar.
    The total is an estimate: past it, the bar stays full and the share at 99 % until the end."""
    rate = f", {rows / seconds:,.0f} rows/s" if seconds > 0 else ""
    if not total:
        return f"{label} {rows:,} rows, {seconds:.0f} s{rate}"
    share = min(rows / total, 0.99)
    filled = math.floor(share * BAR_WIDTH)
    bar = "#" * filled + "." * (BAR_WIDTH - filled)
    return f"{label} [{bar}] {share:4.0%} {rows:,} of ~{max(total, rows):,} rows, {seconds:.0f} s{rate}"


@dataclass
class Ticker:
    """Counts rows as they are reported; `tick` gives the text to draw, or None when the last drawing is
    younger than `REDRAW_SECONDS` (times in seconds of one monotonic clock)."""

    label: str
    total: int | None
    started: float
    rows: int = 0
    drawn_at: float = -math.inf

    def tick(self, rows: int, now: float) -> str | None:
        self.rows += rows
        if now - self.drawn_at < REDRAW_SECONDS:
            return None
        self.drawn_at = now
        return progress_text(self.label, self.rows, self.total, now - self.started)


def estimated_rows(paths: list[Path]) -> int | None:
    """About how many rows the files hold: each file's size over the bytes per line of its first MB (a gzip
    file's by its text); None for stdin or a file that cannot be read."""
    total = 0
    for path in paths:
        if str(path) == "-":
            return None
        try:
            total += _estimated_lines(path)
        except (OSError, EOFError, zlib.error):
            return None
    return total


def _estimated_lines(path: Path) -> int:
    size = path.stat().st_size
    if path.suffix.lower() == ".gz":
        with gzip.open(path, "rb") as handle:
            sample = handle.read(SAMPLE_BYTES)
        compressed = min(size, max(1, _compressed_bytes(path, len(sample))))
        return round(sample.count(b"\n") * size / compressed) if sample else 0
    with path.open("rb") as handle:
        sample = handle.read(SAMPLE_BYTES)
    return round(sample.count(b"\n") * size / len(sample)) if sample else 0


def _compressed_bytes(path: Path, text: int) -> int:
    """Compressed bytes that hold the first `text` bytes of a gzip file (its read position, near enough)."""
    with path.open("rb") as raw, gzip.GzipFile(fileobj=raw) as handle:
        handle.read(text)
        return raw.tell()


@contextlib.contextmanager
def terminal_progress(console: Console, label: str, total: int | None) -> Iterator[Callable[[int], None] | None]:
    """On a terminal, a progress bar and the callback that advances it by a number of rows; else None."""
    if not console.is_terminal:
        yield None
        return
    ticker = Ticker(label, total, time.monotonic())
    # No refresh thread: the batch may fork, and a fork should not copy a thread holding a lock.
    with Progress(TextColumn("{task.description}"), console=console, transient=True, auto_refresh=False) as bar:
        task = bar.add_task(progress_text(label, 0, total, 0.0))

        def advance(rows: int) -> None:
            text = ticker.tick(rows, time.monotonic())
            if text is not None:
                bar.update(task, description=text, refresh=True)

        yield advance
