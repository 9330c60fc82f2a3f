"""The columnar batch replay (`streams.offline.batch`) against the per-row replay, its reference.

Over random logs (late, duplicate, out-of-window and negative-time events, returns, complaints, currencies
with and without a rate, reused ids, bad rows of every kind, quoted fields, CRLF, blank lines, several
files, gzip) both write the same bytes, report the same bad rows in the same order and count the same.
What the columnar reader does not convert itself it reads row by row (`per_row`); what the columnar fold
does not reproduce (ids beyond the exact memory) it hands to the core's fold: both are exercised here.
"""

from __future__ import annotations

import dataclasses
import gzip
import io
import json
from pathlib import Path

import polars as pl
import pytest
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from scoring.config import ScoringConfig
from scoring.events import Kind
from scoring.state import CustomerState
from scoring.valuemodel.summary import purchase_log
from streams.cli.base import parse_day
from streams.offline.batch import batch_population, batch_purchase_log, batch_purchases, replay_columnar
from streams.offline.columnar import read_blocks, read_columns
from streams.offline.history import BadRow, CsvLayout, Inputs
from streams.offline.parallel import is_columnar, replay_inputs
from streams.offline.purchases import read_purchases
from streams.offline.replay import ReplayStats, population
from streams.offline.spill import MAX_PARTS, parts_for

AS_OF = parse_day("2024-06-30")
PROPS = settings(max_examples=25, deadline=None, suppress_health_check=list(HealthCheck))
CUSTOMERS = ["c1", "c2", " c3 ", "c4", "", "  ", "é5", "c\udcff"]
TIMES = ["2024-06-01", "2024-06-30T23:59:59", "2024-05-01T10:00:00+02:00", "20240105", "2023-01-05",
         "2024-07-01", "1969-12-31", "bad", "2024-02-30", " 2024-03-03 ", "2024-06-15 08:00:00"]
AMOUNTS = ["12.5", "-3.00", "0", "abc", "1e3", " 7", "12.345", "9999999999", "-0.5", "5.", "+4", "100"]
QUANTITIES = ["1", "2", "-1", "0.5", "x", "3"]
KINDS = ["purchase", "return", "Complaint", "enquiry", "refund", "bogus"]
CURRENCIES = ["", "USD", "EUR", "GBP"]
SEVERITIES = ["", "1", "5", "9"]


def config(exact_ids: int, tiering: str) -> ScoringConfig:
    return ScoringConfig(fx_rates={"EUR": 1.0837}, dedupe_exact_ids=exact_ids, tiering=tiering)


def outcome(out: io.StringIO, bad: list[BadRow], stats: ReplayStats) -> tuple[object, ...]:
    """What a replay wrote, reported and counted (and the calibration it scored with)."""
    return (out.getvalue(), bad, stats.rows, stats.bad, stats.after_as_of, stats.duplicates, stats.rejected,
            stats.customers, dict(stats.tiers), stats.grouped, stats.calibrated_from, stats.calibration)


def both(inputs: Inputs, scoring: ScoringConfig) -> tuple[tuple[object, ...], tuple[object, ...]]:
    """(columnar, per row): output text, bad rows reported, and every count. The columnar replay also runs
    spilled to disk in parts of 64 bytes of text read in blocks of 40 (`streams.offline.spill`): the same."""
    runs = []
    for jobs in (None, 1):  # no --jobs: columnar; --jobs 1: the per-row reader in this process
        out, bad = io.StringIO(), list[BadRow]()
        stats = replay_inputs(inputs, AS_OF, scoring, out, on_bad=bad.append, jobs=jobs)
        runs.append(outcome(out, bad, stats))
    out, bad = io.StringIO(), list[BadRow]()
    stats = replay_columnar(inputs, AS_OF, scoring, out, on_bad=bad.append, chunk_bytes=64, block_bytes=40)
    assert outcome(out, bad, stats) == runs[0]
    return runs[0], runs[1]


