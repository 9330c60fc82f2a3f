"""`tierstream replay --jobs N`: forked processes, each scoring its part of the customers.

Whatever the number of processes, the output is the same bytes, the summary the same counts,
the bad rows the same reports in the same (file) order, and `--strict` stops on the same first
bad row. Processes are really forked here (Linux).
"""

from __future__ import annotations

import gzip
import io
from pathlib import Path
from typing import Any

import pytest

from streams.offline import parallel as replay_parallel
from streams.offline.history import BadRow, CsvLayout, Inputs, Part, read_history
from streams.offline.parallel import PARALLEL_MIN_BYTES, jobs_for, replay_inputs
from tests.offline.test_replay import CDNOW, SCORING, replay, summary, table

AS_OF = ("--as-of", "1998-06-30")


def untimed(err: str) -> list[str]:
    """The report without its last line (seconds and rows/s)."""
    return err.splitlines()[:-1]
WITH_IDS = ("--id-col", "event_id", "--currency-col", "currency")


@pytest.fixture(scope="module")
def cdnow_with_ids(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, int, int, int]:
    """CDNOW as a CSV with event ids and currencies: every 37th row sent twice, every 53rd in GBP (rejected),
    and a few bad rows, one with no customer. -> (path, duplicates, rejected, customers with an event applied)."""
    lines, duplicates, rejected = ["customer_id,event_id,occurred_at,amount,currency"], 0, 0
    kept: set[str] = set()
    for n, text in enumerate(CDNOW.read_text().splitlines()):
        customer, _, day, _, amount = text.split()
        currency = "GBP" if n % 53 == 1 else "USD"
        copies = 2 if n % 37 == 0 else 1
        lines += [f"{customer},e{n},{day},{amount},{currency}"] * copies
        if currency == "GBP":
            rejected += copies  # checked before the id: a copy of a rejected event is rejected again
        else:
            duplicates += copies - 1
            kept.add(customer)
        if n % 1000 == 999:
            lines += [f"{customer},bad{n},notadate,1.00,USD", f",nocustomer{n},19970101,1.00,USD", ""]
    path = tmp_path_factory.mktemp("jobs") / "cdnow.csv"
    path.write_text("\n".join(lines) + "\n")
    return path, duplicates, rejected, len(kept)


