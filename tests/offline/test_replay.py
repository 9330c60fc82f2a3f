"""`tierstream replay` end to end (in-process): files in, one CSV row per customer and a summary out.

The BTYD columns are checked against hand-computed cases and against lifetimes' own
CDNOW summary; every row read is accounted for in the summary; `--exact` is checked
against stepping the core event by event as the stream does. `--jobs`: test_replay_parallel.py.
"""

from __future__ import annotations

import contextlib
import csv
import io
import json
import random
import re
from collections import Counter, defaultdict
from datetime import UTC, date, datetime, timedelta
from decimal import ROUND_HALF_UP, Decimal
from pathlib import Path
from typing import Any, NamedTuple

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from schemas.outputs import (
    ContactActionRequested,
    CustomerAlert,
    CustomerForgotten,
    CustomerScore,
    PotentialChanged,
    TierChanged,
)
from scoring.events import MS_PER_DAY
from scoring.state import NEW_STATE
from scoring.step import evaluate, step
from streams.cli.main import main
from streams.offline.history import CsvLayout, Row, read_history
from streams.offline.replay import end_of_day_ms, run_replay
from streams.settings import load_settings

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures"
CONFIG = FIXTURES / "replay" / "tierstream.yaml"  # the defaults plus an EUR rate (GBP has none)
SCORING = load_settings(CONFIG).scoring
CDNOW = FIXTURES / "cdnow" / "CDNOW_sample.txt"
CDNOW_LAYOUT = ("--delimiter", "whitespace", "--columns", "customer_id,id,occurred_at,quantity,amount")
ISSUE_COLUMNS = [
    "customer_id", "tier", "score", "r_score", "f_score", "m_score", "recency_days", "frequency", "monetary",
    "returns_amount", "complaints", "tenure_days", "segment", "at_risk", "at_risk_score",
    "x", "t_x", "T", "mean_repeat_value", "potential", "value_potential_cell", "satisfaction", "proposition",
    "proposition_category",
]
BTYD = ("x", "t_x", "T", "mean_repeat_value")
# hysteresis: exact follows the path, batch assigns fresh (the cell and the proposition, with its category, follow
# the tier)
PATH_DEPENDENT = ("tier", "at_risk", "at_risk_score", "value_potential_cell", "proposition", "proposition_category")
SUMMARY = re.compile(
    r"rows read (?P<rows>[\d,]+); skipped: (?P<bad>[\d,]+) bad, (?P<after_as_of>[\d,]+) after as-of, "
    r"(?P<duplicates>[\d,]+) duplicate, (?P<rejected>[\d,]+) rejected\n"
    r"customers (?P<customers>[\d,]+) \((?P<tiers>[^)]*)\)(; forgotten (?P<forgotten>[\d,]+))?\n"
    r"[\d.]+ s, [\d,]+ rows/s\n\Z")


class Run(NamedTuple):
    code: int
    out: str
    err: str


def tierstream(*argv: str | Path) -> Run:
    """Run `tierstream argv` in-process: exit code, stdout, stderr."""
    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err), pytest.raises(SystemExit) as exited:
        main([str(arg) for arg in argv])
    return Run(int(exited.value.code or 0), out.getvalue(), err.getvalue())


def replay(*argv: str | Path) -> Run:
    return tierstream("replay", *argv, "--config", CONFIG)


def summary(err: str) -> dict[str, Any]:
    """The summary's counts, and its tier counts in printed order."""
    match = SUMMARY.search(err)
    assert match, err
    counts: dict[str, Any] = {k: int((v or "0").replace(",", "")) for k, v in match.groupdict().items()
                              if k != "tiers"}
    counts["tiers"] = {name: int(n.replace(",", "")) for name, n in
                       (part.rsplit(" ", 1) for part in match["tiers"].split(", "))}
    return counts


def table(text: str) -> dict[str, dict[str, str]]:
    """Output CSV text -> customer -> column -> value."""
    return {row["customer_id"]: row for row in csv.DictReader(io.StringIO(text))}


def write(path: Path, lines: list[str], header: str = "customer_id,occurred_at,amount") -> Path:
    path.write_text("\n".join([header, *lines]) + "\n", encoding="utf-8")
    return path


def epoch_day(iso: str) -> int:
    return (date.fromisoformat(iso) - date(1970, 1, 1)).days


# --- hand-computed cases ---------------------------------------------------------------------------

