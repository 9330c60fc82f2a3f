"""The batch commands' progress bar: its text, when it redraws, and its estimate of the rows to come."""

from __future__ import annotations

import gzip
from pathlib import Path

import pytest

from streams.cli.progress import BAR_WIDTH, REDRAW_SECONDS, Ticker, estimated_rows, progress_text


@pytest.mark.parametrize(("rows", "total", "seconds", "text"), [
    (0, 2_000, 0.0, "replay [" + "." * BAR_WIDTH + "]   0% 0 of ~2,000 rows, 0 s"),
    (1_000, 2_000, 4.0, "replay [" + "#" * 15 + "." * 15 + "]  50% 1,000 of ~2,000 rows, 4 s, 250 rows/s"),
    (1_999, 2_000, 2.0, "replay [" + "#" * 29 + "." + "]  99% 1,999 of ~2,000 rows, 2 s, 1,000 rows/s"),
    # past an estimate that was short: full bar, 99 % until it ends, the rows read as the total
    (3_000, 2_000, 3.0, "replay [" + "#" * 29 + "." + "]  99% 3,000 of ~3,000 rows, 3 s, 1,000 rows/s"),
    (1_500, None, 3.0, "replay 1,500 rows, 3 s, 500 rows/s"),  # stdin: no total, no bar
])
def test_progress_text(rows: int, total: int | None, seconds: float, text: str) -> None:
    assert progress_text("replay", rows, total, seconds) == text


def test_ticker_counts_every_report_and_redraws_at_most_every_interval() -> None:
    ticker = Ticker("fit", 100, started=10.0)
    assert ticker.tick(10, now=10.0) == progress_text("fit", 10, 100, 0.0)  # the first report draws
    assert ticker.tick(20, now=10.0 + REDRAW_SECONDS / 2) is None  # too soon: counted, not drawn
    assert ticker.rows == 30
    later = 10.0 + REDRAW_SECONDS
    assert ticker.tick(5, now=later) == progress_text("fit", 35, 100, REDRAW_SECONDS)
    assert ticker.tick(0, now=later + REDRAW_SECONDS * 0.99) is None


def test_estimated_rows_of_plain_and_gzip_files(tmp_path: Path) -> None:
    text = "".join(f"c{n},2024-01-01,{n % 97}.50\n" for n in range(50_000)).encode()
    plain, packed = tmp_path / "a.csv", tmp_path / "b.csv.gz"
    plain.write_bytes(text)
    packed.write_bytes(gzip.compress(text))
    assert estimated_rows([plain]) == pytest.approx(50_000, rel=0.05)
    assert estimated_rows([plain, packed]) == pytest.approx(100_000, rel=0.2)
    assert estimated_rows([plain, Path("-")]) is None
    assert estimated_rows([tmp_path / "missing.csv"]) is None