def test_jobs_write_the_same_bytes_counts_and_reports(cdnow_with_ids: tuple[Path, int, int, int],
                                                      tmp_path: Path) -> None:
    path, duplicates, rejected, customers = cdnow_with_ids
    runs = {jobs: replay(path, *AS_OF, *WITH_IDS, "--jobs", str(jobs), "--out", tmp_path / f"{jobs}.csv")
            for jobs in (1, 2, 3)}
    assert {run.code for run in runs.values()} == {0}
    one = (tmp_path / "1.csv").read_bytes()
    assert (tmp_path / "2.csv").read_bytes() == one == (tmp_path / "3.csv").read_bytes()
    assert untimed(runs[2].err) == untimed(runs[3].err) == untimed(runs[1].err)  # the same report, line for line
    counts = summary(runs[3].err)
    assert counts == summary(runs[1].err)
    bad = 2 * (len(CDNOW.read_text().splitlines()) // 1000)  # the fixture's bad rows (blank lines are not)
    assert (counts["duplicates"], counts["rejected"], counts["bad"]) == (duplicates, rejected, bad)
    assert 2300 < customers < 2357  # customers with only rejected events get no row
    assert len(table(one.decode())) == customers == counts["customers"]
    assert "line " in runs[2].err and "customer id is empty" in runs[2].err


def test_strict_stops_on_the_first_bad_row_of_the_file_whatever_the_processes(tmp_path: Path) -> None:
    rows = [f"C{n % 97},2024-06-{1 + n % 28:02d},{n}.50" for n in range(3000)]
    rows[2100] = "C5,2024-06-31,1.00"  # the first bad row, of some customer's part
    rows[2500] = ",2024-06-01,1.00"    # a later one without a customer: part 0's
    path = tmp_path / "log.csv"
    path.write_text("customer_id,occurred_at,amount\n" + "\n".join(rows) + "\n")
    errors = {jobs: replay(path, "--as-of", "2024-06-30", "--strict", "--jobs", str(jobs)) for jobs in (1, 2, 4)}
    assert {run.code for run in errors.values()} == {1}
    assert {run.err for run in errors.values()} == {errors[1].err}
    assert errors[1].err.startswith("tierstream: --strict: line 2102: ")


def test_several_files_and_gzip(cdnow_with_ids: tuple[Path, int, int, int], tmp_path: Path) -> None:
    path = cdnow_with_ids[0]
    text = path.read_text().splitlines(keepends=True)
    first, second = tmp_path / "a.csv", tmp_path / "b.csv.gz"
    first.write_text("".join(text[:4000]))
    second.write_bytes(gzip.compress("".join(text[:1] + text[4000:]).encode()))
    one = replay(first, second, *AS_OF, *WITH_IDS, "--jobs", "1", "--out", tmp_path / "one.csv")
    two = replay(first, second, *AS_OF, *WITH_IDS, "--jobs", "2", "--out", tmp_path / "two.csv")
    assert one.code == two.code == 0
    assert (tmp_path / "one.csv").read_bytes() == (tmp_path / "two.csv").read_bytes()
    whole = replay(path, *AS_OF, *WITH_IDS, "--out", tmp_path / "whole.csv")
    assert summary(two.err)["customers"] == summary(whole.err)["customers"]
    reported = [line for line in two.err.splitlines() if ", line " in line]
    assert reported == [line for line in one.err.splitlines() if ", line " in line]
    assert reported[0].startswith(f"{first}, line ") and reported[-1].startswith(f"{second}, line ")


def test_the_parts_of_a_history_are_disjoint_and_cover_it(cdnow_with_ids: tuple[Path, int, int, int]) -> None:
    path = cdnow_with_ids[0]
    layout = CsvLayout(event_id="event_id", currency="currency")
    whole = list(read_history(path, layout))
    parts = [list(read_history(path, layout, Part(n, 3))) for n in range(3)]
    assert sorted(row for part in parts for row in part) == sorted(whole)
    owners = [{row.customer_id for row in part if not isinstance(row, BadRow)} for part in parts]
    assert not owners[0] & owners[1] and not owners[1] & owners[2] and not owners[0] & owners[2]
    assert all(owners)


def test_progress_reports_add_up_to_the_rows_read(cdnow_with_ids: tuple[Path, int, int, int]) -> None:
    path = cdnow_with_ids[0]
    for jobs in (1, 2):
        heard: list[int] = []
        stats = replay_inputs(Inputs((path,), CsvLayout(event_id="event_id", currency="currency")), 10407, SCORING,
                              io.StringIO(), jobs=jobs, on_progress=heard.append)
        assert sum(heard) <= stats.rows and sum(heard) >= stats.rows - jobs * 10_000, (jobs, heard)


@pytest.mark.parametrize(("size", "requested", "cpus", "expected"), [
    (10, 2, 4, 2), (10, 8, 2, 8),                            # asked for: as many as asked
    (PARALLEL_MIN_BYTES - 1, None, 16, 1),                   # small: one process unless asked
    (PARALLEL_MIN_BYTES, None, 16, 8), (PARALLEL_MIN_BYTES, None, 3, 3), (PARALLEL_MIN_BYTES, 1, 16, 1),
])
def test_jobs_for(size: int, requested: int | None, cpus: int, expected: int, tmp_path: Path,
                  monkeypatch: pytest.MonkeyPatch) -> None:
    path = tmp_path / "h.csv"
    path.write_bytes(b"x" * size)
    monkeypatch.setattr(replay_parallel.os, "sched_getaffinity", lambda _: set(range(cpus)), raising=False)
    assert jobs_for(Inputs((path,), CsvLayout()), requested) == expected


def test_stdin_and_exact_run_in_one_process(monkeypatch: pytest.MonkeyPatch) -> None:
    assert jobs_for(Inputs((Path("-"),), CsvLayout()), 4) == 1
    forked: list[Any] = []
    monkeypatch.setattr(replay_parallel, "_run_parts", lambda *args: forked.append(args))
    source = Inputs((CDNOW,), CsvLayout(delimiter="whitespace",
                                        columns=("customer_id", "id", "occurred_at", "quantity", "amount")))
    replay_inputs(source, 10407, SCORING, io.StringIO(), exact=True, jobs=2)
    assert forked == []