@st.composite
def plain_line(draw: st.DrawFn, quantity: bool, delimiter: str) -> str:
    fields = [draw(st.sampled_from(CUSTOMERS)), draw(st.sampled_from(TIMES)), draw(st.sampled_from(AMOUNTS))]
    if quantity:
        fields.append(draw(st.sampled_from(QUANTITIES)))
    shape = draw(st.sampled_from(["plain"] * 6 + ["short", "blank", "quoted", "extra"]))
    if delimiter == "whitespace":
        fields = [f.strip() or "x" for f in fields]
        joined = draw(st.sampled_from([" ", "\t", "  "])).join(fields)
        return {"short": fields[0], "blank": "   ", "quoted": joined, "extra": joined + " more"}.get(shape, joined)
    if shape == "short":
        return delimiter.join(fields[:2])
    if shape == "blank":
        return ""
    if shape == "quoted":
        return delimiter.join(f'"{f}"' for f in fields)
    return delimiter.join(fields) + (delimiter + "extra" if shape == "extra" else "")


@st.composite
def plain_file(draw: st.DrawFn, quantity: bool, delimiter: str) -> str:
    lines = draw(st.lists(plain_line(quantity, delimiter), min_size=0, max_size=25))
    end = draw(st.sampled_from(["\n", "\r\n"]))
    return end.join(lines) + draw(st.sampled_from(["", end]))


def write(path: Path, text: str) -> Path:
    data = text.encode("utf-8", "surrogateescape")
    if path.suffix == ".gz":
        path.write_bytes(gzip.compress(data))
    else:
        path.write_bytes(data)
    return path


@PROPS
@given(files=st.lists(st.booleans(), min_size=1, max_size=3), headed=st.booleans(), data=st.data(),
       quantity=st.booleans(), delimiter=st.sampled_from([",", ";", "whitespace"]),
       tiering=st.sampled_from(["calibrated", "absolute"]))
def test_plain_logs_replay_alike(
    tmp_path_factory: pytest.TempPathFactory, files: list[bool], headed: bool, data: st.DataObject,
    quantity: bool, delimiter: str, tiering: str,
) -> None:
    folder = tmp_path_factory.mktemp("plain")
    columns = ["customer_id", "occurred_at", "amount"] + (["quantity"] if quantity else [])
    sep = " " if delimiter == "whitespace" else delimiter
    paths = []
    for n, gz in enumerate(files):
        body = data.draw(plain_file(quantity, delimiter))
        text = (sep.join(columns) + "\n" + body) if headed else body
        paths.append(write(folder / f"h{n}.csv{'.gz' if gz else ''}", text))
    layout = CsvLayout(quantity="quantity" if quantity else None, delimiter=delimiter,
                       columns=() if headed else tuple(columns))
    columnar, per_row = both(Inputs(tuple(paths), layout), config(2048, tiering))
    assert columnar == per_row


@st.composite
def general_line(draw: st.DrawFn) -> str:
    return ",".join([
        draw(st.sampled_from(CUSTOMERS[:5])), draw(st.sampled_from(TIMES)), draw(st.sampled_from(AMOUNTS)),
        draw(st.sampled_from(KINDS)), draw(st.sampled_from(["e1", "e2", "e3", "e4", "", "e1 "])),
        draw(st.sampled_from(CURRENCIES)), draw(st.sampled_from(SEVERITIES)),
    ])


@PROPS
@given(lines=st.lists(general_line(), max_size=40), exact_ids=st.sampled_from([0, 1, 2, 2048]),
       tiering=st.sampled_from(["calibrated", "absolute"]), twice=st.booleans())
def test_typed_logs_with_ids_and_currencies_replay_alike(
    tmp_path_factory: pytest.TempPathFactory, lines: list[str], exact_ids: int, tiering: str, twice: bool,
) -> None:
    path = write(tmp_path_factory.mktemp("typed") / "t.csv",
                 "\n".join(["customer_id,occurred_at,amount,type,event_id,currency,severity", *lines]))
    layout = CsvLayout(type="type", event_id="event_id", currency="currency", severity="severity")
    inputs = Inputs((path, path) if twice else (path,), layout)  # the same file twice: every id again
    columnar, per_row = both(inputs, config(exact_ids, tiering))
    assert columnar == per_row


