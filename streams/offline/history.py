"""Read transaction histories (CSV or JSONL) into core events, row by row.

A bad row never stops the reader: it comes out as a `BadRow` with its line
number and reason, for the caller to report and count.

Times: a time with an offset is that instant; a naive time (no offset, as in
many exports) is local time in `CsvLayout.timezone` (an IANA name, default
UTC; an ambiguous time at a DST change takes its first occurrence); a date
without a time is that calendar day, whatever the zone.
"""

from __future__ import annotations

import contextlib
import csv
import gzip
import sys
import zlib
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, date, datetime, tzinfo
from decimal import Decimal, InvalidOperation
from pathlib import Path
from typing import NamedTuple, TextIO
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from pydantic import ValidationError

from schemas.inputs import DuplicateKeyError, parse_input
from scoring.events import MS_PER_DAY, CoreEvent, Kind, to_ms
from scoring.money import DECIMALS, SCALE
from streams.convert import to_core, to_e4

_EPOCH_ORDINAL = date(1970, 1, 1).toordinal()
_TYPES = {
    "purchase": Kind.PURCHASE, "purchasecompleted": Kind.PURCHASE, "order": Kind.PURCHASE, "sale": Kind.PURCHASE,
    "return": Kind.RETURN, "orderreturned": Kind.RETURN, "refund": Kind.RETURN,
    "complaint": Kind.COMPLAINT, "complaintfiled": Kind.COMPLAINT,
    "enquiry": Kind.ENQUIRY, "enquiryreceived": Kind.ENQUIRY, "inquiry": Kind.ENQUIRY,
}
DEFAULT_TIMEZONE = "UTC"
EMPTY_CUSTOMER = "customer id is empty"  # the reason of a row without a customer (reported as one line)


class HistoryError(Exception):
    """The file as a whole cannot be read (missing column, unreadable file)."""


def nothing_read(first: BadRow | None, bad: int | None = None) -> str:
    """The one-line error of a history none of whose rows could be read: the file and reason of the first bad
    row, and where a wrong option usually is (a history read with the wrong format or columns has every row bad)."""
    count = f"{bad:,} bad rows" if bad is not None else "every row is bad"
    why = f"; first bad row, line {first.line}: {first.reason}" if first is not None else ""
    where = f"{first.source}: " if first is not None and first.source else ""
    return (f"{where}no row could be read ({count}{why}); check --date-format, --delimiter, --columns "
            "and the column options (--customer-col, --time-col, --amount-col)")


class NotUtf8Error(ValueError):
    """A field the row keeps holds bytes that are not UTF-8."""


class Row(NamedTuple):
    """A readable row: its line number (1-based), the customer and the event."""

    line: int
    customer_id: str
    event: CoreEvent


class BadRow(NamedTuple):
    """An unreadable row: its line number, why, the start of its text and the file it is in."""

    line: int
    reason: str
    text: str = ""
    source: str = ""

    @property
    def where(self) -> str:
        """`line N`, after the file's name when known."""
        return f"{self.source}, line {self.line}" if self.source else f"line {self.line}"


class Part(NamedTuple):
    """One of `total` disjoint parts of a history, by customer: `hash(id) % total == number`.

    For readers in processes forked from one parent (they share its string hash
    seed). A row whose customer cannot be read, and a file-level problem, belong
    to part 0, so every row is counted, and every bad row reported, exactly once.
    """

    number: int
    total: int

    def owns(self, customer: str | None) -> bool:
        return self.number == 0 if customer is None else hash(customer) % self.total == self.number


@dataclass(frozen=True)
class CsvLayout:
    """Which columns hold what. `columns` names the columns of a file with no header row."""

    customer: str = "customer_id"
    time: str = "occurred_at"
    amount: str | None = "amount"  # None: a log without amounts (every amount 0)
    type: str | None = None
    event_id: str | None = None
    currency: str | None = None
    quantity: str | None = None
    severity: str | None = None
    delimiter: str = ","
    columns: tuple[str, ...] = ()
    date_format: str | None = None
    default_severity: int = 3
    timezone: str = DEFAULT_TIMEZONE  # IANA name: the zone of naive times
    item: str | None = None  # a purchase's item (product code): its category when there is no category column
    category: str | None = None  # a purchase's item category (category affinity)


def time_zone(name: str) -> tzinfo:
    """The zone of an IANA name ("UTC", "Europe/London"); HistoryError (one line) for an unknown name."""
    if name.upper() == "UTC":
        return UTC
    try:
        return ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError):
        raise HistoryError(f"unknown time zone {name!r} (an IANA name such as UTC or Europe/London)") from None


