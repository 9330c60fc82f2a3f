"""`streams.offline.history`: amounts, times, and CSV/JSONL histories read row by row into core events.

The reader never stops at a bad row: it yields a `BadRow` with the line number and
reason, and the caller counts it. A file that cannot be read as a whole (missing
column, empty file) raises `HistoryError`.
"""

from __future__ import annotations

import csv
import gzip
import time
from collections.abc import Callable
from datetime import UTC, date, datetime, timedelta, timezone
from decimal import Decimal
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from scoring.events import MS_PER_DAY, CoreEvent, Kind, to_ms
from streams.offline.history import (
    BadRow,
    CsvLayout,
    HistoryError,
    Row,
    checked_e4,
    parse_e4,
    parse_time_ms,
    read_history,
)

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures"
MIXED_JSONL = FIXTURES / "events" / "mixed.jsonl"
PROPS = settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
Read = Callable[..., list[Row | BadRow]]


def day_ms(iso: str) -> int:
    """Epoch ms of midnight UTC opening an ISO day."""
    return (date.fromisoformat(iso) - date(1970, 1, 1)).days * MS_PER_DAY


def utc_ms(*parts: int) -> int:
    return to_ms(datetime(*parts, tzinfo=UTC))


@pytest.fixture
def read(tmp_path: Path) -> Read:
    """Factory: write `text` (str or bytes) to a file and read it back with a layout."""

    def read_text(text: str | bytes, name: str = "history.csv", **layout: object) -> list[Row | BadRow]:
        path = tmp_path / name
        if isinstance(text, bytes):
            path.write_bytes(text)
        else:
            path.write_text(text, encoding="utf-8", newline="")
        return list(read_history(path, CsvLayout(**layout)))  # type: ignore[arg-type]

    return read_text


def rows_of(items: list[Row | BadRow]) -> list[Row]:
    return [item for item in items if isinstance(item, Row)]


def bad_of(items: list[Row | BadRow]) -> list[BadRow]:
    return [item for item in items if isinstance(item, BadRow)]


# --- parse_e4 --------------------------------------------------------------------------------------

def _outcome(convert: Callable[[str], int], text: str) -> tuple[str, object]:
    try:
        return "value", convert(text)
    except Exception as exc:  # the property compares whatever is raised
        return "raises", type(exc)


DECIMAL_LIKE = st.one_of(
    st.from_regex(r"\A-?\d{0,11}(\.\d{0,4})?\Z"),  # \d: any Unicode decimal digit, not only 0-9
    st.from_regex(r"\A\s*[-+]?[0-9_]{0,12}(\.[0-9]{0,5})?([eE][-+]?[0-9]{1,3})?\s*\Z"),
    st.decimals(allow_nan=True, allow_infinity=True).map(str),
    st.floats().map(str),
    st.integers(-(10**12), 10**12).map(str),
)


EDGE_AMOUNTS = [
    "-0", "-0.00", "1.", ".5", "-.5", "+5", "5.-5", "--5", "1.2.3", "999999999.99", "1000000000.00", "1000000000.01",
    "-999999999.995", "0123456789", "0.005", "0.015", "12.345", "1e3", "1_000", "NaN", "-Infinity", "sNaN", " 12 ",
    "\u0661\u0662.\u0665", "\uff11\uff12",  # Arabic-Indic and fullwidth digits
    "²", "", "-", ".", "-.",
]


@pytest.mark.parametrize("text", EDGE_AMOUNTS)
def test_parse_e4_edge_cases_agree_with_decimal(text: str) -> None:
    assert _outcome(parse_e4, text) == _outcome(lambda t: checked_e4(Decimal(t)), text)


@PROPS
@given(st.one_of(st.text(), DECIMAL_LIKE))
def test_parse_e4_is_checked_e4_of_the_decimal(text: str) -> None:
    assert _outcome(parse_e4, text) == _outcome(lambda t: checked_e4(Decimal(t)), text)


