"""Calibrated tiering from the command line: `replay` (self-calibrated, or `--calibration FILE`), `calibrate`
(and `--diff`), `fit`'s calibration, on real logs (UCI Online Retail, CDNOW) and small hand-made ones.

What the issue asks to show: each tier's share of the active customers within 1 point of its configured
share, AAA's revenue lift >= 3, the BTYD columns still lifetimes', and the same tiers from stream and replay
given the same calibration (`--exact` here against the core stepped with the calibrated config).
"""

from __future__ import annotations

import contextlib
import csv
import gzip
import io
import json
import re
from collections import Counter
from datetime import date
from decimal import ROUND_HALF_UP, Decimal
from pathlib import Path
from typing import NamedTuple

import pytest

from scoring.calibration import calibration_from_json
from scoring.config import ScoringConfig, parse_config
from scoring.events import MS_PER_DAY
from scoring.state import NEW_STATE
from scoring.step import step
from streams.cli.main import main
from streams.offline.history import CsvLayout, Row, parse_time_ms, read_history, time_zone
from streams.offline.replay import end_of_day_ms
from tests.kits.data import shared_data

ROOT = Path(__file__).resolve().parents[2]
CDNOW = ROOT / "tests" / "fixtures" / "cdnow"
CDNOW_SAMPLE = CDNOW / "CDNOW_sample.txt"
SAMPLE_LAYOUT = ("--delimiter", "whitespace", "--columns", "customer_id,id,occurred_at,quantity,amount")
MASTER_LAYOUT = ("--delimiter", "whitespace", "--time-col", "date", "--amount-col", "dollar_value")
RETAIL_LAYOUT = ("--customer-col", "CustomerID", "--time-col", "InvoiceDate", "--amount-col", "UnitPrice",
                 "--quantity-col", "Quantity")
SHARES = {"AAA": 0.05, "A": 0.15, "B": 0.30, "C": 0.50}  # the documented defaults


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