def parse_time_ms(text: str, date_format: str | None = None, zone: tzinfo = UTC) -> int:
    """Epoch ms of an ISO date/datetime, a YYYYMMDD date, or `date_format`; a naive time is in `zone`,
    a date alone is that calendar day (its UTC midnight)."""
    text = text.strip()
    if date_format:
        moment = datetime.strptime(text, date_format)
    elif len(text) == 8 and text.isdigit():
        day = date(int(text[:4]), int(text[4:6]), int(text[6:])).toordinal() - _EPOCH_ORDINAL
        return day * MS_PER_DAY
    elif len(text) == 10:
        return (date.fromisoformat(text).toordinal() - _EPOCH_ORDINAL) * MS_PER_DAY
    else:
        moment = datetime.fromisoformat(text)
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=zone)
    return to_ms(moment)  # exact integer arithmetic, as the stream converts the same time


def parse_e4(text: str) -> int:
    """The exact 1/10,000 units of a decimal amount (`scoring.money`).

    Raises InvalidOperation for text that is not a number and ValueError
    (`MoneyError`) for a non-finite or implausibly large (> 1e9) amount, or one
    with more than 4 decimals (refused, never rounded: the schemas refuse it
    too). Plain amounts such as "-12.5" skip Decimal (same result, a third of
    the time).
    """
    whole, _, frac = text.partition(".")
    negative = whole[:1] == "-"
    digits = whole[1:] if negative else whole
    if 0 < len(digits) <= 9 and len(frac) <= DECIMALS and digits.isdecimal() and (not frac or frac.isdecimal()):
        units = int(digits) * SCALE + (int(frac.ljust(DECIMALS, "0")) if frac else 0)
        return -units if negative else units
    return checked_e4(Decimal(text))


def checked_e4(amount: Decimal) -> int:
    """`scoring.money.to_e4` of an amount read from a file (or a unit price x quantity)."""
    return to_e4(amount)


def open_text(path: Path) -> TextIO:
    """Open a history file (gzip-compressed when its name ends in .gz), or stdin for '-'."""
    if str(path) == "-":
        return sys.stdin
    try:
        # utf-8-sig drops a byte-order mark (Excel's "CSV UTF-8"); bytes that are not UTF-8 become lone
        # surrogates, so one bad byte costs its own row (see `undecodable`), not the rest of the file.
        if is_gzip(path):
            return gzip.open(path, "rt", newline="", encoding="utf-8-sig", errors="surrogateescape")
        return path.open(newline="", encoding="utf-8-sig", errors="surrogateescape")
    except OSError as exc:
        raise HistoryError(f"{path}: {exc.strerror}") from None


@dataclass(frozen=True)
class Inputs:
    """The history files of one run ('-' for stdin), read in order as one history."""

    paths: tuple[Path, ...]
    layout: CsvLayout

    def rows(self, part: Part | None = None) -> Iterator[Row | BadRow]:
        for path in self.paths:
            yield from read_history(path, self.layout, part)

    def position(self, row: BadRow) -> tuple[int, int]:
        """Where a bad row is in the whole history: (file, line)."""
        names = [str(p) for p in self.paths]
        return names.index(row.source) if row.source in names else len(names), row.line

    @property
    def rereadable(self) -> bool:
        """Every input is a file: it can be read again (by another process). Stdin cannot."""
        return all(str(p) != "-" for p in self.paths)

    def text_bytes(self) -> int:
        """About how much text there is to read (a compressed file counts 5x its size); 0 when unknown."""
        total = 0
        for path in self.paths:
            with contextlib.suppress(OSError):
                total += path.stat().st_size * (5 if is_gzip(path) else 1)
        return total


def read_history(path: Path, layout: CsvLayout, part: Part | None = None) -> Iterator[Row | BadRow]:
    """Rows of a .jsonl/.ndjson file of typed events, or of a CSV file laid out as `layout`; either may be .gz.

    With `part`, only the rows (and bad rows) of that part (see `Part`).
    """
    handle = open_text(path)
    where = [0]  # the last line read, kept up to date by the reader
    try:
        if is_jsonl(path):
            yield from _read_jsonl(handle, str(path), part, where)
        else:
            yield from _read_csv(handle, layout, str(path), part, where)
    except (gzip.BadGzipFile, EOFError, zlib.error) as exc:
        reason = f"file is not valid gzip ({exc or type(exc).__name__})"
        if not where[0]:  # nothing could be read: the file as a whole is bad
            raise HistoryError(f"{path}: {reason}") from None
        if part is None or part.owns(None):
            yield BadRow(where[0] + 1, f"{reason}; this line and those after it were not read", "", str(path))
    finally:
        if handle is not sys.stdin:
            handle.close()


