"""Read histories into columns (Polars): the batch replay's reader, exact to the per-row reader.

`read_columns` gives every readable row of the inputs as one table of events, in file order, and the
bad rows, the same ones `streams.offline.history.read_history` yields (same lines, same reasons).

A file is read by Polars string kernels (or, when it has no quote, by Polars' CSV parser with quoting
off: `_parsed`) when its text is simple enough for their answer to be the csv module's by construction
(see `_simple_text`); rows that are not plain (a quoted field, a time or
amount the vectorised checks do not take, an odd customer id, too few fields) are converted by the
per-row code itself (`history._Columns.convert`). Anything else is read by the per-row reader and
only put into columns: JSONL, stdin, a general layout (type, id, currency or severity columns), text
that is not UTF-8, a lone CR, a NUL byte, a quoted field that spans lines, a file that is not valid gzip.
"""

from __future__ import annotations

import codecs
import csv
import gzip
import itertools
import re
import zlib
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from decimal import Decimal, InvalidOperation
from pathlib import Path
from typing import IO

import numpy as np
import polars as pl

from scoring.events import Kind
from scoring.money import DECIMALS, SCALE
from streams.offline.history import (
    BadRow,
    CsvLayout,
    Inputs,
    Row,
    _Columns,
    checked_e4,
    is_gzip,
    is_jsonl,
    is_whitespace,
    parse_time_ms,
    read_history,
)

EVENT_SCHEMA: dict[str, pl.DataType] = {
    "src": pl.UInt32(), "line": pl.Int64(), "customer": pl.String(), "kind": pl.Int8(), "eid": pl.String(),
    "at_ms": pl.Int64(), "amount_e4": pl.Int64(), "currency": pl.String(), "severity": pl.Int64(),
    "categories": pl.List(pl.String()),  # a purchase's item categories (null: none)
}
_BOM = b"\xef\xbb\xbf"
_ASCII_SPACE = " \t\n\r\x0b\x0c\x1c\x1d\x1e\x1f"  # what str.strip() removes from ASCII text
_PLAIN_AMOUNT = r"^-?[0-9]{1,9}(\.[0-9]{1,4})?$"  # parse_e4's fast branch: exact 1/10,000 units without Decimal
BLOCK_BYTES = 32 << 20  # text a block read converts at once (`read_blocks`)
ROW_BYTES = 40  # about how much text a row takes: rows of a per-row block (`read_blocks`)
TIME_CACHE = 2_000_000  # parsed time texts kept from one block to the next (then forgotten, and parsed again)


@dataclass
class ColumnRead:
    """The events of the inputs (`EVENT_SCHEMA`, file order: `src` is the input's index), the bad rows (file
    order) and which inputs were read row by row (`per_row`, their indexes)."""

    events: pl.DataFrame
    bad: list[BadRow] = field(default_factory=list)
    per_row: list[int] = field(default_factory=list)


def read_columns(inputs: Inputs, on_progress: Callable[[int], None] | None = None) -> ColumnRead:
    """Every row of `inputs` as columns. Raises HistoryError as the per-row reader does."""
    frames: list[pl.DataFrame] = []
    read = ColumnRead(pl.DataFrame(schema=EVENT_SCHEMA))
    for src, path in enumerate(inputs.paths):
        frame = _vectorised(src, path, inputs.layout, read.bad)
        if frame is None:
            read.per_row.append(src)
            frame = _per_row(src, read_history(path, inputs.layout), read.bad)
        frames.append(frame)
        if on_progress is not None:
            on_progress(frame.height)
    if frames:
        read.events = pl.concat(frames, how="vertical")  # each in line order, the inputs in order
    return read