@st.composite
def event_line(draw: st.DrawFn) -> str:
    kind = draw(st.sampled_from(["purchase", "return", "complaint", "enquiry"]))
    event: dict[str, object] = {
        "type": kind, "event_id": draw(st.sampled_from(["e1", "e2", "e3", "e4", "e5"])),
        "customer_id": draw(st.sampled_from(["c1", "c2", "c3"])),
        "occurred_at": draw(st.sampled_from(["2024-06-01T10:00:00Z", "2023-01-01T00:00:00Z",
                                              "2024-07-02T00:00:00Z", "2024-06-30T22:00:00-05:00"])),
    }
    if kind in ("purchase", "return"):
        event["amount"] = draw(st.sampled_from(["10.00", "3.5", 7]))
        event["currency"] = draw(st.sampled_from(["USD", "EUR", "GBP"]))
    if kind == "purchase":
        event["order_id"] = "o"
    if kind == "return":
        event["order_id"] = "o"
    if kind == "complaint":
        event["severity"] = draw(st.sampled_from([1, 3, 5]))
    if kind == "enquiry":
        event["topic"] = "t"
    return draw(st.sampled_from([json.dumps(event)] * 8 + ["{not json", json.dumps({**event, "x": 1})]))


@PROPS
@given(lines=st.lists(event_line(), max_size=30), exact_ids=st.sampled_from([1, 2048]))
def test_jsonl_events_replay_alike(tmp_path_factory: pytest.TempPathFactory, lines: list[str], exact_ids: int) -> None:
    path = write(tmp_path_factory.mktemp("jsonl") / "e.jsonl", "\n".join(lines) + "\n")
    columnar, per_row = both(Inputs((path,), CsvLayout()), config(exact_ids, "calibrated"))
    assert columnar == per_row


def unremembered(state: CustomerState) -> tuple[object, ...]:
    """A state without its id memory (which the columnar fold leaves empty), buckets in their order."""
    return (list(state.buckets.items()), *state._replace(seen=(), filters=(), buckets={}))


@st.composite
def mostly_good_line(draw: st.DrawFn) -> str:
    """A typed row that is mostly readable: in-window days in any order, ids that repeat now and then."""
    day = draw(st.sampled_from(["2024-06-01", "2024-05-01", "2024-06-30T10:00:00", "2023-03-01", "2024-01-15"]))
    return ",".join([
        draw(st.sampled_from(["c1", "c2", "c3"])), day,
        draw(st.sampled_from(["12.5", "-3", "0", "7.25", "0.35", "0.41"])),
        draw(st.sampled_from(["purchase", "purchase", "return", "complaint", "enquiry"])),
        draw(st.sampled_from(["", "", "", "e1", "e2"])), draw(st.sampled_from(["", "USD", "EUR", "GBP"])),
        draw(st.sampled_from(["", "2", "5"])),
    ])


@PROPS
@given(lines=st.lists(st.one_of(mostly_good_line(), general_line()), max_size=40),
       exact_ids=st.sampled_from([1, 2048]))
@example(lines=["c1,2024-06-01,5,purchase,,,", "c1,2024-05-01,3,purchase,,,"], exact_ids=2048)  # days out of order
def test_columnar_states_are_the_folds(
    tmp_path_factory: pytest.TempPathFactory, lines: list[str], exact_ids: int,
) -> None:
    path = write(tmp_path_factory.mktemp("states") / "s.csv",
                 "\n".join(["customer_id,occurred_at,amount,type,event_id,currency,severity", *lines]))
    inputs = Inputs((path,), CsvLayout(type="type", event_id="event_id", currency="currency", severity="severity"))
    mine, theirs = ReplayStats(), ReplayStats()
    columnar = batch_population(inputs, AS_OF, config(exact_ids, "calibrated"), mine)
    per_row = population(inputs.rows(), AS_OF, config(exact_ids, "calibrated"), theirs)
    assert list(columnar) == list(per_row)
    assert [unremembered(s) for s in columnar.values()] == [unremembered(s) for s in per_row.values()]
    assert (mine.rows, mine.bad, mine.rejected, mine.duplicates) == (
        theirs.rows, theirs.bad, theirs.rejected, theirs.duplicates)


# --- which inputs are read row by row, explicitly -----------------------------------------------------