@pytest.mark.parametrize(("text", "units"), [
    ("0", 0), ("12", 120_000), ("12.5", 125_000), ("12.05", 120_500), ("-12.5", -125_000), ("-0.01", -100),
    ("0.005", 50), ("0.015", 150), ("12.345", 123_450), ("-0.0025", -25), ("0.0001", 1),  # exact to 4 decimals
    ("12.50000", 125_000), ("1e2", 1_000_000), ("999999999.99", 9_999_999_999_900),
    ("1000000000", 10_000_000_000_000),
])
def test_parse_e4_table(text: str, units: int) -> None:
    assert parse_e4(text) == units


@pytest.mark.parametrize(("text", "error"), [
    ("abc", ArithmeticError), ("", ArithmeticError), ("1,5", ArithmeticError),
    ("NaN", ValueError), ("Infinity", ValueError), ("1000000000.01", ValueError), ("-2e9", ValueError),
    ("0.00005", ValueError), ("12.34567", ValueError), ("-0.000001", ValueError),  # > 4 decimals: never rounded
])
def test_parse_e4_refuses(text: str, error: type[Exception]) -> None:
    with pytest.raises(error):
        parse_e4(text)


# --- parse_time_ms ---------------------------------------------------------------------------------

@pytest.mark.parametrize(("text", "date_format", "ms"), [
    ("2024-06-30", None, day_ms("2024-06-30")),
    ("20240630", None, day_ms("2024-06-30")),
    (" 2024-06-30 ", None, day_ms("2024-06-30")),
    ("19970101", None, day_ms("1997-01-01")),
    ("2024-06-30T12:34:56Z", None, utc_ms(2024, 6, 30, 12, 34, 56)),
    ("2024-06-30T12:34:56+00:00", None, utc_ms(2024, 6, 30, 12, 34, 56)),
    ("2024-06-30T12:34:56+02:00", None, utc_ms(2024, 6, 30, 10, 34, 56)),
    ("2024-06-30T01:00:00+02:00", None, utc_ms(2024, 6, 29, 23)),       # the UTC day is the day before
    ("2024-06-30T22:00:00-05:00", None, utc_ms(2024, 7, 1, 3)),          # ... or the day after
    ("2024-06-30T12:34:56", None, utc_ms(2024, 6, 30, 12, 34, 56)),      # naive: UTC
    ("2024-06-30 12:34:56", None, utc_ms(2024, 6, 30, 12, 34, 56)),
    ("2024-06-30T12:34:56.500", None, utc_ms(2024, 6, 30, 12, 34, 56) + 500),
    ("30/06/2024", "%d/%m/%Y", day_ms("2024-06-30")),
    ("06/30/24 13:05", "%m/%d/%y %H:%M", utc_ms(2024, 6, 30, 13, 5)),
    ("2024-06-30 12:00 +0200", "%Y-%m-%d %H:%M %z", utc_ms(2024, 6, 30, 10)),
    ("01062024", "%d%m%Y", day_ms("2024-06-01")),  # the format wins over the YYYYMMDD rule
    ("20240630", "%d%m%Y", None),
])
def test_parse_time_ms_table(text: str, date_format: str | None, ms: int | None) -> None:
    if ms is None:
        with pytest.raises(ValueError):
            parse_time_ms(text, date_format)
    else:
        assert parse_time_ms(text, date_format) == ms


@pytest.mark.parametrize("text", ["2024-02-30", "20240230", "2024-13-01", "20241301", "notadate", "", "30/06/2024",
                                  "2024/06/30", "2024-06-30T25:00:00"])
def test_parse_time_ms_refuses(text: str) -> None:
    with pytest.raises(ValueError):
        parse_time_ms(text)