#                                x, t_x,  T, mean_repeat, frequency, monetary, returns, recency, tenure
HAND_CASES = {
    "one purchase": (["A,2024-06-01,10"], (0, 0, 29, 0.0, 1, "10.00", "0.00", 29, 29)),
    "several purchases the same day": (
        ["A,2024-06-01,10", "A,2024-06-01T18:00:00Z,15", "A,2024-06-01T23:59:59+00:00,5"],
        (0, 0, 29, 0.0, 3, "30.00", "0.00", 29, 29)),
    "out of order, two on a repeat day": (  # days 06-01 (10), 06-10 (50), 06-20 (40)
        ["A,2024-06-20,40", "A,2024-06-01,10", "A,2024-06-10,20", "A,2024-06-10,30"],
        (2, 19, 29, 45.0, 4, "100.00", "0.00", 10, 29)),
    "identical rows without an id both count": (
        ["A,2024-06-01,10", "A,2024-06-01,10", "A,2024-06-11,7", "A,2024-06-11,7"],
        (1, 10, 29, 14.0, 4, "34.00", "0.00", 19, 29)),
    "a negative amount is a return, not a purchase": (
        ["A,2024-06-01,10", "A,2024-06-05,-4", "A,2024-06-09,-1"],
        (0, 0, 29, 0.0, 1, "10.00", "5.00", 29, 29)),
    "refunds only: no BTYD figures": (["A,2024-06-01,-10"], ("", "", "", "", 0, "0.00", "10.00", "", "")),
    "purchases after the as-of day are left out": (
        ["A,2024-06-01,10", "A,2024-07-01,50", "A,2024-06-30T23:59:59.999Z,5", "A,2024-07-01T00:00:00Z,9"],
        (1, 29, 29, 5.0, 2, "15.00", "0.00", 0, 29)),
    "days are UTC days": (  # 07-01 01:00+02:00 is 06-30 23:00Z (in); 06-30 20:00-05:00 is 07-01 01:00Z (out)
        ["A,2024-06-01,10", "A,2024-07-01T01:00:00+02:00,20", "A,2024-06-30T20:00:00-05:00,30"],
        (1, 29, 29, 20.0, 2, "30.00", "0.00", 0, 29)),
    "first purchase on the as-of day": (["A,20240630,10"], (0, 0, 0, 0.0, 1, "10.00", "0.00", 0, 0)),
    "YYYYMMDD and ISO, cents": (  # days 01-01 (5.50), 01-05 (0.50), 03-01 (20), 06-30 (1.50); 2024 is a leap year
        ["A,20240101,5.5", "A,2024-01-05,0.25", "A,2024-01-05,0.25", "A,2024-03-01,20", "A,2024-06-30,1.5"],
        (3, 181, 181, 22 / 3, 5, "27.50", "0.00", 0, 181)),
    "BTYD is all-time, frequency is the 365-day window": (
        ["A,2023-06-01,100", "A,2024-06-01,10"], (1, 366, 395, 10.0, 1, "10.00", "0.00", 29, 395)),
}


@pytest.mark.parametrize("mode", [[], ["--exact"]], ids=["batch", "exact"])
@pytest.mark.parametrize(("lines", "expected"), HAND_CASES.values(), ids=HAND_CASES.keys())
def test_hand_computed_cases(lines: list[str], expected: tuple, mode: list[str], tmp_path: Path) -> None:
    path = write(tmp_path / "purchases.csv", [*lines, "Z,2024-06-15,1"])  # another customer alongside
    run = replay(path, "--as-of", "2024-06-30", *mode)
    assert run.code == 0, run.err
    row = table(run.out)["A"]
    x, t_x, T, mean_repeat, *rest = expected
    assert [row["x"], row["t_x"], row["T"]] == [str(x), str(t_x), str(T)]
    assert (row["mean_repeat_value"] == "") if mean_repeat == "" else (
        float(row["mean_repeat_value"]) == pytest.approx(mean_repeat, abs=1e-6))
    figures = ["frequency", "monetary", "returns_amount", "recency_days", "tenure_days"]
    assert [row[name] for name in figures] == [str(value) for value in rest]


def test_output_columns_are_the_issue_columns(tmp_path: Path) -> None:
    run = replay(write(tmp_path / "p.csv", ["A,2024-06-01,10"]), "--as-of", "2024-06-30")
    assert run.code == 0, run.err
    header, *rows = list(csv.reader(io.StringIO(run.out)))
    assert header == ISSUE_COLUMNS
    assert len(rows) == 1 and len(rows[0]) == len(ISSUE_COLUMNS)


def test_csv_goes_to_stdout_and_the_summary_to_stderr(tmp_path: Path) -> None:
    run = replay(write(tmp_path / "p.csv", ["B,2024-06-01,10", "A,2024-06-02,5"]), "--as-of", "2024-06-30")
    assert run.code == 0
    assert run.out.splitlines()[0] == ",".join(ISSUE_COLUMNS)
    assert [line.split(",")[0] for line in run.out.splitlines()[1:]] == ["A", "B"]  # sorted by customer
    assert "rows read" not in run.out
    assert summary(run.err)["customers"] == 2


def test_out_writes_the_file(tmp_path: Path) -> None:
    out = tmp_path / "scores.csv"
    run = replay(write(tmp_path / "p.csv", ["A,2024-06-01,10"]), "--as-of", "20240630", "-o", out)
    assert run.code == 0 and run.out == ""
    assert list(table(out.read_text())) == ["A"]


def test_several_inputs_are_one_history(tmp_path: Path) -> None:
    first = write(tmp_path / "a.csv", ["A,2024-06-01,10"])
    second = write(tmp_path / "b.csv", ["A,2024-06-01,10", "A,2024-06-11,4"])  # the same row again: counts
    jsonl = tmp_path / "c.jsonl"
    jsonl.write_text(json.dumps({"type": "purchase", "event_id": "j1", "customer_id": "A", "currency": "USD",
                                 "occurred_at": "2024-06-21T10:00:00Z", "amount": "6", "order_id": "1"}) + "\n")
    run = replay(first, second, jsonl, "--as-of", "2024-06-30")
    assert run.code == 0, run.err
    row = table(run.out)["A"]
    assert (row["frequency"], row["monetary"], row["x"], row["mean_repeat_value"]) == ("4", "30.00", "2", "5.0")
    assert summary(run.err)["rows"] == 4


# --- layouts through the command line --------------------------------------------------------------