def read_blocks(
    inputs: Inputs, block_bytes: int = BLOCK_BYTES, on_progress: Callable[[int], None] | None = None,
) -> Iterator[ColumnRead]:
    """`read_columns`' answer in pieces of about `block_bytes` of text each (memory bounded by the block, not
    the inputs): their events and bad rows, in file order, each piece's `per_row` naming its input when it was
    read row by row. Raises HistoryError as the per-row reader does (a file's header: before its first piece)."""
    times: dict[str, int | None] = {}
    for src, path in enumerate(inputs.paths):
        blocks = _vectorised_blocks(src, path, inputs.layout, block_bytes, times)
        if blocks is None:
            blocks = _per_row_blocks(src, read_history(path, inputs.layout), max(1, block_bytes // ROW_BYTES))
        for read in blocks:
            if on_progress is not None:
                on_progress(read.events.height + len(read.bad))
            yield read


def _per_row_blocks(src: int, rows: Iterator[Row | BadRow], size: int) -> Iterator[ColumnRead]:
    while piece := list(itertools.islice(rows, size)):
        bad: list[BadRow] = []
        yield ColumnRead(_per_row(src, iter(piece), bad), bad, [src])


def _vectorised_blocks(
    src: int, path: Path, layout: CsvLayout, block_bytes: int, times: dict[str, int | None],
) -> Iterator[ColumnRead] | None:
    """`_vectorised`'s answer block by block; None when the file must be read row by row."""
    whitespace = is_whitespace(layout.delimiter)
    odd_delimiter = len(layout.delimiter) != 1 and not whitespace
    if str(path) == "-" or is_jsonl(path) or not _is_plain(layout) or odd_delimiter:
        return None
    if not _simple_stream(path, whitespace, layout.delimiter, block_bytes):
        return None
    blocks = _text_blocks(path, block_bytes)
    first_block = next(blocks, "")
    if layout.columns:
        header = list(layout.columns)
        body: Iterator[str] = itertools.chain([first_block], blocks)
        first = 1
    else:
        header_line, newline, rest = first_block.partition("\n")
        header_line = header_line.removesuffix("\r")
        if '"' in header_line or not header_line.strip():
            return None  # the per-row reader words the errors of an odd header
        fields = header_line.split() if whitespace else next(csv.reader([header_line], delimiter=layout.delimiter), [])
        header = [h.strip() for h in fields]
        body = itertools.chain([rest] if newline else [], blocks)
        first = 2
    columns = _Columns(header, layout)  # a missing column: HistoryError, as the per-row reader says it
    return _converted_blocks(src, str(path), body, first, columns, layout, times)


def _converted_blocks(
    src: int, source: str, body: Iterator[str], first: int, columns: _Columns, layout: CsvLayout,
    times: dict[str, int | None],
) -> Iterator[ColumnRead]:
    for text in body:
        bad: list[BadRow] = []
        frame = _convert(src, source, text, first, columns, layout, bad, times)
        if frame is None:  # `_simple_stream` checked every line with a quote: cannot happen
            raise RuntimeError(f"{source}: a quoted field spans lines after line {first}")
        yield ColumnRead(frame, bad)
        first += text.count("\n") + 1


def _open_bytes(path: Path) -> IO[bytes]:
    if is_gzip(path):
        return gzip.GzipFile(path, "rb")  # type: ignore[return-value]  # (typeshed: GzipFile is not IO)
    return path.open("rb")


def _byte_blocks(path: Path, block_bytes: int) -> Iterator[bytes]:
    """The file's bytes (uncompressed, without a byte-order mark) cut just after newlines: whole lines, about
    `block_bytes` at a time (the last piece may lack its newline)."""
    with _open_bytes(path) as handle:
        carry = b""
        start = True
        while data := handle.read(max(block_bytes, 4)):
            data = carry + data
            if start:
                data, start = data.removeprefix(_BOM), False
            cut = data.rfind(b"\n") + 1
            if cut == 0:
                carry = data
                continue
            carry = data[cut:]
            yield data[:cut]
        if carry:
            yield carry


def _text_blocks(path: Path, block_bytes: int) -> Iterator[str]:
    """The file's text in pieces separated by single newlines ("\\n".join of them is the text, as
    `_simple_text` gives it); a newline at the very end adds no empty piece."""
    for data in _byte_blocks(path, block_bytes):
        yield data.decode("utf-8").removesuffix("\n")


def _plain_bytes(data: bytes) -> bool:
    """No NUL, and every CR before an LF (the CRs counted only when there is one: two counts of the whole text
    were ~0.08 s of a 52 MB read)."""
    return b"\x00" not in data and (b"\r" not in data or data.count(b"\r") == data.count(b"\r\n"))


def _simple_stream(path: Path, whitespace: bool, delimiter: str, block_bytes: int) -> bool:
    """`_simple_text`'s checks, and `_quotes_close`'s, over the file block by block (it is not kept)."""
    decoder = codecs.getincrementaldecoder("utf-8")()
    try:
        for data in _byte_blocks(path, block_bytes):
            if not _plain_bytes(data):
                return False
            text = decoder.decode(data)
            if whitespace and (not text.isascii() or re.search("[\x0b\x0c\x1c-\x1f\"]", text)):
                return False
            if not whitespace and '"' in text and not _quotes_close(_lines_of(text.removesuffix("\n")), delimiter):
                return False
        decoder.decode(b"", final=True)
    except (OSError, EOFError, zlib.error, UnicodeDecodeError):
        return False  # the per-row reader says what is wrong, and reads what it can
    return True


def _lines_of(body: str) -> pl.DataFrame:
    lines = pl.DataFrame({"text": pl.Series([body]).str.split("\n").explode()})
    lines = lines.with_columns(pl.col("text").str.strip_suffix("\r"))
    return lines.with_columns(quoted=pl.col("text").str.contains('"', literal=True))


def _per_row(src: int, rows: Iterator[Row | BadRow], bad: list[BadRow]) -> pl.DataFrame:
    """Rows of the per-row reader as columns; its bad rows go to `bad` (in file order, as every caller's)."""
    lines: list[int] = []
    customers: list[str] = []
    kinds: list[int] = []
    eids: list[str] = []
    times: list[int] = []
    amounts: list[int] = []
    currencies: list[str] = []
    severities: list[int] = []
    categories: list[list[str] | None] = []
    mine: list[BadRow] = []
    for item in rows:
        if isinstance(item, BadRow):
            mine.append(item)
            continue
        line, customer, e = item
        lines.append(line)
        customers.append(customer)
        kinds.append(int(e.kind))
        eids.append(e.event_id)
        times.append(e.at_ms)
        amounts.append(e.amount_e4)
        currencies.append(e.currency)
        severities.append(e.severity)
        categories.append(list(e.categories) if e.categories else None)
    bad.extend(mine)
    return pl.DataFrame({
        "src": pl.Series([src] * len(lines), dtype=pl.UInt32), "line": lines, "customer": customers,
        "kind": pl.Series(kinds, dtype=pl.Int8), "eid": eids, "at_ms": times, "amount_e4": amounts,
        "currency": currencies, "severity": severities, "categories": categories,
    }, schema=EVENT_SCHEMA)


def _is_plain(layout: CsvLayout) -> bool:
    """A purchases log (customer, time, amount, maybe quantity): what the vectorised reader converts."""
    return (layout.type, layout.event_id, layout.currency, layout.severity) == (None, None, None, None)


def _vectorised(src: int, path: Path, layout: CsvLayout, bad: list[BadRow]) -> pl.DataFrame | None:
    """The events of a plain CSV file read with Polars; None when the file must be read row by row."""
    odd_delimiter = len(layout.delimiter) != 1 and not is_whitespace(layout.delimiter)
    if str(path) == "-" or is_jsonl(path) or not _is_plain(layout) or odd_delimiter:
        return None
    simple = _simple_text(path, is_whitespace(layout.delimiter))
    if simple is None:
        return None
    data, text = simple
    newline = text.find("\n")
    header_line = "" if layout.columns else text[:newline] if newline >= 0 else text
    first = 1 if layout.columns else 2
    if not layout.columns:
        header_line = header_line.removesuffix("\r")
        if '"' in header_line or not header_line.strip():
            return None  # the per-row reader words the errors of an odd header
        fields = header_line.split() if is_whitespace(layout.delimiter) else next(
            csv.reader([header_line], delimiter=layout.delimiter), [])
        header = [h.strip() for h in fields]
    else:
        header = list(layout.columns)
    columns = _Columns(header, layout)  # a missing column: HistoryError, as the per-row reader says it
    return _convert(src, str(path), text, first, columns, layout, bad, skip=first - 1, raw=data)


def _simple_text(path: Path, whitespace: bool) -> tuple[bytes, str] | None:
    """The file's bytes (without a byte-order mark) and text when Polars' splitting of it is the csv module's
    (else None): UTF-8, no NUL, every CR before an LF; for whitespace-delimited files ASCII without the rarer
    whitespace (VT, FF, FS-US)."""
    try:
        data = path.read_bytes()
        if is_gzip(path):
            data = gzip.decompress(data)
    except (OSError, EOFError, zlib.error):
        return None  # the per-row reader says what is wrong, and reads what it can
    data = data.removeprefix(_BOM)
    if not _plain_bytes(data):
        return None
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError:
        return None
    if whitespace and (not text.isascii() or re.search("[\x0b\x0c\x1c-\x1f\"]", text)):
        return None
    return data, text


def _convert(
    src: int, source: str, text: str, first: int, columns: _Columns, layout: CsvLayout, bad: list[BadRow],
    times: dict[str, int | None] | None = None, skip: int = 0, raw: bytes | None = None,
) -> pl.DataFrame | None:
    """The events of `text` after its first `skip` lines (0, or 1: a header), numbered from `first`; `raw`:
    its bytes, when the caller has them."""
    whitespace = is_whitespace(layout.delimiter)
    wanted = [i for i, _ in _names(columns)]
    width = max(wanted) + 1
    # Polars' CSV parser when its fields are the split's (no quote in the text), else the string split
    split = None if whitespace else _parsed(text, skip, raw, layout.delimiter, width, first, columns)
    if split is None:
        split = _split(text.partition("\n")[2] if skip else text, layout.delimiter, width, first, columns)
    if split is None:  # a quoted field spans lines
        return None
    frame, texts = split
    ok = ~pl.col("quoted")
    for _, name in _names(columns):
        ok = ok & pl.col(name).is_not_null()
    customer = pl.col("customer_raw")
    frame = frame.with_columns(
        customer=customer.str.strip_chars(_ASCII_SPACE),
        ok=ok & (customer.str.len_bytes() == customer.str.len_chars()),
    ).with_columns(ok=pl.col("ok") & (pl.col("customer").str.len_bytes() > 0))
    frame = _with_times(frame, columns, times)
    frame = _with_e4(frame, columns)
    frame = _with_categories(frame, columns)
    fast = frame.filter(pl.col("ok") & pl.col("at_ms").is_not_null() & pl.col("signed").is_not_null())
    slow = frame.filter(~(pl.col("ok") & pl.col("at_ms").is_not_null() & pl.col("signed").is_not_null()))
    events = fast.select(
        pl.lit(src, dtype=pl.UInt32).alias("src"), "line", "customer",
        pl.when(pl.col("signed") < 0).then(int(Kind.RETURN)).otherwise(int(Kind.PURCHASE)).cast(pl.Int8).alias(
            "kind"),
        (pl.lit(source + ":") + pl.col("line").cast(pl.String)).alias("eid"), "at_ms",
        pl.col("signed").abs().alias("amount_e4"), pl.lit("").alias("currency"), pl.lit(0, dtype=pl.Int64).alias(
            "severity"), "categories",
    )
    rows = _slow_rows(texts(slow), source, columns, whitespace, layout.delimiter)
    mine: list[BadRow] = []
    extra = _per_row(src, iter(rows), mine)
    bad.extend(mine)
    if extra.height == 0:
        return events
    return pl.concat([events, extra], how="vertical").sort("line")


Texts = Callable[[pl.DataFrame], list[tuple[int, str]]]  # (line, text) of the lines of some of a body's rows


def _split(
    body: str, delimiter: str, width: int, first: int, columns: _Columns,
) -> tuple[pl.DataFrame, Texts] | None:
    """`body`'s lines, numbered from `first`, split into their first `width` fields by string kernels (`line`,
    `text`, `quoted`, the named fields; a missing field null), and a way to the texts of rows' lines; None when
    a quoted field spans lines."""
    whitespace = is_whitespace(delimiter)
    lines = pl.DataFrame({"text": pl.Series([body]).str.split("\n").explode()}).with_row_index("line", first)
    lines = lines.with_columns(pl.col("line").cast(pl.Int64), pl.col("text").str.strip_suffix("\r"))
    line = pl.col("text")
    if whitespace:
        split = line.str.replace_all("[ \t\r]+", " ").str.strip_chars(" ").str.splitn(" ", width + 1)
        quoted = pl.lit(False)
    else:
        split = line.str.splitn(delimiter, width + 1)
        quoted = line.str.contains('"', literal=True)
    lines = lines.with_columns(split.alias("f"), quoted.alias("quoted"))
    if not whitespace and not _quotes_close(lines, delimiter):
        return None
    frame = lines.select(
        "line", "text", "quoted",
        *(pl.col("f").struct.field(f"field_{i}").alias(name) for i, name in _names(columns)),
    )
    return frame, _texts_of


def _texts_of(rows: pl.DataFrame) -> list[tuple[int, str]]:
    """The rows' lines and texts, as the split keeps them beside their fields."""
    return list(rows.select("line", "text").iter_rows())


def _parsed(
    text: str, skip: int, raw: bytes | None, delimiter: str, width: int, first: int, columns: _Columns,
) -> tuple[pl.DataFrame, Texts] | None:
    """The lines of `text` after its first `skip` (0 or 1; `raw`: its bytes, else encoded here) split into their
    first `width` fields by Polars' CSV parser, as `_convert`'s own split makes them (`line`, `quoted` false,
    the named fields), and a way to the texts of rows' lines; None when the parser's answer could differ from
    that split, or the fields' from the csv module's (the split then runs).

    Taken only when the text has no quote (every field is then the text between two delimiters, for the
    parser, `str.splitn` and the csv module alike), the delimiter is one ASCII character, and the first line
    has `width` fields or more (the parser takes its number of columns from it). A line with fewer fields has
    its missing ones empty here, where the split leaves them null: each named field then fails its fast check
    (an empty customer, time, amount or quantity), and the line is read by the per-row code as before; an
    empty category or item would pass it, so a layout with one is left to the split. Blank lines are rows of
    the parser (numbered as lines); a CR before each LF is dropped by both (`_plain_bytes` checked there is no
    other CR). Two to three times as fast as the split (0.12 s against 0.37 s on 1.6 M lines)."""
    start = text.find("\n") + 1 if skip else 0  # where the body starts (0 when a skipped line ends the text)
    if (len(delimiter) != 1 or not delimiter.isascii() or delimiter in '\r\n"' or '"' in text
            or (skip and not start) or start >= len(text) or columns.category is not None
            or columns.item is not None):
        return None
    end = text.find("\n", start)
    if text[start:end if end >= 0 else len(text)].count(delimiter) < width - 1:  # the first line's fields
        return None
    raw = text.encode() if raw is None else raw
    names = {f"field_{i}": pl.String() for i in range(width)}
    fields = pl.read_csv(raw, has_header=False, separator=delimiter, quote_char=None, schema=names,
                         truncate_ragged_lines=True, empty_string_is_null=False, row_index_name="line",
                         row_index_offset=first, raise_if_empty=False, extra_columns="ignore", skip_lines=skip)
    if fields.height != raw.count(b"\n") + (not raw.endswith(b"\n")) - skip:  # a row per line, or the split
        return None
    frame = fields.select(pl.col("line").cast(pl.Int64), pl.lit(False).alias("quoted"),
                          *(pl.col(f"field_{i}").alias(name) for i, name in _names(columns))).rechunk()

    def texts(rows: pl.DataFrame) -> list[tuple[int, str]]:
        lines = rows.get_column("line").to_list()
        if not lines:
            return []
        ends = np.flatnonzero(np.frombuffer(raw, dtype=np.uint8) == ord("\n"))
        starts = np.concatenate(([0], ends + 1))
        ends = np.concatenate((ends, [len(raw)]))
        at = [line - first + skip for line in lines]
        return [(line, raw[starts[i]:ends[i]].decode().removesuffix("\r")) for line, i in zip(lines, at, strict=True)]

    return frame, texts


def _names(columns: _Columns) -> list[tuple[int, str]]:
    named = [(columns.customer, "customer_raw"), (columns.time, "time_raw"), (columns.amount, "amount_raw"),
             (columns.quantity, "quantity_raw"), (columns.category, "category_raw"), (columns.item, "item_raw")]
    return [(i, name) for i, name in named if i is not None]


def _with_categories(frame: pl.DataFrame, columns: _Columns) -> pl.DataFrame:
    """`categories`: a purchase row's category, as `history._Columns._categories` reads it (the category column's,
    else the item's, stripped, at most 100 characters; null when both are empty, and for a refund). A row with
    a category or item that is not ASCII is left to the per-row code (`ok` false)."""
    raws = [name for _, name in _names(columns) if name in ("category_raw", "item_raw")]
    if not raws:
        return frame.with_columns(categories=pl.lit(None, dtype=pl.List(pl.String())))
    ascii_ok = pl.lit(True)
    name: pl.Expr = pl.lit(None, dtype=pl.String())
    for raw in reversed(raws):  # the category column first: the item stands for it when it is empty
        ascii_ok = ascii_ok & (pl.col(raw).str.len_bytes() == pl.col(raw).str.len_chars())
        stripped = pl.col(raw).str.strip_chars(_ASCII_SPACE)
        name = pl.when(stripped.str.len_bytes() > 0).then(stripped).otherwise(name)
    purchase = pl.col("signed") >= 0
    return frame.with_columns(
        ok=pl.col("ok") & ascii_ok,
        categories=pl.when(purchase & name.is_not_null()).then(pl.concat_list(name.str.slice(0, 100))),
    )


def _quotes_close(lines: pl.DataFrame, delimiter: str) -> bool:
    """Every line with a quote is a whole record of plain or fully quoted fields (no field spans lines)."""
    d = re.escape(delimiter)
    one = f'(?:[^"{d}]*|"(?:[^"]|"")*")'
    pattern = f"^{one}(?:{d}{one})*$"
    quoted = lines.filter(pl.col("quoted"))
    return quoted.height == 0 or bool(quoted.select(pl.col("text").str.contains(pattern).all()).item())


def _with_times(frame: pl.DataFrame, columns: _Columns, times: dict[str, int | None] | None = None) -> pl.DataFrame:
    """`at_ms` of each row whose time parses (each distinct text parsed once, by the per-row code; `times`:
    the texts parsed before, by earlier blocks of the same history)."""
    stamps = frame.filter(pl.col("ok")).get_column("time_raw").unique()
    known = {} if times is None else times
    if len(known) > TIME_CACHE:
        known.clear()
    parsed: dict[str, int | None] = {}
    for stamp in stamps.to_list():
        if stamp in known:
            parsed[stamp] = known[stamp]
            continue
        try:
            parsed[stamp] = known[stamp] = parse_time_ms(stamp, columns.layout.date_format, columns.zone)
        except (ValueError, OverflowError):
            parsed[stamp] = known[stamp] = None
    table = pl.DataFrame({"time_raw": list(parsed), "at_ms": list(parsed.values())},
                         schema={"time_raw": pl.String, "at_ms": pl.Int64})
    return frame.join(table, on="time_raw", how="left", maintain_order="left")


def _with_e4(frame: pl.DataFrame, columns: _Columns) -> pl.DataFrame:
    """`signed`: each row's amount in 1/10,000 units (negative: a refund) where the fast checks take it."""
    if columns.amount is None:
        return frame.with_columns(signed=pl.lit(0, dtype=pl.Int64))
    if columns.quantity is not None:
        pairs = frame.filter(pl.col("ok")).select("amount_raw", "quantity_raw").unique()
        values = [_line_e4(a, q) for a, q in pairs.iter_rows()]
        table = pairs.with_columns(signed=pl.Series(values, dtype=pl.Int64))
        return frame.join(table, on=["amount_raw", "quantity_raw"], how="left", maintain_order="left",
                          nulls_equal=False)
    amount = pl.col("amount_raw")
    whole, frac = amount.str.extract(r"^-?([0-9]+)", 1), amount.str.extract(r"\.([0-9]+)$", 1)
    units = whole.cast(pl.Int64) * SCALE + pl.when(frac.is_null()).then(0).otherwise(
        frac.str.pad_end(DECIMALS, "0").cast(pl.Int64))
    signed = pl.when(amount.str.starts_with("-")).then(-units).otherwise(units)
    # each distinct text converted once, then joined back: a log repeats its amounts (Online Retail x4: 2,699
    # distinct in 1.6 M rows; a synthetic log of 4 M rows: 71,818), and the regular expressions cost ~6x the join
    table = frame.select(amount.unique()).filter(amount.is_not_null())
    table = table.with_columns(signed=pl.when(amount.str.contains(_PLAIN_AMOUNT)).then(signed))
    return frame.join(table, on="amount_raw", how="left", maintain_order="left", nulls_equal=False)


def _line_e4(amount: str, quantity: str) -> int | None:
    """amount x quantity in exact 1/10,000 units, as the per-row reader computes it; None when it refuses them."""
    try:
        return checked_e4(Decimal(amount) * Decimal(quantity))
    except (ValueError, InvalidOperation, ArithmeticError):
        return None


def _slow_rows(
    slow: list[tuple[int, str]], source: str, columns: _Columns, whitespace: bool, delimiter: str,
) -> list[Row | BadRow]:
    """The rows the vectorised checks did not take ((line, text) in file order), converted by the per-row code
    (same rows, same reasons)."""
    records: list[tuple[int, list[str]]] = []
    for line, text in slow:
        fields = text.split() if whitespace else next(csv.reader([text], delimiter=delimiter), [])
        records.append((line, fields))
    return list(columns.convert(iter(records), source))