def test_naive_times_are_utc_whatever_the_local_zone(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("TZ", "EST+05")  # a POSIX zone: needs no tz database
    time.tzset()
    try:
        assert parse_time_ms("2024-06-30T12:00:00") == utc_ms(2024, 6, 30, 12)
        assert parse_time_ms("30/06/2024 12:00", "%d/%m/%Y %H:%M") == utc_ms(2024, 6, 30, 12)
    finally:
        monkeypatch.undo()
        time.tzset()


OFFSETS = st.integers(-14 * 60, 14 * 60).map(lambda minutes: timezone(timedelta(minutes=minutes)))
WHOLE_SECONDS = st.datetimes(datetime(1971, 1, 1), datetime(2100, 1, 1), timezones=OFFSETS).map(
    lambda moment: moment.replace(microsecond=0))


@PROPS
@given(WHOLE_SECONDS)
def test_parse_time_ms_of_an_aware_datetime_is_its_epoch_ms(moment: datetime) -> None:
    assert parse_time_ms(moment.isoformat()) == to_ms(moment)
    assert parse_time_ms(moment.astimezone(UTC).replace(tzinfo=None).isoformat()) == to_ms(moment)  # naive: UTC


@PROPS
@given(st.dates(date(1900, 1, 1), date(2200, 12, 31)))
def test_parse_time_ms_yyyymmdd_and_iso_date_agree(day: date) -> None:
    expected = (day - date(1970, 1, 1)).days * MS_PER_DAY
    assert parse_time_ms(day.strftime("%Y%m%d")) == parse_time_ms(day.isoformat()) == expected


@pytest.mark.parametrize("text", ["2004-08-06T04:11:49.047+00:00", "1969-12-31T23:59:59.9995+00:00"])
def test_parse_time_ms_is_exact_to_the_millisecond(text: str) -> None:
    assert parse_time_ms(text) == to_ms(datetime.fromisoformat(text))


# --- CSV layouts -----------------------------------------------------------------------------------

def event(kind: Kind, at_ms: int, cents: int = 0, currency: str = "", severity: int = 0, event_id: str = "",
          e4: int | None = None) -> tuple:
    """An expected event (its amount in cents, or exactly in 1/10,000 units: `e4`); an empty id stands for the
    reader's own `<path>:<line>`."""
    return kind, event_id, at_ms, cents * 100 if e4 is None else e4, currency, severity


P, R, C, E = Kind.PURCHASE, Kind.RETURN, Kind.COMPLAINT, Kind.ENQUIRY
JUNE_1 = day_ms("2024-06-01")

LAYOUTS = {
    "purchases log": (
        "customer_id,occurred_at,amount\nA,2024-06-01,12.5\nB,2024-06-01T10:00:00Z,3\n", {},
        [(2, "A", event(P, JUNE_1, 1250)), (3, "B", event(P, JUNE_1 + 10 * 3_600_000, 300))]),
    "negative amount in a purchases log is a refund": (
        "customer_id,occurred_at,amount\nA,2024-06-01,-4.25\n", {},
        [(2, "A", event(R, JUNE_1, 425))]),
    "named columns, any order, extra columns ignored": (
        "note,when,cust,amt\nx,20240601, A ,7\n", {"customer": "cust", "time": "when", "amount": "amt"},
        [(2, "A", event(P, JUNE_1, 700))]),
    "header names are trimmed": (
        " customer_id , occurred_at , amount \nA,2024-06-01,1\n", {},
        [(2, "A", event(P, JUNE_1, 100))]),
    "quantity multiplies": (
        "customer_id,occurred_at,amount,qty\nA,2024-06-01,2.50,3\nA,2024-06-01,0.333,3\nA,2024-06-01,10,0.5\n"
        "A,2024-06-01,-2,2\n", {"quantity": "qty"},
        [(2, "A", event(P, JUNE_1, 750)), (3, "A", event(P, JUNE_1, e4=9_990)), (4, "A", event(P, JUNE_1, 500)),
         (5, "A", event(R, JUNE_1, 400))]),
    "currency column; blank is the base currency": (
        "customer_id,occurred_at,amount,cur\nA,2024-06-01,1,EUR\nA,2024-06-01,2, \n", {"currency": "cur"},
        [(2, "A", event(P, JUNE_1, 100, "EUR")), (3, "A", event(P, JUNE_1, 200))]),
    "id column; a blank id is a distinct event": (
        "customer_id,occurred_at,amount,eid\nA,2024-06-01,1,o-1\nA,2024-06-01,1,o-1\nA,2024-06-01,1,\n",
        {"event_id": "eid"},
        [(2, "A", event(P, JUNE_1, 100, event_id="o-1")), (3, "A", event(P, JUNE_1, 100, event_id="o-1")),
         (4, "A", event(P, JUNE_1, 100))]),
    "mixed log with types and severity": (
        "customer_id,occurred_at,amount,type,sev\nA,2024-06-01,9,purchase,\nA,2024-06-01,4,return,\n"
        "A,2024-06-01,,complaint,5\nA,2024-06-01,,complaint,\nA,2024-06-01,,enquiry,\nA,2024-06-01,-3,sale,\n",
        {"type": "type", "severity": "sev"},
        [(2, "A", event(P, JUNE_1, 900)), (3, "A", event(R, JUNE_1, 400)), (4, "A", event(C, JUNE_1, severity=5)),
         (5, "A", event(C, JUNE_1, severity=3)), (6, "A", event(E, JUNE_1)), (7, "A", event(R, JUNE_1, 300))]),
    "semicolon delimiter with quoted fields": (
        'customer_id;occurred_at;amount\n"A;1";"2024-06-01";"5"\n', {"delimiter": ";"},
        [(2, "A;1", event(P, JUNE_1, 500))]),
    "tab delimiter": (
        "customer_id\toccurred_at\tamount\nA\t2024-06-01\t5\n", {"delimiter": "\t"},
        [(2, "A", event(P, JUNE_1, 500))]),
    "whitespace delimiter with a header": (
        "customer_id occurred_at amount\n  A   2024-06-01\t 5 \n", {"delimiter": "whitespace"},
        [(2, "A", event(P, JUNE_1, 500))]),
    "no header: --columns, first line is line 1": (
        "A,2024-06-01,5\nB,2024-06-01,6\n", {"columns": ("customer_id", "occurred_at", "amount")},
        [(1, "A", event(P, JUNE_1, 500)), (2, "B", event(P, JUNE_1, 600))]),
    "CDNOW lines: whitespace, no header": (
        " 00004 0001 19970101  2   29.33\n 00004 0001 19970118  2   29.73\n",
        {"delimiter": "whitespace", "columns": ("customer_id", "id", "occurred_at", "quantity", "amount")},
        [(1, "00004", event(P, day_ms("1997-01-01"), 2933)), (2, "00004", event(P, day_ms("1997-01-18"), 2973))]),
    "date format": (
        "customer_id,occurred_at,amount\nA,01/06/2024,5\n", {"date_format": "%d/%m/%Y"},
        [(2, "A", event(P, JUNE_1, 500))]),
}


@pytest.mark.parametrize(("text", "layout", "expected"), LAYOUTS.values(), ids=LAYOUTS.keys())
def test_csv_layouts(text: str, layout: dict[str, object], expected: list, read: Read, tmp_path: Path) -> None:
    items = read(text, **layout)
    source = str(tmp_path / "history.csv")
    assert bad_of(items) == []
    want = [Row(line, customer, CoreEvent(kind, event_id or f"{source}:{line}", *rest))
            for line, customer, (kind, event_id, *rest) in expected]
    assert items == want


@pytest.mark.parametrize("delimiter", ["whitespace", " ", "\\s"])
def test_whitespace_delimiter_spellings(delimiter: str, read: Read) -> None:
    items = read("customer_id occurred_at   amount\n A\t 2024-06-01   5\n", delimiter=delimiter)
    assert [(i.line, i.customer_id, i.event.amount_e4) for i in rows_of(items)] == [(2, "A", 50_000)]
    assert bad_of(items) == []


ALIASES = [
    ("purchase", P), ("Purchase", P), (" PURCHASE ", P), ("purchasecompleted", P), ("order", P), ("sale", P),
    ("return", R), ("refund", R), ("orderreturned", R),
    ("complaint", C), ("complaintfiled", C),
    ("enquiry", E), ("inquiry", E), ("enquiryreceived", E),
]


@pytest.mark.parametrize(("alias", "kind"), ALIASES)
def test_type_column_aliases(alias: str, kind: Kind, read: Read) -> None:
    [row] = read(f"customer_id,occurred_at,amount,type\nA,2024-06-01,12.50,{alias}\n", type="type")
    assert isinstance(row, Row)
    assert row.event.kind is kind
    assert row.event.amount_e4 == (125_000 if kind in (P, R) else 0)  # complaints and enquiries carry no amount
    assert row.event.severity == (3 if kind is C else 0)                # default severity 3


PLAIN = "customer_id,occurred_at,amount\n"
MIXED = "customer_id,occurred_at,amount,type,sev,qty\n"
BAD_ROWS = {
    "too few columns": (PLAIN + "A,2024-06-01\n", {}, "too few columns"),
    "amount not a number": (PLAIN + "A,2024-06-01,abc\n", {}, "amount is not a number"),
    "amount NaN": (PLAIN + "A,2024-06-01,NaN\n", {}, "amount is not a finite number"),
    "amount infinite": (PLAIN + "A,2024-06-01,-Infinity\n", {}, "amount is not a finite number"),
    "amount too large": (PLAIN + "A,2024-06-01,2e9\n", {}, "amount is implausibly large (> 1e9)"),
    "bad date": (PLAIN + "A,notadate,5\n", {}, "Invalid isoformat string: 'notadate'"),
    "impossible YYYYMMDD": (PLAIN + "A,20240230,5\n", {}, "day is out of range for month"),
    "empty customer": (PLAIN + " ,2024-06-01,5\n", {}, "customer id is empty"),
    "only empty fields": (PLAIN + ",,\n", {}, "customer id is empty"),
    "unknown type": (MIXED + "A,2024-06-01,5,gift,,\n", {"type": "type"}, "unknown event type 'gift'"),
    "negative return": (MIXED + "A,2024-06-01,-5,return,,\n", {"type": "type"}, "amount must be >= 0"),
    "severity out of range": (MIXED + "A,2024-06-01,,complaint,9,\n", {"type": "type", "severity": "sev"},
                              "severity must be 1-5"),
    "quantity not a number": (MIXED + "A,2024-06-01,5,sale,,x\n", {"type": "type", "quantity": "qty"},
                              "amount is not a number"),
    "amount x quantity too large": (MIXED + "A,2024-06-01,1000000,sale,,2000\n", {"quantity": "qty"},
                                    "amount is implausibly large (> 1e9)"),
}


@pytest.mark.parametrize(("text", "layout", "reason"), BAD_ROWS.values(), ids=BAD_ROWS.keys())
def test_bad_rows_name_their_line_and_reason(text: str, layout: dict[str, object], reason: str, read: Read) -> None:
    header, bad = text.splitlines()
    good = "B,2024-06-01,1,purchase,,1" if header == MIXED.strip() else "B,2024-06-01,1"
    items = read("\n".join([header, good, bad, good]) + "\n", **layout)
    assert [(type(item), item.line) for item in items] == [(Row, 2), (BadRow, 3), (Row, 4)]  # and reading goes on
    assert items[1].reason == reason  # type: ignore[union-attr]


@pytest.mark.parametrize("line", ["A,2024-06-01", "A,2024-06-01,abc", "A,notadate,5", " ,2024-06-01,5",
                                  "A,2024-06-01,NaN", "A,20240230,5", "A,2024-06-01,1e10"])
def test_purchases_log_bad_rows_read_alike_with_a_type_column(line: str, read: Read) -> None:
    """The inlined purchases-log path and the general path give the same reasons."""
    plain = read(f"customer_id,occurred_at,amount\n{line}\n")
    typed = read(f"type,customer_id,occurred_at,amount\nsale,{line}\n", type="type")
    assert [(b.line, b.reason) for b in bad_of(plain)] == [(b.line, b.reason) for b in bad_of(typed)]
    assert len(bad_of(plain)) == 1


AMOUNT_TEXT = st.one_of(st.from_regex(r"\A-?[0-9]{0,10}(\.[0-9]{0,3})?\Z"),
                        st.sampled_from(["abc", "NaN", "1e3", "-Infinity", " 5", "2e9", "", "+1", "٣"]))
DATE_TEXT = st.dates(date(1960, 1, 1), date(2040, 12, 31)).flatmap(
    lambda d: st.sampled_from([d.isoformat(), d.strftime("%Y%m%d"), f"{d.isoformat()}T12:00:00+05:00"]))
CSV_ROWS = st.lists(st.tuples(st.sampled_from(["A", "B", " C ", ""]), DATE_TEXT, AMOUNT_TEXT), max_size=25)


@pytest.fixture(scope="module")
def scratch(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("history")


@PROPS
@given(rows=CSV_ROWS)
def test_purchases_log_fast_path_equals_the_general_path(rows: list[tuple[str, str, str]], scratch: Path) -> None:
    path = scratch / "log.csv"
    with path.open("w", newline="", encoding="utf-8") as f:
        writer = csv.writer(f)
        writer.writerow(["customer_id", "occurred_at", "amount", "kind"])
        writer.writerows([*row, "purchase"] for row in rows)
    plain = list(read_history(path, CsvLayout()))
    general = list(read_history(path, CsvLayout(type="kind")))
    assert [(type(i), i.line) for i in plain] == [(type(i), i.line) for i in general]
    assert [i for i in plain if isinstance(i, Row)] == [i for i in general if isinstance(i, Row)]
    assert [(i.line, i.reason) for i in bad_of(plain)] == [(i.line, i.reason) for i in bad_of(general)]


def test_blank_lines_are_skipped_not_bad(read: Read) -> None:
    items = read("customer_id,occurred_at,amount\n\nA,2024-06-01,1\n\n   \n\r\nB,2024-06-01,2\n\n")
    assert [(type(i), i.line) for i in items] == [(Row, 3), (Row, 7)]


def test_blank_lines_are_skipped_in_whitespace_files(read: Read) -> None:
    items = read("\n 00004 0001 19970101  2   29.33\n   \n\t\n 00005 0002 19970101  1   9.00\n",
                 delimiter="whitespace", columns=("customer_id", "id", "occurred_at", "quantity", "amount"))
    assert [(type(i), i.line) for i in items] == [(Row, 2), (Row, 5)]


def test_a_row_of_empty_fields_is_bad_not_blank(read: Read) -> None:
    items = read("customer_id,occurred_at,amount\n,,\n")
    assert [(type(i), i.line) for i in items] == [(BadRow, 2)]


@pytest.mark.parametrize(("text", "layout", "message"), [
    ("customer_id,occurred_at,amount\n", {"customer": "cust"},
     "no column 'cust'; the columns are: customer_id, occurred_at, amount"),
    ("customer_id,occurred_at,amount\n", {"time": "ts"}, "no column 'ts'"),
    ("customer_id,occurred_at,amount\n", {"amount": "value"}, "no column 'value'"),
    ("customer_id,occurred_at,amount\n", {"type": "kind"}, "no column 'kind'"),
    ("customer_id,occurred_at,amount\n", {"event_id": "eid"}, "no column 'eid'"),
    ("customer_id,occurred_at,amount\n", {"currency": "cur"}, "no column 'cur'"),
    ("customer_id,occurred_at,amount\n", {"quantity": "qty"}, "no column 'qty'"),
    ("customer_id,occurred_at,amount\n", {"severity": "sev"}, "no column 'sev'"),
    ("A,2024-06-01,5\n", {"columns": ("customer_id", "occurred_at")}, "no column 'amount'"),
    ("", {}, "the file is empty: no header row"),
])
def test_a_file_that_cannot_be_read_raises(text: str, layout: dict[str, object], message: str, read: Read) -> None:
    with pytest.raises(HistoryError, match="^" + message.replace("(", r"\(").replace(")", r"\)")):
        read(text, **layout)


def test_a_missing_file_raises(tmp_path: Path) -> None:
    with pytest.raises(HistoryError, match="No such file"):
        list(read_history(tmp_path / "nope.csv", CsvLayout()))


# --- UTF-8 and gzip --------------------------------------------------------------------------------

def purchases_log(lines: int) -> list[bytes]:
    """A purchases log's lines: the header, then customer C0002 on line 2 and so on (~24 bytes a line)."""
    return [b"customer_id,occurred_at,amount"] + [f"C{n:04d},2024-06-01,1.00".encode() for n in range(2, lines + 1)]


def not_utf8(bad_line: int, lines: int = 600) -> bytes:
    """`purchases_log(lines)` with an invalid UTF-8 byte at the end of line `bad_line`."""
    rows = purchases_log(lines)
    rows[bad_line - 1] = rows[bad_line - 1][:-1] + b"\xff"
    return b"\n".join(rows) + b"\n"


def test_a_header_that_is_not_utf8_cannot_be_read(read: Read) -> None:
    with pytest.raises(HistoryError, match=r"^the header row is not UTF-8 \(byte 0xfc\): is the file UTF-8 text\?$"):
        read("kunde,datum,betrag,bemerkung_für_ä\nA,2024-06-01,1,x\n".encode("latin-1"),
             customer="kunde", time="datum", amount="betrag")


@pytest.mark.parametrize("bad_line", [2, 4, 500])
def test_a_row_that_is_not_utf8_is_a_bad_row_on_its_own_line_and_reading_goes_on(bad_line: int, read: Read) -> None:
    items = read(not_utf8(bad_line))
    [bad] = bad_of(items)
    assert (bad.line, bad.reason) == (bad_line, "not UTF-8 (byte 0xff)")
    assert [row.line for row in rows_of(items)] == [n for n in range(2, 601) if n != bad_line]


def test_a_customer_id_that_is_not_utf8_is_named_and_printable(read: Read) -> None:
    [bad] = read("customer_id,occurred_at,amount\nMüller,2024-06-01,1\n".encode("latin-1"))
    assert isinstance(bad, BadRow) and (bad.line, bad.reason) == (2, "customer id is not UTF-8 (byte 0xfc)")
    assert bad.text == "M\\udcfcller,2024-06-01,1"  # escaped: safe to print and to write as UTF-8
    bad.text.encode("utf-8")


def test_a_jsonl_line_that_is_not_utf8_is_a_bad_row(read: Read) -> None:
    good = MIXED_JSONL.read_bytes().splitlines(keepends=True)
    items = read(b"".join([good[0], b'{"type": "purchase", "customer_id": "\xff"}\n', *good[1:]]),
                 name="events.jsonl")
    [bad] = bad_of(items)
    assert (bad.line, bad.reason) == (2, "not UTF-8 (byte 0xff)")
    assert len(rows_of(items)) == len(rows_of(read(MIXED_JSONL.read_bytes(), name="events.jsonl")))


def test_gzip_files_read_as_their_content(read: Read, tmp_path: Path) -> None:
    text = "customer_id,occurred_at,amount\nA,2024-06-01,1\n\nB,20240602,-2\n"
    plain = read(text, name="h.csv")
    zipped = read(gzip.compress(text.encode()), name="h.csv.gz")
    assert [r._replace(event=r.event._replace(event_id="")) for r in rows_of(zipped)] == [
        r._replace(event=r.event._replace(event_id="")) for r in rows_of(plain)]  # the ids name the file
    assert len(zipped) == 2
    events = MIXED_JSONL.read_bytes()
    assert read(gzip.compress(events), name="events.jsonl.gz") == read(events, name="events.jsonl")


def test_a_gz_name_on_a_file_that_is_not_gzip_cannot_be_read(read: Read) -> None:
    with pytest.raises(HistoryError, match="file is not valid gzip"):
        read("customer_id,occurred_at,amount\n", name="h.csv.gz")


def test_a_truncated_gzip_file_is_a_bad_row_that_ends_the_reading(read: Read) -> None:
    data = gzip.compress(b"\n".join(purchases_log(3000)))
    *rows, bad = read(data[: len(data) // 2], name="h.csv.gz")
    assert isinstance(bad, BadRow) and bad.reason.startswith("file is not valid gzip")
    assert [row.line for row in rows] == list(range(2, bad.line))


def test_a_byte_order_mark_is_not_part_of_the_header(read: Read) -> None:
    items = read(b"\xef\xbb\xbfcustomer_id,occurred_at,amount\nA,2024-06-01,1\n")
    assert rows_of(items) == items and len(items) == 1


def test_line_numbers_count_lines_across_quoted_line_breaks(read: Read) -> None:
    items = read('customer_id,note,occurred_at,amount\nA,"two\nlines",2024-06-01,1\nB,x,notadate,5\n')
    assert [(type(i), i.line) for i in items] == [(Row, 2), (BadRow, 4)]


def test_bad_row_text_of_a_whitespace_file(read: Read) -> None:
    [bad] = read("A notadate 5\n", delimiter="whitespace", columns=("customer_id", "occurred_at", "amount"))
    assert isinstance(bad, BadRow)
    assert bad.text.split() == ["A", "notadate", "5"]


# --- JSONL -----------------------------------------------------------------------------------------

def test_jsonl_of_typed_events() -> None:
    items = list(read_history(MIXED_JSONL, CsvLayout()))
    assert bad_of(items) == []
    got = [(r.line, r.customer_id, r.event.kind, r.event.event_id, r.event.amount_e4, r.event.currency,
            r.event.severity) for r in rows_of(items)]
    assert got == [
        (1, "C-1", P, "ord-1", 1_200_000, "USD", 0), (2, "C-2", P, "ord-2", 355_000, "EUR", 0),
        (3, "C-2", E, "enq-1", 0, "", 0), (4, "C-1", R, "ret-1", 200_000, "", 0),
        (5, "C-1", C, "cmp-1", 0, "", 1), (6, "Kunde-Ä", P, "ord-3", 0, "JPY", 0),
        (7, "C-2", C, "cmp-2", 0, "", 5), (8, "C-2", R, "ret-2", 355_000, "EUR", 0),
        (9, "Kunde-Ä", Kind.ERASURE, "erase-Kunde", 0, "", 0),  # an erasure request: its requested_at is its time
    ]
    times = [r.event.at_ms for r in rows_of(items)]
    assert times[1] == utc_ms(2025, 1, 2, 9, 30)          # +02:00 offset
    assert times[5] == utc_ms(2025, 1, 6)                 # a microsecond after midnight: same ms
    assert times[6] == utc_ms(2025, 1, 7, 23, 59, 59)


@pytest.mark.parametrize(("line", "reason"), [
    ('{"type":"purchase","customer_id":"A","occurred_at":"2025-01-02T10:00:00Z","amount":"1","currency":"USD",'
     '"order_id":"1"}', "purchase.event_id: Field required"),
    ("not json", "Invalid JSON"),
    ('{"type":"gift","event_id":"x"}', "Input tag 'gift' found using 'type' does not match"),
    ('{"type":"purchase","event_id":"e","customer_id":"A","occurred_at":"2025-01-02T10:00:00","amount":"1",'
     '"currency":"USD","order_id":"1"}', "purchase.occurred_at: Input should have timezone info"),
    ('{"type":"return","event_id":"e","customer_id":"A","occurred_at":"2025-01-02T10:00:00Z","amount":"-1",'
     '"order_id":"1"}', "return.amount: Input should be greater than or equal to 0"),
    ('{"type":"return","event_id":"e","customer_id":"A","occurred_at":"2025-01-02T10:00:00Z","amount":-1,'
     '"order_id":"1"}', "return.amount: Input should be greater than or equal to 0"),
])
def test_jsonl_bad_lines(line: str, reason: str, read: Read) -> None:
    good = MIXED_JSONL.read_text(encoding="utf-8").splitlines()[0]
    items = read(f"{good}\n\n{line}\n{good}\n", name="events.jsonl")
    assert [(type(i), i.line) for i in items] == [(Row, 1), (BadRow, 3), (Row, 4)]
    assert items[1].reason.startswith(reason)  # type: ignore[union-attr]


@pytest.mark.parametrize("name", ["events.jsonl", "EVENTS.JSONL", "events.ndjson"])
def test_jsonl_is_chosen_by_file_name(name: str, read: Read) -> None:
    items = read(MIXED_JSONL.read_text(encoding="utf-8"), name=name)
    assert len(rows_of(items)) == 9