def test_mixed_log_with_every_column_option(tmp_path: Path) -> None:
    path = write(tmp_path / "mixed.csv", [
        "A;20240601;2.50;Sale;o1;;4;",          # 10.00
        "A;20240601;2.50;sale;o1;;4;",          # the same id: a duplicate
        "A;20240603;1;Refund;r1;;3;",           # return 3.00
        "A;20240604;;complaint;c1;;;5",
        "A;20240605;;enquiry;;;;",
        "A;20240605;;inquiry;;;;",
        "A;20240610;10;purchase;o2;EUR;1;",     # 11.00 in USD
        "A;20240611;10;order;o3;GBP;1;",        # no rate: rejected
        "A;20240612;-2;sale;o4;;1;",            # a negative sale: return 2.00
    ], header="who;day;price;kind;ref;cur;n;sev")
    run = replay(path, "--as-of", "2024-06-30", "--delimiter", ";", "--customer-col", "who", "--time-col", "day",
                 "--amount-col", "price", "--type-col", "kind", "--id-col", "ref", "--currency-col", "cur",
                 "--quantity-col", "n", "--severity-col", "sev")
    assert run.code == 0, run.err
    row = table(run.out)["A"]
    assert (row["frequency"], row["monetary"], row["returns_amount"], row["complaints"]) == ("2", "21.00", "5.00", "1")
    assert (row["x"], row["t_x"], row["mean_repeat_value"]) == ("1", "9", "11.0")
    counts = summary(run.err)
    assert (counts["rows"], counts["bad"], counts["duplicates"], counts["rejected"]) == (9, 0, 1, 1)


def test_cdnow_layout_without_a_header(tmp_path: Path) -> None:
    path = tmp_path / "cdnow.txt"
    path.write_text(" 00004 0001 19970101  2   29.33\n 00004 0001 19970118  2   29.73\n\n"
                    " 00004 0001 19970802  1   14.96\n")
    run = replay(path, "--as-of", "19970930", *CDNOW_LAYOUT)
    assert run.code == 0, run.err
    row = table(run.out)["00004"]
    assert (row["x"], row["t_x"], row["T"], row["monetary"]) == ("2", "213", "272", "74.02")
    assert summary(run.err)["rows"] == 3


def test_date_format_option(tmp_path: Path) -> None:
    path = write(tmp_path / "p.csv", ["A,01/06/2024,10", "A,11/06/2024,5"])
    run = replay(path, "--as-of", "2024-06-30", "--date-format", "%d/%m/%Y")
    assert run.code == 0, run.err
    assert (table(run.out)["A"]["t_x"], table(run.out)["A"]["T"]) == ("10", "29")


def test_jsonl_of_typed_events() -> None:
    run = replay(FIXTURES / "events" / "mixed.jsonl", "--as-of", "2025-01-31")
    assert run.code == 0, run.err
    rows = table(run.out)
    assert sorted(rows) == ["C-1", "C-2"]  # Kunde-Ä's only event is in JPY, which has no rate: rejected
    c1, c2 = rows["C-1"], rows["C-2"]
    assert (c1["monetary"], c1["returns_amount"], c1["complaints"], c1["x"], c1["T"]) == (
        "120.00", "20.00", "1", "0", "29")
    assert (c2["monetary"], c2["returns_amount"], c2["complaints"]) == ("39.05", "39.05", "1")  # 35.50 EUR x 1.1
    counts = summary(run.err)
    # 0 JPY: no rate; then Kunde-Ä's erasure request (nothing held by then: nothing to forget)
    assert (counts["rows"], counts["bad"], counts["rejected"], counts["forgotten"]) == (9, 0, 1, 0)


# --- nothing is dropped silently -------------------------------------------------------------------

def test_the_summary_accounts_for_every_row(tmp_path: Path) -> None:
    path = write(tmp_path / "log.csv", [
        "A,2024-06-01,10,purchase,a1,USD",   # 1 event
        "A,2024-06-01,10,purchase,a1,USD",   #   duplicate
        "A,2024-06-02,3,refund,a2,",         # 2
        "A,2024-06-03,,complaint,a3,",       # 3
        "B,2024-06-04,,enquiry,,",           # 4
        "B,2024-06-04,,enquiry,,",           # 5: no id, a distinct event
        "B,2024-06-05,5,purchase,b1,GBP",    #   rejected: no rate
        "B,2024-06-05,5,purchase,b2,EUR",    # 6
        "C,2024-07-01,5,purchase,c1,",       #   after as-of
        "C,2024-06-06,x,purchase,c2,",       #   bad (line 11)
        "",                                  #   blank: not a row
        "D,2024-06-07,5,gift,d1,",           #   bad (line 13)
    ], header="customer_id,occurred_at,amount,type,eid,cur")
    run = replay(path, "--as-of", "2024-06-30", "--type-col", "type", "--id-col", "eid", "--currency-col", "cur")
    assert run.code == 0, run.err
    counts = summary(run.err)
    events = 6
    assert {k: counts[k] for k in ("rows", "bad", "after_as_of", "duplicates", "rejected", "customers")} == {
        "rows": 11, "bad": 2, "after_as_of": 1, "duplicates": 1, "rejected": 1, "customers": 2}
    assert counts["rows"] == events + counts["bad"] + counts["after_as_of"] + counts["duplicates"] + counts["rejected"]
    assert run.err.splitlines()[:2] == ["line 11: amount is not a number (skipped)",
                                        "line 13: unknown event type 'gift' (skipped)"]
    rows = table(run.out)
    assert sorted(rows) == ["A", "B"]
    assert (rows["A"]["monetary"], rows["A"]["returns_amount"], rows["A"]["complaints"]) == ("10.00", "3.00", "1")
    assert rows["B"]["monetary"] == "5.50"