@pytest.mark.parametrize(("name", "text", "layout"), [
    ("e.jsonl", '{"type": "enquiry"}\n', CsvLayout()),
    ("t.csv", "customer_id,occurred_at,amount,type\nc1,2024-01-01,1,purchase\n", CsvLayout(type="type")),
    ("cr.csv", "customer_id,occurred_at,amount\rc1,2024-01-01,1\r", CsvLayout()),
    ("span.csv", 'customer_id,occurred_at,amount\n"c\n1",2024-01-01,1\n', CsvLayout()),
    ("mid.csv", 'customer_id,occurred_at,amount\nc"1,2024-01-01,1\n', CsvLayout()),
    ("latin.csv", "customer_id,occurred_at,amount\nc\xe9,2024-01-01,1\n", CsvLayout()),
    ("broken.csv.gz", "", CsvLayout()),
])
def test_inputs_the_vectorised_reader_leaves_to_the_row_reader(
    tmp_path: Path, name: str, text: str, layout: CsvLayout,
) -> None:
    path = tmp_path / name
    if name == "broken.csv.gz":
        rows = "".join(f"c{n},2024-01-{n % 28 + 1:02},{n * 7 % 1000}\n" for n in range(600))
        whole = gzip.compress(("customer_id,occurred_at,amount\n" + rows).encode())
        path.write_bytes(whole[:len(whole) // 2])  # cut: rows, then a bad row saying the rest is lost
    elif name == "latin.csv":
        path.write_bytes(text.encode("latin-1"))
    else:
        path.write_text(text, newline="")
    read = read_columns(Inputs((path,), layout))
    assert read.per_row == [0]
    columnar, per_row = both(Inputs((path,), layout), config(2048, "calibrated"))
    assert columnar == per_row


def test_plain_csv_is_read_vectorised_with_quoted_rows_converted_row_by_row(tmp_path: Path) -> None:
    path = write(tmp_path / "p.csv", 'customer_id,occurred_at,amount\nc1,2024-01-01,1.5\n"c,2",2024-01-02,"2"\n'
                                     ",2024-01-03,1\n")
    read = read_columns(Inputs((path,), CsvLayout()))
    assert read.per_row == []
    assert read.events.get_column("customer").to_list() == ["c1", "c,2"]
    assert read.events.get_column("amount_e4").to_list() == [15_000, 20_000]  # 1/10,000 units
    assert read.bad == [BadRow(4, "customer id is empty", ",2024-01-03,1", str(path))]


def test_strict_exact_and_jobs_replay_row_by_row() -> None:
    assert is_columnar(exact=False, strict=False, jobs=None)
    assert not is_columnar(exact=False, strict=True, jobs=None)
    assert not is_columnar(exact=True, strict=False, jobs=None)
    assert not is_columnar(exact=False, strict=False, jobs=2)


@PROPS
@given(lines=st.lists(st.one_of(mostly_good_line(), general_line()), max_size=40), twice=st.booleans(),
       until=st.sampled_from([None, AS_OF, AS_OF - 40]))
def test_purchases_for_fit_read_alike(
    tmp_path_factory: pytest.TempPathFactory, lines: list[str], twice: bool, until: int | None,
) -> None:
    path = write(tmp_path_factory.mktemp("fit") / "f.csv",
                 "\n".join(["customer_id,occurred_at,amount,type,event_id,currency,severity", *lines]))
    layout = CsvLayout(type="type", event_id="event_id", currency="currency", severity="severity")
    paths = [path, path] if twice else [path]
    assert batch_purchases(paths, layout, until, config(2048, "calibrated")) == read_purchases(
        paths, layout, until, config(2048, "calibrated"))
    assert_same_purchase_log(paths, layout, until)


def assert_same_purchase_log(paths: list[Path], layout: CsvLayout, until: int | None) -> None:
    """`batch_purchase_log` (what `fit` fits) is the purchase log of `batch_purchases`' histories, bit for bit,
    with the same counts."""
    read = batch_purchases(paths, layout, until, config(2048, "calibrated"))
    counts, log = batch_purchase_log(paths, layout, until, config(2048, "calibrated"))
    want = purchase_log(list(read.histories.values()))
    assert counts == dataclasses.replace(read, histories={})
    assert log.n_customers == want.n_customers
    for name in ("customer", "day", "amount"):
        got, expected = getattr(log, name), getattr(want, name)
        assert got.dtype == expected.dtype and got.tobytes() == expected.tobytes(), name


def test_purchases_for_fit_of_a_plain_log_read_alike(tmp_path: Path) -> None:
    path = write(tmp_path / "p.csv", "customer_id,occurred_at,amount\nc2,2024-06-01,3.10\nc1,2024-05-01,-2\n"
                                     "c2,2024-04-01,7\nc1,2024-05-02,1\n,2024-01-01,1\nc3,bad,1\nc3,2024-06-02,0.35\n"
                                     "c3,2024-06-03,0.41\n")  # 35 / 100 is not 35 * 0.01 (one ulp)
    assert batch_purchases([path], CsvLayout(), AS_OF) == read_purchases([path], CsvLayout(), AS_OF)
    assert list(batch_purchases([path], CsvLayout()).histories) == ["c2", "c1", "c3"]
    assert_same_purchase_log([path], CsvLayout(), AS_OF)


def test_amounts_with_up_to_4_decimals_are_exact_and_more_are_a_bad_row(tmp_path: Path) -> None:
    """The vectorised amount parsing keeps 1/10,000 units exactly (0.001, 1.2345); 5 decimals go to the per-row
    reader, which refuses them with the reason (never rounded)."""
    path = write(tmp_path / "p.csv", "customer_id,occurred_at,amount\nc1,2024-01-01,0.001\nc1,2024-01-01,-1.2345\n"
                                     "c1,2024-01-02,0.12345\n")
    read = read_columns(Inputs((path,), CsvLayout()))
    assert read.events.get_column("amount_e4").to_list() == [10, 12_345]
    assert read.events.get_column("kind").to_list() == [int(Kind.PURCHASE), int(Kind.RETURN)]
    assert [(b.line, b.reason) for b in read.bad] == [(4, "amount 0.12345 has more than 4 decimals")]


@PROPS
@given(data=st.data(), quantity=st.booleans(), delimiter=st.sampled_from([",", ";", "whitespace"]),
       gz=st.booleans(), block=st.sampled_from([1, 7, 40, 4096]), headed=st.booleans())
def test_blocks_read_what_the_whole_file_reads(
    tmp_path_factory: pytest.TempPathFactory, data: st.DataObject, quantity: bool, delimiter: str, gz: bool,
    block: int, headed: bool,
) -> None:
    columns = ["customer_id", "occurred_at", "amount"] + (["quantity"] if quantity else [])
    body = data.draw(plain_file(quantity, delimiter))
    sep = " " if delimiter == "whitespace" else delimiter
    text = (sep.join(columns) + "\n" + body) if headed else body
    path = write(tmp_path_factory.mktemp("blocks") / f"b.csv{'.gz' if gz else ''}", text)
    inputs = Inputs((path,), CsvLayout(quantity="quantity" if quantity else None, delimiter=delimiter,
                                       columns=() if headed else tuple(columns)))
    whole = read_columns(inputs)
    pieces = list(read_blocks(inputs, block))
    events = [p.events for p in pieces]
    assert pl.concat([whole.events.clear(), *events]).equals(whole.events)
    assert [row for p in pieces for row in p.bad] == whole.bad
    assert sorted({src for p in pieces for src in p.per_row}) == whole.per_row


@PROPS
@given(data=st.data(), quantity=st.booleans(), delimiter=st.sampled_from([",", ";", "\t"]), gz=st.booleans(),
       headed=st.booleans(), short_first=st.booleans())
def test_the_csv_parser_splits_lines_as_the_split_does(
    tmp_path_factory: pytest.TempPathFactory, data: st.DataObject, quantity: bool, delimiter: str, gz: bool,
    headed: bool, short_first: bool,
) -> None:
    """A file without quotes is split by Polars' CSV parser (`columnar._parsed`): the same events and bad rows
    as the string split it stands for (short, blank and extra-field lines, CRLF, with and without a last
    newline; a first line with too few fields, as the parser takes their number from it, falls back to the
    split)."""
    from streams.offline import columnar

    columns = ["customer_id", "occurred_at", "amount"] + (["quantity"] if quantity else [])
    lines = data.draw(st.lists(plain_line(quantity, delimiter), min_size=1, max_size=25).filter(
        lambda ls: not any('"' in line for line in ls)))
    if short_first:
        lines.insert(0, "c9")
    end = data.draw(st.sampled_from(["\n", "\r\n"]))
    body = end.join(lines) + data.draw(st.sampled_from(["", end]))
    text = (delimiter.join(columns) + "\n" + body) if headed else body
    path = write(tmp_path_factory.mktemp("parser") / f"p.csv{'.gz' if gz else ''}", text)
    inputs = Inputs((path,), CsvLayout(quantity="quantity" if quantity else None, delimiter=delimiter,
                                       columns=() if headed else tuple(columns)))
    taken: list[bool] = []
    real = columnar._parsed

    def spy(*args: object) -> object:
        answer = real(*args)  # type: ignore[arg-type]
        taken.append(answer is not None)
        return answer

    with pytest.MonkeyPatch.context() as patch:  # undone after each example (a fixture would last them all)
        patch.setattr(columnar, "_parsed", spy)
        parsed = read_columns(inputs)
        patch.setattr(columnar, "_parsed", lambda *args: None)
        split = read_columns(inputs)
    assert parsed.events.equals(split.events)
    assert parsed.bad == split.bad and parsed.per_row == split.per_row
    if not split.per_row and not (headed and not body):  # read in columns, with a body to parse
        assert taken == [lines[0].count(delimiter) >= len(columns) - 1]  # the parser counts the first line's


def test_a_layout_with_categories_is_split_as_before(tmp_path: Path) -> None:
    """An empty category is a valid one: a short line must not be read as one with an empty category, so a
    layout with a category or item column is split by the string split (its missing fields null)."""
    path = write(tmp_path / "c.csv", "customer_id,occurred_at,amount,category\nc1,2024-01-01,1.5,toys\n"
                                     "c2,2024-01-02,2\nc3,2024-01-03,3,\n")
    read = read_columns(Inputs((path,), CsvLayout(category="category")))
    assert read.events.get_column("customer").to_list() == ["c1", "c3"]
    assert [(b.line, b.source) for b in read.bad] == [(3, str(path))]


def test_a_history_larger_than_a_part_is_spilled_in_parts(tmp_path: Path) -> None:
    rows = "".join(f"c{n % 7},2024-0{n % 6 + 1}-1{n % 9},{n}.5\n" for n in range(60))
    text = "customer_id,occurred_at,amount\n" + rows
    path = write(tmp_path / "p.csv", text)
    inputs = Inputs((path,), CsvLayout())
    assert parts_for(inputs, len(text)) == 1
    assert parts_for(inputs, 100) == -(-len(text) // 100)
    assert parts_for(inputs, 1) == MAX_PARTS
    columnar, per_row = both(inputs, config(2048, "calibrated"))  # spilled in parts of 64 bytes: the same
    assert columnar == per_row
    assert columnar[7] == 7  # customers


# --- a purchase's item and category columns ------------------------------------------------------------

ITEMS = ["A1", "", " b2 ", "tea", "\u00e9t\u00e9", "x" * 120, "c\udcff", "85123A"]


@st.composite
def item_line(draw: st.DrawFn, delimiter: str, columns: int) -> str:
    """A plain purchases row with `columns` item fields (item, then category) after the amount."""
    fields = [draw(st.sampled_from(CUSTOMERS[:4])), draw(st.sampled_from(TIMES[:6])),
              draw(st.sampled_from(["12.5", "-3.00", "0", "7", "abc"]))]
    fields += [draw(st.sampled_from(ITEMS)) for _ in range(columns)]
    shape = draw(st.sampled_from(["plain"] * 8 + ["short", "quoted"]))
    if delimiter == "whitespace":
        fields = [f.strip() or "x" for f in fields]
        return " ".join(fields[:3] if shape == "short" else fields)
    if shape == "short":
        return delimiter.join(fields[:3])
    if shape == "quoted":
        return delimiter.join(f'"{f}"' for f in fields)
    return delimiter.join(fields)


def events_per_row(inputs: Inputs) -> pl.DataFrame:
    """The per-row reader's events of a one-file history as the columnar reader's table (`EVENT_SCHEMA`)."""
    from streams.offline.columnar import _per_row

    return _per_row(0, inputs.rows(), [])


@PROPS
@given(data=st.data(), delimiter=st.sampled_from([",", ";", "whitespace"]), columns=st.sampled_from([1, 2]),
       category_only=st.booleans(), gz=st.booleans(), exact_ids=st.sampled_from([1, 2048]),
       kept=st.sampled_from([1, 2, 16]))
def test_items_of_a_plain_log_are_read_and_folded_alike(
    tmp_path_factory: pytest.TempPathFactory, data: st.DataObject, delimiter: str, columns: int,
    category_only: bool, gz: bool, exact_ids: int, kept: int,
) -> None:
    """--item-col/--category-col on a plain purchases log: the vectorised reader gives each purchase row the
    per-row reader's category (the category column's, else the item's; stripped; 100 characters; none for a
    refund), leaves odd text to it, and the columnar fold keeps the core's categories (`categories_kept`)."""
    names = ["customer_id", "occurred_at", "amount", "item", "category"][:3 + columns]
    sep = " " if delimiter == "whitespace" else delimiter
    lines = data.draw(st.lists(item_line(delimiter, columns), max_size=30))
    path = write(tmp_path_factory.mktemp("items") / f"i.csv{'.gz' if gz else ''}",
                 "\n".join([sep.join(names), *lines]) + "\n")
    item, category = ("item", "category") if columns == 2 else ("item", None)
    if category_only:
        item, category = (None, "item") if columns == 1 else (None, "category")
    inputs = Inputs((path,), CsvLayout(delimiter=delimiter, item=item, category=category))
    read = read_columns(inputs)
    assert read.events.equals(events_per_row(inputs))
    assert read.bad == [row for row in inputs.rows() if isinstance(row, BadRow)]
    scoring = config(exact_ids, "calibrated").model_copy(
        update={"affinity": ScoringConfig().affinity.model_copy(update={"categories_kept": kept,
                                                                        "excluded": ("tea",)})})
    mine, theirs = ReplayStats(), ReplayStats()
    columnar = batch_population(inputs, AS_OF, scoring, mine)
    per_row = population(inputs.rows(), AS_OF, scoring, theirs)
    assert [unremembered(s) for s in columnar.values()] == [unremembered(s) for s in per_row.values()]
    assert list(columnar) == list(per_row)
    columnar_run, per_row_run = both(inputs, scoring)
    assert columnar_run == per_row_run


@st.composite
def typed_item_line(draw: st.DrawFn) -> str:
    """A typed row with an event id and a category: ids repeat with the same or other categories."""
    return ",".join([
        draw(st.sampled_from(["c1", "c2"])), draw(st.sampled_from(["2024-06-01", "2024-05-01T10:00:00"])),
        draw(st.sampled_from(["12.5", "-3", "7"])), draw(st.sampled_from(["purchase", "purchase", "return"])),
        draw(st.sampled_from(["e1", "e2", "e3", ""])), draw(st.sampled_from(["tea", "cups", "", "plates"])),
    ])


@PROPS
@given(lines=st.lists(typed_item_line(), max_size=30), exact_ids=st.sampled_from([0, 1, 2048]))
@example(lines=["c1,2024-06-01,7,purchase,e1,tea", "c1,2024-06-01,7,purchase,e1,cups",  # other items: rejected
                "c1,2024-06-01,7,purchase,e1,tea", "c2,2024-06-01,7,purchase,e1,",  # same: a duplicate
                "c2,2024-06-01,7,purchase,e1,tea"], exact_ids=2048)  # first without: taken for a redelivery
def test_ids_reused_with_other_items_are_refused_alike(
    tmp_path_factory: pytest.TempPathFactory, lines: list[str], exact_ids: int,
) -> None:
    """The columnar dedupe compares a purchase's categories as `scoring.dedupe` hashes them (a set; a first
    event without any matches a later one with some: `Memory.admit`'s `bare` hash): the same states, rejected
    and duplicate counts as the core's fold."""
    path = write(tmp_path_factory.mktemp("reuse") / "r.csv",
                 "\n".join(["customer_id,occurred_at,amount,type,event_id,category", *lines]) + "\n")
    inputs = Inputs((path,), CsvLayout(type="type", event_id="event_id", category="category"))
    scoring = config(exact_ids, "calibrated") if exact_ids else ScoringConfig(dedupe_exact_ids=0)
    mine, theirs = ReplayStats(), ReplayStats()
    columnar = batch_population(inputs, AS_OF, scoring, mine)
    per_row = population(inputs.rows(), AS_OF, scoring, theirs)
    assert [unremembered(s) for s in columnar.values()] == [unremembered(s) for s in per_row.values()]
    assert (mine.rejected, mine.duplicates) == (theirs.rejected, theirs.duplicates)
    if lines[:2] == ["c1,2024-06-01,7,purchase,e1,tea", "c1,2024-06-01,7,purchase,e1,cups"] and len(lines) == 5:
        assert (mine.rejected, mine.duplicates) == (1, 2)