def is_gzip(path: Path) -> bool:
    """A gzip-compressed file (by its name)."""
    return path.suffix.lower() == ".gz"


def is_jsonl(path: Path) -> bool:
    """A file of typed JSON events, one a line (by its name; compressed or not)."""
    name = path.stem if is_gzip(path) else path.name
    return name.lower().endswith((".jsonl", ".ndjson"))


def undecodable(text: str) -> str:
    """Why `text` (decoded with surrogateescape) is not UTF-8, or "" when it is."""
    if text.isascii():
        return ""
    for ch in text:
        if "\udc80" <= ch <= "\udcff":
            return f"not UTF-8 (byte 0x{ord(ch) - 0xDC00:02x})"
    return ""


def printable(text: str) -> str:
    """`text` with undecodable bytes shown as escapes, safe to print or encode."""
    return text if text.isascii() else text.encode("utf-8", "backslashreplace").decode("utf-8")


def _read_jsonl(handle: TextIO, source: str, part: Part | None, where: list[int]) -> Iterator[Row | BadRow]:
    for line, text in enumerate(handle, start=1):
        where[0] = line
        if not text.strip():
            continue
        if reason := undecodable(text):
            if part is None or part.owns(None):
                yield BadRow(line, reason, printable(text[:200]), source)
            continue
        try:
            message = parse_input(text)
        except ValidationError as exc:
            if part is None or part.owns(None):
                err = exc.errors()[0]
                loc = ".".join(str(p) for p in err["loc"])
                yield BadRow(line, f"{loc}: {err['msg']}" if loc else err["msg"], text[:200], source)
            continue
        except DuplicateKeyError as exc:
            if part is None or part.owns(None):
                yield BadRow(line, str(exc)[:200], text[:200], source)
            continue
        except ValueError as exc:
            if part is None or part.owns(None):
                yield BadRow(line, f"Invalid JSON: {str(exc)[:200]}", text[:200], source)
            continue
        if part is None or part.owns(message.customer_id):
            yield Row(line, message.customer_id, to_core(message))


Record = tuple[int, list[str]]  # (first physical line, fields)


def is_whitespace(delimiter: str) -> bool:
    return delimiter in ("whitespace", " ", "\\s")


def _records(handle: TextIO, layout: CsvLayout) -> Iterator[Record]:
    """Each record with the physical line it starts on (a quoted CSV field may span lines)."""
    if is_whitespace(layout.delimiter):
        for line, text in enumerate(handle, start=1):
            yield line, text.split()
        return
    reader = csv.reader(handle, delimiter=layout.delimiter)
    last = 0
    for fields in reader:
        yield last + 1, fields
        last = reader.line_num


def _reader(handle: TextIO, layout: CsvLayout) -> tuple[Iterator[Record], list[str]]:
    records = _records(handle, layout)
    if layout.columns:
        return records, list(layout.columns)
    first = next(records, None)
    if first is None:
        raise HistoryError("the file is empty: no header row")
    header = [h.strip() for h in first[1]]
    if reason := undecodable("".join(header)):
        raise HistoryError(f"the header row is {reason}: is the file UTF-8 text?")
    return records, header


def _index(header: list[str], name: str | None, required: bool, hint: str = "") -> int | None:
    if name is None:
        return None
    if name not in header:
        if required:
            raise HistoryError(f"no column {name!r}; the columns are: {', '.join(header)}{hint}")
        return None
    return header.index(name)


def _read_csv(
    handle: TextIO, layout: CsvLayout, source: str, part: Part | None, where: list[int],
) -> Iterator[Row | BadRow]:
    records, header = _reader(handle, layout)
    return _Columns(header, layout).convert(records, source, part, where)


def _check_text(text: str, what: str, empty_ok: bool = False) -> None:
    """ValueError when a kept field is empty or holds bytes that are not UTF-8."""
    if not text and not empty_ok:
        raise ValueError(f"{what} is empty")
    if reason := undecodable(text):
        raise NotUtf8Error(f"{what} is {reason}")


def _reason(exc: Exception) -> str:
    if isinstance(exc, IndexError):
        return "too few columns"
    if isinstance(exc, InvalidOperation):
        return "amount is not a number"
    if isinstance(exc, KeyError):
        return f"unknown event type {exc.args[0]!r}"
    return str(exc) or type(exc).__name__