def test_tier_counts_in_the_summary_match_the_rows(cdnow_batch: Run) -> None:
    counts = summary(cdnow_batch.err)
    assert list(counts["tiers"]) == list(SCORING.tier_names)
    tiers = Counter(row["tier"] for row in table(cdnow_batch.out).values())
    assert counts["tiers"] == {name: tiers.get(name, 0) for name in SCORING.tier_names}
    assert sum(counts["tiers"].values()) == counts["customers"] == 2357


ROW_KINDS = st.lists(st.tuples(st.sampled_from(["good", "dup", "bad", "late", "rejected", "blank"]),
                               st.sampled_from("ABC")), max_size=30)


@pytest.fixture(scope="module")
def scratch(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("replay")


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(kinds=ROW_KINDS)
def test_every_row_read_is_counted_once(kinds: list[tuple[str, str]], scratch: Path) -> None:
    lines: list[str] = []
    expected: Counter[str] = Counter()
    first_good: dict[str, str] = {}
    for n, (drawn, customer) in enumerate(kinds):
        kind = "good" if drawn == "dup" and customer not in first_good else drawn  # nothing to repeat yet
        good = f"{customer},2024-06-{1 + n % 28:02d},{n}.5,e{n},USD"
        if kind == "good":
            first_good.setdefault(customer, good)
        lines.append({"good": good, "dup": first_good.get(customer, ""), "bad": f"{customer},2024-06-01,x,b{n},",
                      "late": f"{customer},2024-07-01,1,l{n},", "rejected": f"{customer},2024-06-01,1,r{n},GBP",
                      "blank": ""}[kind])
        expected[kind] += 1
    path = write(scratch / "log.csv", lines, header="customer_id,occurred_at,amount,eid,cur")
    out = io.StringIO()
    stats = run_replay(read_history(path, CsvLayout(event_id="eid", currency="cur")), epoch_day("2024-06-30"),
                       SCORING, out)
    assert (stats.rows, stats.bad, stats.after_as_of, stats.duplicates, stats.rejected) == (
        len(kinds) - expected["blank"], expected["bad"], expected["late"], expected["dup"], expected["rejected"])
    assert stats.customers == len(table(out.getvalue())) == sum(stats.tiers.values())


def test_bad_rows_are_reported_with_line_numbers_up_to_twenty(tmp_path: Path) -> None:
    path = write(tmp_path / "p.csv", ["A,2024-06-01,10"] + [f"B{i},2024-06-01,oops" for i in range(25)])
    run = replay(path, "--as-of", "2024-06-30")
    assert run.code == 0
    reported = [line for line in run.err.splitlines() if line.startswith("line ")]
    assert reported == [f"line {n}: amount is not a number (skipped)" for n in range(3, 23)]
    assert "... and 5 more bad rows" in run.err
    assert summary(run.err)["bad"] == 25
    assert list(table(run.out)) == ["A"]


def test_strict_makes_a_bad_row_fatal(tmp_path: Path) -> None:
    out = tmp_path / "scores.csv"
    run = replay(write(tmp_path / "p.csv", ["A,2024-06-01,10", "B,2024-06-01,oops", "C,2024-06-01,1"]),
                 "--as-of", "2024-06-30", "--strict", "--out", out)
    assert run.code == 1
    assert run.err == "tierstream: --strict: line 3: amount is not a number\n"
    assert not out.exists()  # a failed run writes no output file


def test_strict_accepts_blank_lines(tmp_path: Path) -> None:
    run = replay(write(tmp_path / "p.csv", ["", "A,2024-06-01,10", "   ", ""]), "--as-of", "2024-06-30", "--strict")
    assert run.code == 0, run.err
    assert summary(run.err)["bad"] == 0


def test_a_row_that_is_not_utf8_is_reported_with_its_line_and_counted(tmp_path: Path) -> None:
    lines = [b"customer_id,occurred_at,amount"] + [f"C{n:04d},2024-06-01,1.00".encode() for n in range(2, 601)]
    lines[499] = b"C05\xff0,2024-06-01,1.0"  # line 500, past the decoder's first 8 KB
    lines[3] = b"C0004,2024-06-01,1.0\xfe"  # line 4, inside them
    path = tmp_path / "log.csv"
    path.write_bytes(b"\n".join(lines) + b"\n")
    run = replay(path, "--as-of", "2024-06-30")
    assert run.code == 0
    reported = [line for line in run.err.splitlines() if line.startswith("line ")]
    assert reported == ["line 4: not UTF-8 (byte 0xfe) (skipped)",
                        "line 500: customer id is not UTF-8 (byte 0xff) (skipped)"]
    counts = summary(run.err)
    assert counts["bad"] == 2 and counts["rows"] == 599 and counts["customers"] == 597  # every other row read
    strict = replay(path, "--as-of", "2024-06-30", "--strict")
    assert strict.code == 1 and strict.err.startswith("tierstream: --strict: line 4: ")


def _usage_errors(path: Path, tmp_path: Path) -> dict[str, tuple[list[str | Path], str]]:
    empty = tmp_path / "empty.csv"
    empty.write_text("")
    latin1 = tmp_path / "latin1.csv"
    latin1.write_bytes("kundennr,datum,betrag,größe\nMüller,2024-06-01,1,2\n".encode("latin-1"))
    return {
        "missing customer column": ([path, "--customer-col", "cust"],
                                    "tierstream: error: no column 'cust'; the columns are: customer_id, occurred_at, "
                                    "amount"),
        "missing type column": ([path, "--type-col", "kind"], "tierstream: error: no column 'kind'"),
        "missing id column": ([path, "--id-col", "eid"], "tierstream: error: no column 'eid'"),
        "columns without amount": ([path, "--columns", "customer_id,occurred_at"], "no column 'amount'"),
        "wrong delimiter": ([path, "--delimiter", ";"], "no column 'customer_id'"),
        "empty file": ([empty], "tierstream: error: the file is empty: no header row"),
        "not UTF-8": ([latin1], "tierstream: error: the header row is not UTF-8 (byte 0xf6): is the file UTF-8 "
                                "text?"),
        "missing file": ([tmp_path / "nope.csv"], "does not exist"),
        "directory": ([tmp_path], "is a directory"),
        "bad as-of": ([path, "--as-of", "2024-13-01"], "'2024-13-01' is not a date"),
        "decisions-out without exact": ([path, "--decisions-out", tmp_path / "d.jsonl"],
                                        "--decisions-out needs --exact"),
        "jobs 0": ([path, "--jobs", "0"], "--jobs"),
    }


USAGE_CASES = ["missing customer column", "missing type column", "missing id column", "columns without amount",
               "wrong delimiter", "empty file", "not UTF-8", "missing file", "directory", "bad as-of",
               "decisions-out without exact", "jobs 0"]


@pytest.mark.parametrize("case", USAGE_CASES)
def test_a_bad_file_or_option_is_one_line_and_exit_2(case: str, tmp_path: Path) -> None:
    path = write(tmp_path / "p.csv", ["A,2024-06-01,10"])
    argv, message = _usage_errors(path, tmp_path)[case]
    as_of = [] if "--as-of" in argv else ["--as-of", "2024-06-30"]
    run = replay(*argv, *as_of)
    assert run.code == 2
    assert message in run.err
    assert run.err.count("\n") == 1 and run.err.endswith("\n")
    assert run.out == ""


def test_a_missing_config_file_is_one_line_and_exit_2(tmp_path: Path) -> None:
    run = tierstream("replay", write(tmp_path / "p.csv", ["A,2024-06-01,10"]), "--as-of", "2024-06-30",
                     "--config", tmp_path / "nope.yaml")
    assert run.code == 2 and run.err.count("\n") == 1 and "no such file" in run.err


def test_an_out_file_that_cannot_be_written_is_one_line_and_exit_2(tmp_path: Path) -> None:
    run = replay(write(tmp_path / "p.csv", ["A,2024-06-01,10"]), "--as-of", "2024-06-30",
                 "--out", tmp_path / "missing" / "scores.csv")
    assert run.code == 2 and run.err.count("\n") == 1
    assert run.err.startswith("tierstream: error: cannot write ") and "No such file or directory" in run.err


# --- CDNOW against lifetimes' summary --------------------------------------------------------------

@pytest.fixture(scope="module")
def cdnow_batch() -> Run:
    run = replay(CDNOW, "--as-of", "1997-09-30", *CDNOW_LAYOUT)
    assert run.code == 0, run.err
    return run


@pytest.fixture(scope="module")
def cdnow_shuffled(tmp_path_factory: pytest.TempPathFactory) -> Path:
    lines = CDNOW.read_text().splitlines(keepends=True)
    random.Random(7).shuffle(lines)
    path = tmp_path_factory.mktemp("cdnow") / "shuffled.txt"
    path.write_text("".join(lines))
    return path


def _cdnow_ids() -> dict[str, int]:
    """CDNOW customer id as written (first column) -> the sequential id lifetimes' summary uses."""
    return {line.split()[0]: int(line.split()[1]) for line in CDNOW.read_text().splitlines()}


def _lifetimes_mismatches(rows: dict[str, dict[str, str]]) -> list[int]:
    """Customers whose BTYD columns differ from lifetimes' weekly summary at 1997-09-30.

    lifetimes ran `summary_data_from_transaction_data(freq="D")` and divided t_x and T by 7 (weeks),
    written with 2 decimals; a whole number of days / 7 never ends in an exact half cent, so
    `f"{days / 7:.2f}"` is exactly what the file holds. zbar is the mean repeat value rounded half up.
    """
    with (FIXTURES / "cdnow" / "cdnow_customers_summary_with_transactions.csv").open() as f:
        reference = {int(r["ID"]): r for r in csv.DictReader(f)}
    with (FIXTURES / "cdnow" / "cdnow_customers_summary.csv").open() as f:
        frequency = {int(r["ID"]): int(r["frequency"]) for r in csv.DictReader(f)}
    ids = _cdnow_ids()
    assert len(reference) == len(frequency) == len(rows) == 2357
    assert {ids[customer] for customer in rows} == set(reference)
    wrong = []
    for customer, row in rows.items():
        ref = reference[ids[customer]]
        x, t_x, T = int(row["x"]), int(row["t_x"]), int(row["T"])
        zbar = Decimal(row["mean_repeat_value"]).quantize(Decimal("0.01"), ROUND_HALF_UP)
        expected = (int(ref["x"]), ref["t_x"], ref["T"], Decimal(ref["zbar"]))
        if (x, f"{t_x / 7:.2f}", f"{T / 7:.2f}", zbar) != expected or x != frequency[ids[customer]]:
            wrong.append(ids[customer])
    return wrong


def test_cdnow_btyd_columns_match_lifetimes(cdnow_batch: Run) -> None:
    assert _lifetimes_mismatches(table(cdnow_batch.out)) == []


def test_cdnow_summary_counts(cdnow_batch: Run) -> None:
    lines = CDNOW.read_text().splitlines()
    counts = summary(cdnow_batch.err)
    assert (counts["rows"], counts["bad"], counts["duplicates"], counts["rejected"]) == (len(lines), 0, 0, 0)
    assert counts["after_as_of"] == sum(line.split()[2] > "19970930" for line in lines) > 0


def test_cdnow_in_any_row_order_gives_the_same_output(cdnow_batch: Run, cdnow_shuffled: Path) -> None:
    run = replay(cdnow_shuffled, "--as-of", "1997-09-30", *CDNOW_LAYOUT)
    assert run.code == 0
    assert run.out == cdnow_batch.out


def test_cdnow_exact_on_shuffled_rows_gives_the_batch_figures(cdnow_batch: Run, cdnow_shuffled: Path) -> None:
    run = replay(cdnow_shuffled, "--as-of", "1997-09-30", "--exact", *CDNOW_LAYOUT)
    assert run.code == 0
    exact, batch = table(run.out), table(cdnow_batch.out)
    assert _lifetimes_mismatches(exact) == []
    assert list(exact) == list(batch)
    same = [name for name in ISSUE_COLUMNS if name not in PATH_DEPENDENT]
    assert [c for c in exact if [exact[c][k] for k in same] != [batch[c][k] for k in same]] == []
    assert any(exact[c]["tier"] != batch[c]["tier"] for c in exact)  # exact follows the hysteresis path
    counts, batch_counts = summary(run.err), summary(cdnow_batch.err)
    assert {k: v for k, v in counts.items() if k != "tiers"} == {k: v for k, v in batch_counts.items() if k != "tiers"}


# --- --exact: step by step, as the stream ----------------------------------------------------------

def varied_history(seed: int = 11, customers: int = 30) -> list[dict[str, Any]]:
    """Typed events of a year, in time order but for a few swapped neighbours; a few redelivered copies,
    purchases in EUR (a rate) and GBP (none: rejected), and a few events after 2024-12-31."""
    rng = random.Random(seed)
    start = datetime(2024, 1, 1, tzinfo=UTC)
    events: list[dict[str, Any]] = []
    for i in range(customers):
        customer = f"v{i:02d}"
        for n in range(rng.randint(1, 14)):
            at = start + timedelta(days=rng.uniform(0, 372))
            common = {"event_id": f"{customer}-{n}", "customer_id": customer, "occurred_at": at.isoformat()}
            kind = rng.choices(["purchase", "return", "complaint", "enquiry"], [8, 1, 1, 1])[0]
            if kind == "purchase":
                events.append({"type": kind, **common, "amount": f"{rng.lognormvariate(4, 1):.2f}", "order_id": "o",
                               "currency": rng.choices(["USD", "EUR", "GBP"], [20, 2, 1])[0]})
            elif kind == "return":
                events.append({"type": kind, **common, "amount": f"{rng.uniform(1, 50):.2f}", "order_id": "o"})
            elif kind == "complaint":
                events.append({"type": kind, **common, "severity": rng.randint(1, 5), "category": "delivery"})
            else:
                events.append({"type": kind, **common, "topic": "opening hours"})
    events.sort(key=lambda e: e["occurred_at"])
    for k in rng.sample(range(len(events) - 1), 10):
        events[k], events[k + 1] = events[k + 1], events[k]
    for k in sorted(rng.sample(range(len(events)), 8), reverse=True):
        events.insert(k + rng.randint(1, 5), events[k])
    return events


AS_OF = "2024-12-31"


@pytest.fixture(scope="module")
def varied(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("varied") / "events.jsonl"
    path.write_text("".join(json.dumps(e) + "\n" for e in varied_history()))
    return path


def stepped(path: Path) -> tuple[dict[str, str], list[tuple[str, str]]]:
    """What the stream does with the file under the event clock: each customer's events stepped in file order,
    then the sweep's reviews, each as of the end of its due day, up to the as-of day; the tier as of that day.
    -> (tier per customer, (customer, output id) in order)."""
    by_customer: dict[str, list] = defaultdict(list)
    as_of = epoch_day(AS_OF)
    limit = end_of_day_ms(as_of)
    for item in read_history(path, CsvLayout()):
        assert isinstance(item, Row)
        if item.event.at_ms <= limit:
            by_customer[item.customer_id].append(item.event)
    tiers, outputs = {}, []
    for customer in sorted(by_customer):
        state = NEW_STATE
        for event in by_customer[customer]:
            result = step(state, event, event.at_ms, customer, SCORING)
            if result.evaluation is not None:
                outputs += [(customer, decision.id) for decision in result.decisions]
            state = result.state
        while state.review_day is not None and state.review_day <= as_of:
            due = state.review_day
            result = step(state, None, end_of_day_ms(due), customer, SCORING)
            outputs += [(customer, decision.id) for decision in result.decisions]
            state = result.state
            assert state.review_day is None or state.review_day > due
        final = step(state, None, limit, customer, SCORING)
        tiers[customer] = (final.evaluation or evaluate(state, as_of, SCORING)).tier
    return tiers, outputs


def test_exact_steps_like_the_stream(varied: Path, tmp_path: Path) -> None:
    decisions = tmp_path / "outputs.jsonl"
    run = replay(varied, "--as-of", AS_OF, "--exact", "--decisions-out", decisions)
    assert run.code == 0, run.err
    tiers, outputs = stepped(varied)
    assert {c: row["tier"] for c, row in table(run.out).items()} == tiers
    docs = [json.loads(line) for line in decisions.read_text().splitlines()]
    assert [(doc["customer_id"], doc["id"]) for doc in docs] == outputs
    assert {doc["type"] for doc in docs} >= {"TierChanged", "CustomerScore"}


OUTPUT_MODELS = {
    model.__name__: model
    for model in (TierChanged, PotentialChanged, CustomerScore, CustomerAlert, ContactActionRequested)
}


def test_decisions_out_are_output_messages(varied: Path, tmp_path: Path) -> None:
    decisions = tmp_path / "outputs.jsonl"
    assert replay(varied, "--as-of", AS_OF, "--exact", "--decisions-out", decisions).code == 0
    lines = decisions.read_text().splitlines()
    assert lines
    last_day = datetime(2024, 12, 31, 23, 59, 59, 999000, tzinfo=UTC)
    for line in lines:
        doc = json.loads(line)
        message = OUTPUT_MODELS[doc["type"]].model_validate(doc)  # the tag is a field of the message
        assert message.emitted_at <= last_day and message.event_time <= last_day


def test_exact_and_batch_differ_only_on_the_tier_path(varied: Path) -> None:
    batch = replay(varied, "--as-of", AS_OF)
    exact = replay(varied, "--as-of", AS_OF, "--exact")
    assert batch.code == exact.code == 0
    b, e = table(batch.out), table(exact.out)
    assert list(b) == list(e)
    same = [name for name in ISSUE_COLUMNS if name not in PATH_DEPENDENT]
    assert {c: [b[c][k] for k in same] for c in b} == {c: [e[c][k] for k in same] for c in e}
    batch_counts, exact_counts = summary(batch.err), summary(exact.err)
    assert batch_counts["duplicates"] > 0 and batch_counts["rejected"] > 0 and batch_counts["after_as_of"] > 0
    assert {k: v for k, v in batch_counts.items() if k != "tiers"} == {
        k: v for k, v in exact_counts.items() if k != "tiers"}


def test_batch_now_is_the_last_ms_of_the_as_of_day() -> None:
    assert end_of_day_ms(epoch_day("2024-06-30")) == (epoch_day("2024-07-01")) * MS_PER_DAY - 1


# --- retention and erasure requests ------------------------------------------------------------------

RETENTION_YAML = "scoring:\n  tiering: absolute\n  retention: {forget_after_days: 400}\n"


def test_replay_forgets_idle_and_erased_customers_in_both_modes(tmp_path: Path) -> None:
    """Idle 400 days: forgotten, or started again by a later event; an erasure request forgets at once. Both
    modes leave the same customers with the same figures; --exact writes the CustomerForgotten outputs."""
    config = tmp_path / "retention.yaml"
    config.write_text(RETENTION_YAML)
    history = retention_history(tmp_path)
    decisions = tmp_path / "decisions.jsonl"
    exact = tierstream("replay", history, "--as-of", "2024-12-31", "--config", config, "--exact",
                       "--decisions-out", decisions)
    batch = tierstream("replay", history, "--as-of", "2024-12-31", "--config", config)
    assert exact.code == batch.code == 0, exact.err + batch.err
    e, b = table(exact.out), table(batch.out)
    assert sorted(e) == sorted(b) == ["again", "back", "kept"]
    assert {c: (row["frequency"], row["monetary"], row["tenure_days"]) for c, row in e.items()} == {
        c: (row["frequency"], row["monetary"], row["tenure_days"]) for c, row in b.items()}
    assert (e["back"]["frequency"], e["back"]["tenure_days"], e["again"]["monetary"]) == ("1", "213", "120.00")
    assert summary(exact.err)["forgotten"] == summary(batch.err)["forgotten"] == 4  # idle, back once, 2 erased
    docs = [json.loads(line) for line in decisions.read_text().splitlines()]
    gone = {(d["customer_id"], d["reason"], d["cause"], d["last_activity_day"]) for d in docs
            if d["type"] == "CustomerForgotten"}
    assert gone == {("idle", "inactive", f"review@{epoch_day('2023-01-10') + 400}", "2023-01-10"),
                    ("back", "inactive", f"review@{epoch_day('2023-01-10') + 400}", "2023-01-10"),
                    ("erased", "erasure", "x1", "2024-03-01"), ("again", "erasure", "x2", "2024-03-01")}
    for doc in docs:
        if doc["type"] == "CustomerForgotten":
            CustomerForgotten.model_validate(doc)


def test_erasure_requests_without_retention_in_every_replay_path(tmp_path: Path) -> None:
    """No retention rule: the columnar batch replay hands the customers with an erasure request to the per-row
    fold; it agrees with --jobs 1 (row by row) and --exact."""
    history = retention_history(tmp_path)
    runs = [replay(history, "--as-of", "2024-12-31", *extra) for extra in ((), ("--jobs", "1"), ("--exact",))]
    assert [r.code for r in runs] == [0, 0, 0], [r.err for r in runs]
    tables = [table(r.out) for r in runs]
    assert sorted(tables[0]) == ["again", "back", "idle", "kept"]  # only the erased one is gone
    columns = ("frequency", "monetary", "tenure_days")
    assert [{c: [row[k] for k in columns] for c, row in t.items()} for t in tables[1:]] == [
        {c: [row[k] for k in columns] for c, row in tables[0].items()}] * 2
    kept_since = str(epoch_day("2024-12-31") - epoch_day("2023-01-10"))  # no retention: "back" stays one customer
    assert tables[0]["back"]["tenure_days"] == kept_since and [summary(r.err)["forgotten"] for r in runs] == [2, 2, 2]


def retention_history(tmp_path: Path) -> Path:
    events = [
        {"type": "purchase", "event_id": "i1", "customer_id": "idle", "occurred_at": "2023-01-10T10:00:00Z"},
        {"type": "purchase", "event_id": "b1", "customer_id": "back", "occurred_at": "2023-01-10T10:00:00Z"},
        {"type": "purchase", "event_id": "b2", "customer_id": "back", "occurred_at": "2024-06-01T10:00:00Z"},
        {"type": "purchase", "event_id": "k1", "customer_id": "kept", "occurred_at": "2024-03-01T10:00:00Z"},
        {"type": "purchase", "event_id": "e1", "customer_id": "erased", "occurred_at": "2024-03-01T10:00:00Z"},
        {"type": "erasure", "event_id": "x1", "customer_id": "erased", "requested_at": "2024-05-01T10:00:00Z"},
        {"type": "purchase", "event_id": "a1", "customer_id": "again", "occurred_at": "2024-03-01T10:00:00Z"},
        {"type": "erasure", "event_id": "x2", "customer_id": "again", "requested_at": "2024-05-01T10:00:00Z"},
        {"type": "purchase", "event_id": "a2", "customer_id": "again", "occurred_at": "2024-06-01T10:00:00Z"},
    ]
    history = tmp_path / "events.jsonl"
    history.write_text("".join(json.dumps({"amount": "120.00", "currency": "USD", "order_id": "o", **e}
                                          if e["type"] == "purchase" else e) + "\n" for e in events))
    return history


def test_a_batch_replay_with_retention_reads_row_by_row(tmp_path: Path) -> None:
    """The columnar reader does not apply retention: a replay with a retention rule takes the per-row path."""
    from streams.offline.history import Inputs
    from streams.offline.parallel import replay_inputs

    path = write(tmp_path / "p.csv", ["A,2022-01-01,10", "B,2024-06-01,10", "A,2023-06-01,10"])
    config = load_settings_text(tmp_path, RETENTION_YAML)
    out = io.StringIO()
    stats = replay_inputs(Inputs((path,), CsvLayout()), epoch_day("2024-12-31"), config, out, jobs=None)
    # A: forgotten between its purchases (516 days apart), then again: idle since 2023-06-01
    assert sorted(table(out.getvalue())) == ["B"] and stats.forgotten == 2
    assert stats.customers == 1


def load_settings_text(tmp_path: Path, text: str) -> Any:
    path = tmp_path / "settings.yaml"
    path.write_text(text)
    return load_settings(path).scoring


def test_every_row_bad_is_exit_2_with_a_hint_and_no_tier_report(tmp_path: Path) -> None:
    """A wrong --date-format: each bad row is reported, then the counts and one error; nothing about
    calibration or value concentration, which would send a newcomer looking in the wrong place."""
    path = write(tmp_path / "p.csv", ["A,2024-06-01,10", "B,2024-06-02,20"])
    run = replay(path, "--as-of", "2024-06-30", "--date-format", "%d/%m/%Y")
    assert run.code == 2
    assert run.err.splitlines()[-1].startswith(f"tierstream: error: {path}: no row could be read (2 bad rows; ")
    assert "--date-format" in run.err.splitlines()[-1]
    assert "calibrat" not in run.err and "concentration" not in run.err


def test_a_failed_replay_keeps_the_output_files_it_would_have_replaced(tmp_path: Path) -> None:
    history = tmp_path / "history.csv"
    history.write_text("customer_id,occurred_at,amount\nc1,2024-01-02T10:00:00Z,10.00\nc1,2024-02-03T10:00:00Z,5\n")
    out, decisions = tmp_path / "scores.csv", tmp_path / "decisions.jsonl"
    out.write_text("the previous run's scores\n")
    decisions.write_text("the previous run's decisions\n")
    failed = replay(history, "--as-of", "2024-12-31", "--date-format", "%d/%m/%Y", "--out", out,
                    "--decisions-out", decisions, "--exact")  # every row bad: exit 2
    assert failed.code == 2, failed.err
    assert out.read_text() == "the previous run's scores\n"
    assert decisions.read_text() == "the previous run's decisions\n"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["decisions.jsonl", "history.csv", "scores.csv"]
    done = replay(history, "--as-of", "2024-12-31", "--out", out, "--decisions-out", decisions, "--exact")
    assert done.code == 0, done.err
    assert sorted(table(out.read_text())) == ["c1"] and decisions.read_text().strip()
    assert out.stat().st_mode & 0o777 == 0o666 & ~current_umask()  # as a plain open() would have made it
    assert sorted(p.name for p in tmp_path.iterdir()) == ["decisions.jsonl", "history.csv", "scores.csv"]
    assert replay(history, "--as-of", "2024-12-31", "--out", "/dev/null").code == 0  # not a regular file


def current_umask() -> int:
    import os
    mask = os.umask(0)
    os.umask(mask)
    return mask