@pytest.fixture(scope="module")
def defaults(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """An empty config file: the defaults, whatever ./tierstream.yaml holds."""
    path = tmp_path_factory.mktemp("config") / "tierstream.yaml"
    path.write_text("scoring: {}\n")
    return path


def table(text: str) -> dict[str, dict[str, str]]:
    return {row["customer_id"]: row for row in csv.DictReader(io.StringIO(text))}


def active_shares(rows: dict[str, dict[str, str]]) -> dict[str, float]:
    """Each tier's share of the active customers (a purchase in the window: frequency >= 1)."""
    tiers = Counter(row["tier"] for row in rows.values() if int(row["frequency"]) > 0)
    total = sum(tiers.values())
    return {tier: tiers[tier] / total for tier in SHARES}


def lifts(rows: dict[str, dict[str, str]]) -> dict[str, float]:
    """Each tier's share of the 12 months' net purchases (window = 365 days: monetary - returns) over its share
    of the customers."""
    customers: Counter[str] = Counter()
    revenue: dict[str, Decimal] = {t: Decimal(0) for t in SHARES}
    for row in rows.values():
        customers[row["tier"]] += 1
        revenue[row["tier"]] += Decimal(row["monetary"]) - Decimal(row["returns_amount"])  # exact
    total_customers, total_revenue = sum(customers.values()), sum(revenue.values(), Decimal(0))
    return {t: float(revenue[t] / total_revenue) / (customers[t] / total_customers) for t in SHARES if customers[t]}


def assert_calibrated_tiers(run: Run) -> dict[str, dict[str, str]]:
    """The issue's figures, from the output rows alone; and the summary saying where the calibration came from."""
    assert run.code == 0, run.err
    rows = table(run.out)
    shares = active_shares(rows)
    for tier, share in SHARES.items():
        assert abs(shares[tier] - share) <= 0.01, shares
    lift = lifts(rows)
    assert lift["AAA"] >= 3, lift
    active = sum(int(row["frequency"]) > 0 for row in rows.values())
    assert f"calibrated from this history: {active:,} active customers of {len(rows):,} " in run.err
    reported = re.search(r"AAA [\d.]+% of customers, [\d.]+% of revenue \(lift ([\d.]+)\)", run.err)
    assert reported and float(reported[1]) == pytest.approx(lift["AAA"], abs=0.006), run.err
    return rows


# --- UCI Online Retail: a real log nobody here wrote -----------------------------------------------

@pytest.fixture(scope="module")
def online_retail(tmp_path_factory: pytest.TempPathFactory, defaults: Path) -> tuple[Run, Path]:
    path = shared_data("online_retail") / "online_retail.csv.gz"
    assert path.is_file(), f"{path} is missing"
    out = tmp_path_factory.mktemp("retail") / "scores.csv"
    run = tierstream("replay", path, "--as-of", "2011-12-09", *RETAIL_LAYOUT, "--config", defaults, "--out", out)
    return Run(run.code, out.read_text(), run.err), path


def test_online_retail_tiers_are_shares_of_the_active_customers_with_a_top_tier_lift(
        online_retail: tuple[Run, Path]) -> None:
    run, _ = online_retail
    rows = assert_calibrated_tiers(run)
    assert len(rows) == 4372  # every customer of the data set's README


def test_online_retail_rows_without_a_customer_are_one_line(online_retail: tuple[Run, Path]) -> None:
    run, path = online_retail
    with gzip.open(path, "rt", newline="", encoding="utf-8") as f:
        reader = csv.reader(f)
        column = next(reader).index("CustomerID")
        empty = [reader.line_num for fields in reader if not fields[column].strip()]
    first = ", ".join(map(str, empty[:5]))
    assert f"{len(empty):,} rows skipped: customer id is empty (lines {first}, ...)\n" in run.err
    assert not [line for line in run.err.splitlines() if line.startswith("line ")]  # none reported one by one
    assert f"skipped: {len(empty):,} bad," in run.err


def test_online_retail_btyd_columns_are_lifetimes(online_retail: tuple[Run, Path]) -> None:
    """x, t_x, T (days) and the mean repeat value (to the cent) equal lifetimes' own summary of the same log
    (tests/fixtures/online_retail/btyd_lifetimes.csv, made by make_btyd_reference.py beside it), for every customer
    lifetimes has (the 33 with returns only have no transaction there). Left out: the customers with more lines
    than the exact id memory (`dedupe_exact_ids`), whose later ids are kept in Bloom filters; a false positive there
    drops a line as a duplicate (19 of this log's lines, 3 customers' figures): the bounded memory's known cost,
    reported in the summary's duplicate count and in docs/delivery.md."""
    run, _ = online_retail
    rows = table(run.out)
    exact_ids = parse_config({}).dedupe_exact_ids
    with (Path(__file__).parents[1] / "fixtures" / "online_retail" / "btyd_lifetimes.csv").open() as f:
        reference = {r["CustomerID"]: r for r in csv.DictReader(f)}
    kept = {c: r for c, r in reference.items() if int(r["rows"]) <= exact_ids}
    assert len(reference) - len(kept) < len(reference) // 100
    cent = Decimal("0.01")
    wrong = [c for c, r in kept.items()
             if (rows[c]["x"], rows[c]["t_x"], rows[c]["T"],
                 Decimal(rows[c]["mean_repeat_value"]).quantize(cent, ROUND_HALF_UP))
             != (r["frequency"], r["recency"], r["T"], Decimal(r["monetary_value"]).quantize(cent, ROUND_HALF_UP))]
    assert not wrong, [(c, rows[c]["x"], rows[c]["mean_repeat_value"], kept[c]) for c in wrong[:5]]


def exact_retail_money(path: Path, as_of: str) -> dict[str, tuple[Decimal, Decimal, Decimal | None]]:
    """Per customer, from the raw file with Decimal arithmetic alone (Quantity x UnitPrice, never rounded): the
    window's purchases and refunds (365 days to `as_of`, UTC days of the naive times: the default --timezone) and
    the mean repeat value (all-time purchases after the first purchase day, per repeat day; None without one)."""
    last = (date.fromisoformat(as_of) - date(1970, 1, 1)).days
    first = last - 365 + 1
    bought: dict[str, dict[int, Decimal]] = {}
    window: dict[str, list[Decimal]] = {}
    with gzip.open(path, "rt", newline="", encoding="utf-8") as f:
        for row in csv.DictReader(f):
            customer = row["CustomerID"].strip()
            if not customer:
                continue
            amount = Decimal(row["UnitPrice"]) * Decimal(row["Quantity"])
            day = parse_time_ms(row["InvoiceDate"]) // MS_PER_DAY
            sums = window.setdefault(customer, [Decimal(0), Decimal(0)])
            if amount >= 0:
                days = bought.setdefault(customer, {})
                days[day] = days.get(day, Decimal(0)) + amount
            if first <= day <= last:
                sums[0 if amount >= 0 else 1] += abs(amount)
    out: dict[str, tuple[Decimal, Decimal, Decimal | None]] = {}
    for customer, (purchases, refunds) in window.items():
        days = bought.get(customer, {})
        repeat = [days[d] for d in sorted(days)[1:]]
        out[customer] = (purchases, refunds, sum(repeat, Decimal(0)) / len(repeat) if repeat else None)
    return out


def test_online_retail_money_is_the_exact_decimal_sums(online_retail: tuple[Run, Path]) -> None:
    """Issue 14: unit prices with 3 decimals are summed exactly (1/10,000 units), not rounded to cents per line.
    Every customer's window purchases and refunds are the exact decimal sums, to the last digit, and the mean
    repeat value the exact mean to the 6 decimals the CSV shows. The file has 4 lines of 0.001 (a unit price of
    0.001 x 1): 15618's is on its first purchase day (its window spend is 776.851; its mean repeat value, of the
    later days, is 277.01 either way); 13405's is on a repeat day: its mean is 206.2005, which per-line cents
    made 206.20."""
    run, path = online_retail
    rows = table(run.out)
    exact = exact_retail_money(path, "2011-12-09")
    assert rows.keys() == exact.keys()
    with gzip.open(path, "rt", newline="", encoding="utf-8") as f:
        lines = Counter(r["CustomerID"].strip() for r in csv.DictReader(f))
    # A customer with more events than the core keeps ids of exactly goes to Bloom filters, whose false
    # positives can take a line for a redelivery (12748: one of 4,642): not a money question, left out here.
    heavy = {c for c, n in lines.items() if c and n > ScoringConfig().dedupe_exact_ids}
    assert len(heavy) == 7 and not heavy & {"13952", "15618", "16198", "13405"}, heavy
    for customer, (purchases, refunds, mean) in exact.items():
        if customer in heavy:
            continue
        row = rows[customer]
        assert (Decimal(row["monetary"]), Decimal(row["returns_amount"])) == (purchases, refunds), customer
        got = Decimal(row["mean_repeat_value"] or "0")
        assert abs(got - (mean or 0)) <= Decimal("0.0000005"), (customer, got, mean)
    with gzip.open(path, "rt", newline="", encoding="utf-8") as f:
        sub_cent = {r["CustomerID"].strip() for r in csv.DictReader(f)
                    if (Decimal(r["UnitPrice"]) * Decimal(r["Quantity"])) % Decimal("0.01") and r["CustomerID"].strip()}
    assert sub_cent == {"13952", "15618", "16198", "13405"}
    assert rows["15618"]["monetary"] == "776.851" and Decimal(rows["15618"]["mean_repeat_value"]) == Decimal("277.01")
    assert Decimal(rows["13405"]["mean_repeat_value"]) == exact["13405"][2] == Decimal("206.2005")
    assert exact["13405"][2] - mean_with_cents_per_line(path, "13405") == Decimal("0.0005")  # the reading before


def mean_with_cents_per_line(path: Path, customer: str) -> Decimal:
    """The mean repeat value of `customer` with each line rounded to cents first (what the core did before)."""
    days: dict[int, Decimal] = {}
    with gzip.open(path, "rt", newline="", encoding="utf-8") as f:
        for row in csv.DictReader(f):
            if row["CustomerID"].strip() == customer:
                amount = round(Decimal(row["UnitPrice"]) * Decimal(row["Quantity"]), 2)
                if amount >= 0:
                    day = parse_time_ms(row["InvoiceDate"]) // MS_PER_DAY
                    days[day] = days.get(day, Decimal(0)) + amount
    repeat = [days[d] for d in sorted(days)[1:]]
    return sum(repeat, Decimal(0)) / len(repeat)


# --- CDNOW -----------------------------------------------------------------------------------------

def lifetimes_mismatches(rows: dict[str, dict[str, str]]) -> list[str]:
    """Customers whose x, t_x, T (weeks, 2 decimals) and mean repeat value differ from lifetimes' summary."""
    with (CDNOW / "cdnow_customers_summary_with_transactions.csv").open() as f:
        reference = {int(r["ID"]): r for r in csv.DictReader(f)}
    ids = {line.split()[0]: int(line.split()[1]) for line in CDNOW_SAMPLE.read_text().splitlines()}
    wrong = []
    for customer, row in rows.items():
        ref = reference[ids[customer]]
        zbar = Decimal(row["mean_repeat_value"]).quantize(Decimal("0.01"), ROUND_HALF_UP)
        got = (row["x"], f"{int(row['t_x']) / 7:.2f}", f"{int(row['T']) / 7:.2f}", zbar)
        if got != (ref["x"], ref["t_x"], ref["T"], Decimal(ref["zbar"])):
            wrong.append(customer)
    return wrong


@pytest.fixture(scope="module")
def sample_run(defaults: Path) -> Run:
    return tierstream("replay", CDNOW_SAMPLE, "--as-of", "1997-09-30", *SAMPLE_LAYOUT, "--config", defaults)


def test_cdnow_sample_tiers_lift_and_lifetimes_columns(sample_run: Run) -> None:
    rows = assert_calibrated_tiers(sample_run)
    assert len(rows) == 2357 and lifetimes_mismatches(rows) == []


def test_cdnow_full_log_with_many_lapsed_customers(defaults: Path, tmp_path: Path) -> None:
    """At the end of the data most of the 23,570 customers bought nothing for a year: the shares hold among
    the active ones, and the lapsed are tiered low by the same thresholds."""
    runs = {jobs: tierstream("replay", CDNOW / "CDNOW_master.txt.gz", "--as-of", "1998-06-30", *MASTER_LAYOUT,
                             "--config", defaults, "--jobs", jobs) for jobs in ("1", "2")}
    rows = assert_calibrated_tiers(runs["1"])
    lapsed = Counter(row["tier"] for row in rows.values() if row["frequency"] == "0")
    assert sum(lapsed.values()) > len(rows) / 2 and set(lapsed) == {"C"}
    # two processes calibrate from the figures of both parts: the same calibration, rows and report
    assert runs["2"].out == runs["1"].out
    assert runs["2"].err.splitlines()[:-1] == runs["1"].err.splitlines()[:-1]


# --- calibrate, --calibration, --diff, --exact ------------------------------------------------------

def calibrate(as_of: str, out: Path, defaults: Path, *more: str | Path) -> Run:
    return tierstream("calibrate", CDNOW_SAMPLE, "--as-of", as_of, *SAMPLE_LAYOUT, "--config", defaults,
                      "--out", out, *more)


def test_calibrate_writes_the_calibration_replay_makes_of_the_same_history(
        sample_run: Run, defaults: Path, tmp_path: Path) -> None:
    run = calibrate("1997-09-30", tmp_path / "cal.json", defaults)
    assert run.code == 0, run.err
    cal = calibration_from_json((tmp_path / "cal.json").read_text())
    assert f"calibration {cal.version}" in sample_run.err  # replay's own calibration: the same artefact
    assert (cal.customers, cal.active, cal.as_of) == (2357, 2357, date(1997, 9, 30))
    assert run.err.startswith(f"calibration {cal.version} -> {tmp_path / 'cal.json'}: 2,357 active customers")
    given = tierstream("replay", CDNOW_SAMPLE, "--as-of", "1997-09-30", *SAMPLE_LAYOUT, "--config", defaults,
                       "--calibration", tmp_path / "cal.json")
    assert given.code == 0 and given.out == sample_run.out
    assert f"calibration {cal.version} (as of 1997-09-30, 2,357 active customers of 2,357)" in given.err


def test_diff_counts_the_moves_each_customer_makes(defaults: Path, tmp_path: Path) -> None:
    old, new = tmp_path / "old.json", tmp_path / "new.json"
    assert calibrate("1997-06-30", old, defaults).code == 0
    run = calibrate("1998-03-31", new, defaults, "--diff", old)
    assert run.code == 0, run.err
    lines = run.err.splitlines()
    start = next(i for i, line in enumerate(lines) if line.startswith("customers per tier move"))
    header, *body = lines[start + 1:start + 6]
    assert header.split()[-5:] == ["AAA", "A", "B", "C", "total"]
    printed = {(row.split()[0], to): int(n.replace(",", "")) for row in body
               for to, n in zip(SHARES, row.split()[1:5], strict=True)}
    # the same customers replayed as of the new day under each calibration, joined by customer
    under = {}
    for name, path in (("old", old), ("new", new)):
        replayed = tierstream("replay", CDNOW_SAMPLE, "--as-of", "1998-03-31", *SAMPLE_LAYOUT, "--config", defaults,
                              "--calibration", path)
        assert replayed.code == 0, replayed.err
        under[name] = table(replayed.out)
    joined = Counter((under["old"][c]["tier"], under["new"][c]["tier"]) for c in under["new"])
    assert printed == {(a, b): joined.get((a, b), 0) for a in SHARES for b in SHARES}
    moved = sum(n for (a, b), n in joined.items() if a != b)
    assert moved > 0 and f"moved: {moved:,} of 2,357 customers" in run.err


def test_exact_with_a_calibration_file_steps_like_the_stream(defaults: Path, tmp_path: Path) -> None:
    cal_path, decisions = tmp_path / "cal.json", tmp_path / "outputs.jsonl"
    assert calibrate("1997-09-30", cal_path, defaults).code == 0
    cal = calibration_from_json(cal_path.read_text())
    part = tmp_path / "part.txt"  # the calibration is the whole sample's; a third of its customers is stepped
    part.write_text("".join(CDNOW_SAMPLE.read_text().splitlines(keepends=True)[:2300]))
    run = tierstream("replay", part, "--as-of", "1997-12-31", *SAMPLE_LAYOUT, "--config", defaults,
                     "--exact", "--calibration", cal_path, "--decisions-out", decisions)
    assert run.code == 0, run.err
    config = parse_config({}).calibrated(cal)
    limit = end_of_day_ms(10_226)  # 1997-12-31
    layout = CsvLayout(delimiter="whitespace", columns=("customer_id", "id", "occurred_at", "quantity", "amount"))
    by_customer: dict[str, list] = {}
    for item in read_history(part, layout):
        assert isinstance(item, Row)
        if item.event.at_ms <= limit:
            by_customer.setdefault(item.customer_id, []).append(item.event)
    tiers, ids = {}, []
    for customer in sorted(by_customer):  # events, then the sweep's reviews, each as of its due day
        state = NEW_STATE
        for event in by_customer[customer]:
            result = step(state, event, event.at_ms, customer, config)
            ids += [d.id for d in result.decisions]
            state = result.state
        while state.review_day is not None and state.review_day <= 10_226:
            result = step(state, None, end_of_day_ms(state.review_day), customer, config)
            ids += [d.id for d in result.decisions]
            state = result.state
        final = step(state, None, limit, customer, config)  # the profile as of the day
        tiers[customer] = final.state.tier if final.evaluation is not None else state.tier
    assert {c: row["tier"] for c, row in table(run.out).items()} == tiers
    assert len(set(tiers.values())) == 4  # every tier, on the path
    docs = [json.loads(line) for line in decisions.read_text().splitlines()]
    assert [doc["id"] for doc in docs] == ids
    assert {doc["calibration_version"] for doc in docs} == {cal.version}  # stamped on every output


def test_batch_and_exact_calibrate_alike(defaults: Path) -> None:
    exact = tierstream("replay", CDNOW_SAMPLE, "--as-of", "1997-09-30", *SAMPLE_LAYOUT, "--config", defaults,
                       "--exact")
    batch = tierstream("replay", CDNOW_SAMPLE, "--as-of", "1997-09-30", *SAMPLE_LAYOUT, "--config", defaults)
    version = re.compile(r"calibrated from this history: .*; calibration (cal-[0-9a-f]{12})")
    found = [version.search(run.err) for run in (exact, batch)]
    assert all(found) and found[0][1] == found[1][1]  # type: ignore[index]


def test_fit_writes_a_calibration_beside_the_model(defaults: Path, tmp_path: Path) -> None:
    model = tmp_path / "model.json"
    run = tierstream("fit", CDNOW_SAMPLE, "--as-of", "1997-09-30", *SAMPLE_LAYOUT, "--config", defaults,
                     "--out", model)
    assert run.code == 0, run.err
    beside = calibration_from_json((tmp_path / "model.calibration.json").read_text())
    assert calibrate("1997-09-30", tmp_path / "cal.json", defaults).code == 0
    assert beside == calibration_from_json((tmp_path / "cal.json").read_text())
    assert f"calibration {beside.version} -> {tmp_path / 'model.calibration.json'}" in run.err


# --- bad calibration files and mismatches ----------------------------------------------------------

def write(path: Path, lines: list[str], header: str = "customer_id,occurred_at,amount") -> Path:
    path.write_text("\n".join([header, *lines]) + "\n", encoding="utf-8")
    return path


@pytest.fixture
def small(tmp_path: Path) -> Path:
    return write(tmp_path / "p.csv", [f"C{n},2024-06-{1 + n % 28:02d},{n * 7 % 50 + 1}" for n in range(40)])


def test_a_bad_calibration_file_is_one_line_and_exit_2(small: Path, defaults: Path, tmp_path: Path) -> None:
    assert tierstream("calibrate", small, "--as-of", "2024-06-30", "--config", defaults,
                      "--out", tmp_path / "cal.json").code == 0
    doc = json.loads((tmp_path / "cal.json").read_text())
    doc["thresholds"]["AAA"] = 99.0  # changed by hand: the content no longer matches its version
    bad = tmp_path / "bad.json"
    bad.write_text(json.dumps(doc))
    for path, words in ((bad, "version: "), (write(tmp_path / "x.json", ["{"]), "not valid JSON")):
        run = tierstream("replay", small, "--as-of", "2024-06-30", "--config", defaults, "--calibration", path)
        assert run.code == 2 and run.out == "" and run.err.count("\n") == 1, run.err
        assert run.err.startswith(f"tierstream: {path}: calibration: ") and words in run.err
    other = tmp_path / "window.yaml"
    other.write_text("scoring: {window_days: 180}\n")
    run = tierstream("replay", small, "--as-of", "2024-06-30", "--config", other,
                     "--calibration", tmp_path / "cal.json")
    assert run.code == 2 and "calibration: window_days: computed over 365 days" in run.err


def test_absolute_tiering_says_a_calibration_is_not_used(small: Path, defaults: Path, tmp_path: Path) -> None:
    assert tierstream("calibrate", small, "--as-of", "2024-06-30", "--config", defaults,
                      "--out", tmp_path / "cal.json").code == 0
    absolute = tmp_path / "absolute.yaml"
    absolute.write_text("scoring: {tiering: absolute}\n")
    run = tierstream("replay", small, "--as-of", "2024-06-30", "--config", absolute, "--calibration",
                     tmp_path / "cal.json")
    assert run.code == 0 and "not used: tiering is absolute" in run.err
    assert "tiering: absolute (the configured cut points and thresholds)" in run.err


def test_nothing_active_to_calibrate_from(defaults: Path, tmp_path: Path) -> None:
    old = write(tmp_path / "old.csv", ["A,2020-01-01,10", "B,2020-02-01,20"])
    run = tierstream("replay", old, "--as-of", "2024-06-30", "--config", defaults)
    assert run.code == 0 and "not calibrated: no active customer" in run.err
    assert len(table(run.out)) == 2
    refused = tierstream("calibrate", old, "--as-of", "2024-06-30", "--config", defaults, "--out", tmp_path / "c.json")
    assert refused.code == 1 and "cannot calibrate: calibration: no active customer" in refused.err
    assert not (tmp_path / "c.json").exists()


# --- real-log hygiene: time zones, rows without a customer ----------------------------------------

def test_naive_times_are_local_in_the_timezone_given(defaults: Path, tmp_path: Path) -> None:
    # 00:30 on 1 July in London (BST, UTC+1) is 23:30 UTC on 30 June: inside an as-of of 30 June
    path = write(tmp_path / "uk.csv", ["A,2024-06-29 12:00:00,10", "A,2024-07-01 00:30:00,5", "A,2024-07-01,7"])
    utc = table(tierstream("replay", path, "--as-of", "2024-06-30", "--config", defaults).out)["A"]
    london = table(tierstream("replay", path, "--as-of", "2024-06-30", "--config", defaults,
                              "--timezone", "Europe/London").out)["A"]
    assert (utc["frequency"], utc["monetary"]) == ("1", "10.00")
    assert (london["frequency"], london["monetary"]) == ("2", "15.00")  # a date alone stays its calendar day
    assert parse_time_ms("2024-01-15 09:00:00", None, time_zone("Europe/London")) == parse_time_ms(
        "2024-01-15T09:00:00Z")  # GMT in winter
    assert parse_time_ms("2024-07-01", None, time_zone("Asia/Tokyo")) == 19_905 * MS_PER_DAY


def test_an_unknown_timezone_is_a_usage_error(defaults: Path, tmp_path: Path) -> None:
    path = write(tmp_path / "p.csv", ["A,2024-06-01,10"])
    run = tierstream("replay", path, "--as-of", "2024-06-30", "--timezone", "Mars/Olympus", "--config", defaults)
    assert run.code == 2 and "--timezone" in run.err and "Mars/Olympus" in run.err and run.err.count("\n") == 1


def test_rows_without_a_customer_are_one_line_per_file_order(defaults: Path, tmp_path: Path) -> None:
    first = write(tmp_path / "a.csv", ["A,2024-06-01,10", ",2024-06-02,3", "B,2024-06-01,x", ",2024-06-03,4"])
    second = write(tmp_path / "b.csv", [",2024-06-04,1"] * 6)
    run = tierstream("replay", first, second, "--as-of", "2024-06-30", "--config", defaults)
    assert run.code == 0
    assert (f"8 rows skipped: customer id is empty (first at {first} line 3, {first} line 5, {second} line 2, "
            f"{second} line 3, {second} line 4, ...)") in run.err
    assert f"{first}, line 4: amount is not a number (skipped)" in run.err  # other reasons: one by one
    one = tierstream("replay", first, "--as-of", "2024-06-30", "--config", defaults)
    assert "2 rows skipped: customer id is empty (lines 3, 5)\n" in one.err


def test_strict_stops_a_self_calibrating_replay_in_any_number_of_processes(defaults: Path, tmp_path: Path) -> None:
    rows = [f"C{n % 97},2024-06-{1 + n % 28:02d},{n}.50" for n in range(3000)]
    rows[2100] = "C5,2024-06-31,1.00"  # the first bad row, of some customer's part
    rows[2500] = ",2024-06-01,1.00"    # a later one without a customer: part 0's
    path = write(tmp_path / "log.csv", rows)
    errors = {jobs: tierstream("replay", path, "--as-of", "2024-06-30", "--strict", "--jobs", jobs, "--config",
                               defaults) for jobs in ("1", "2", "3")}
    assert {run.code for run in errors.values()} == {1}
    assert {run.err for run in errors.values()} == {errors["1"].err}
    assert errors["1"].err.startswith("tierstream: --strict: line 2102: ")
    fine = {jobs: tierstream("replay", path, "--as-of", "2024-06-30", "--jobs", jobs, "--config", defaults)
            for jobs in ("1", "3")}
    assert fine["1"].out == fine["3"].out and "calibrated from this history: 97 active customers" in fine["3"].err