class _Columns:
    """Column positions and the per-row conversion of a CSV layout."""

    def __init__(self, header: list[str], layout: CsvLayout) -> None:
        self.layout = layout
        self.customer = _index(header, layout.customer, True)
        self.time = _index(header, layout.time, True)
        self.amount = _index(header, layout.amount, True, "; --amount-col none reads a log without amounts")
        self.type = _index(header, layout.type, True)
        self.event_id = _index(header, layout.event_id, True)
        self.currency = _index(header, layout.currency, True)
        self.quantity = _index(header, layout.quantity, True)
        self.severity = _index(header, layout.severity, True)
        self.item = _index(header, layout.item, True)
        self.category = _index(header, layout.category, True)
        self.zone = time_zone(layout.timezone)

    def convert(
        self, records: Iterator[Record], source: str, part: Part | None = None, where: list[int] | None = None,
    ) -> Iterator[Row | BadRow]:
        """Rows and bad rows (of `part`, when given), in file order; blank lines are skipped.

        A plain purchases log (no type, id, currency or quantity column), the
        common large input, takes an inlined path with the same results.
        """
        times: dict[str, int] = {}
        layout = self.layout
        plain = (self.type, self.event_id, self.currency, self.quantity, self.item, self.category) == (None,) * 6
        c, t, a, date_format, prefix = self.customer, self.time, self.amount, layout.date_format, f"{source}:"
        zone = self.zone
        purchase, refund = Kind.PURCHASE, Kind.RETURN
        where = where if where is not None else [0]
        for line, v in records:
            where[0] = line
            customer = None  # until it is known to be readable
            try:
                name = v[c].strip()  # type: ignore[index]
                if not name or not name.isascii():
                    _check_text(name, "customer id")
                customer = name
                if part is not None and hash(customer) % part.total != part.number:  # not part.owns: hot
                    continue
                if not plain:
                    yield self.row(line, v, customer, times, source)
                    continue
                stamp = v[t]  # type: ignore[index]
                at_ms = times.get(stamp)
                if at_ms is None:
                    at_ms = times[stamp] = parse_time_ms(stamp, date_format, zone)
                amount = 0 if a is None else parse_e4(v[a])
                if amount < 0:  # a negative sale is a refund
                    yield Row(line, customer, CoreEvent(refund, prefix + str(line), at_ms, -amount))
                else:
                    yield Row(line, customer, CoreEvent(purchase, prefix + str(line), at_ms, amount))
            except (ValueError, InvalidOperation, IndexError, KeyError) as exc:
                if (part is None or part.owns(customer)) and v and (len(v) > 1 or v[0].strip()):
                    text = (" " if is_whitespace(layout.delimiter) else layout.delimiter).join(v)
                    reason = _reason(exc) if isinstance(exc, NotUtf8Error) else undecodable(text) or _reason(exc)
                    yield BadRow(line, reason, printable(text[:200]), source)

    def row(self, line: int, v: list[str], customer: str, times: dict[str, int], source: str) -> Row:
        """The row of a general layout; `customer` is its checked customer id."""
        stamp = v[self.time]  # type: ignore[index]
        at_ms = times.get(stamp)
        if at_ms is None:
            at_ms = times[stamp] = parse_time_ms(stamp, self.layout.date_format, self.zone)
        kind = Kind.PURCHASE if self.type is None else _TYPES[v[self.type].strip().lower()]
        amount = self._amount(v, kind)
        if amount < 0:
            if kind is not Kind.PURCHASE:
                raise ValueError("amount must be >= 0")
            kind, amount = Kind.RETURN, -amount  # a negative sale is a refund
        event_id = v[self.event_id].strip() if self.event_id is not None else ""
        currency = v[self.currency].strip() if self.currency is not None else ""
        if not (event_id + currency).isascii():
            _check_text(event_id + currency, "event id or currency", empty_ok=True)
        severity = self._severity(v) if kind is Kind.COMPLAINT else 0
        categories = self._categories(v) if kind is Kind.PURCHASE else ()  # a refund carries none (as a return)
        return Row(line, customer, CoreEvent(
            kind, event_id or f"{source}:{line}", at_ms, amount, currency, severity, categories))

    def _categories(self, v: list[str]) -> tuple[str, ...]:
        """A purchase row's category: the category column's, else the item's; () when empty or absent."""
        for column in (self.category, self.item):
            if column is not None and (name := v[column].strip()):
                if not name.isascii():
                    _check_text(name, "category")
                return (name[:100],)
        return ()

    def _amount(self, v: list[str], kind: Kind) -> int:
        if kind in (Kind.COMPLAINT, Kind.ENQUIRY) or self.amount is None:
            return 0
        if self.quantity is None:
            return parse_e4(v[self.amount])
        return checked_e4(Decimal(v[self.amount]) * Decimal(v[self.quantity]))

    def _severity(self, v: list[str]) -> int:
        if self.severity is None or not v[self.severity].strip():
            return self.layout.default_severity
        severity = int(v[self.severity])
        if not 1 <= severity <= 5:
            raise ValueError("severity must be 1-5")
        return severity
