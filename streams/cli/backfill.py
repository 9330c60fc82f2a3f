"""`tierstream backfill`: publish a history file to the input topics."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from dataclasses import dataclass, field
from decimal import Decimal
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer
from pydantic import ValidationError
from rich.console import Console
from rich.progress import BarColumn, Progress, TextColumn, TimeElapsedColumn

from schemas.inputs import (
    ComplaintFiled,
    EnquiryReceived,
    LineItem,
    OrderReturned,
    PurchaseCompleted,
    parse_input,
)
from scoring.errors import ConfigError
from scoring.events import CoreEvent, Kind, from_ms
from scoring.money import money_text
from streams.cli.base import ConfigOpt, app, err, run_with_kafka, settings_from
from streams.cli.options import (
    AmountCol,
    CategoryCol,
    Columns,
    CurrencyCol,
    CustomerCol,
    DateFormat,
    Delimiter,
    IdCol,
    Inputs,
    ItemCol,
    QuantityCol,
    SeverityCol,
    TimeCol,
    Timezone,
    TypeCol,
    csv_layout,
)
from streams.convert import InputMessage
from streams.offline.history import (
    BadRow,
    CsvLayout,
    HistoryError,
    Row,
    is_jsonl,
    nothing_read,
    open_text,
    read_history,
)
from streams.settings import Settings

if TYPE_CHECKING:
    from streams.local.publish import Publisher

MAX_REPORTED = 20
UNSPECIFIED = "unspecified"  # category/topic of complaints and enquiries read from a CSV


def from_core(customer: str, event: CoreEvent, base_currency: str) -> InputMessage:
    """The input message of a core event read from a CSV (descriptive fields the CSV lacks are filled in).

    A purchase row's category (`--category-col`, else `--item-col`) goes out as one line item whose `sku` it is
    (quantity 1, the row's amount; no `category`, so that the stream reads the sku as the category, as
    `streams.convert.item_categories` does): the worker's state then keeps the categories replay's does."""
    at = from_ms(event.at_ms)
    amount = Decimal(money_text(event.amount_e4))  # exact, 2 to 4 decimals (`scoring.money`)
    common: dict[str, Any] = {"event_id": event.event_id, "customer_id": customer, "occurred_at": at}
    if event.kind is Kind.PURCHASE:
        items = [LineItem(sku=name, quantity=1, unit_price=amount) for name in event.categories] or None
        return PurchaseCompleted(**common, amount=amount, currency=event.currency or base_currency,
                                 order_id=event.event_id, items=items)
    if event.kind is Kind.RETURN:
        return OrderReturned(**common, amount=amount, currency=event.currency or None, order_id=event.event_id)
    if event.kind is Kind.COMPLAINT:
        return ComplaintFiled(**common, severity=event.severity, category=UNSPECIFIED)
    return EnquiryReceived(**common, topic=UNSPECIFIED)


class _JsonlOriginals:
    """The original messages of a JSONL file, read in step with `read_history` (which keeps only core events)."""

    def __init__(self, path: Path) -> None:
        self.handle = open_text(path)
        self.line, self.text = 0, ""

    def message(self, line: int) -> InputMessage:
        while self.line < line:
            self.text = next(self.handle)
            self.line += 1
        return parse_input(self.text)

    def close(self) -> None:
        self.handle.close()


def messages(path: Path, layout: CsvLayout, base_currency: str) -> Iterator[tuple[int, InputMessage] | BadRow]:
    """(line, message) for every good row of a history; a BadRow for every bad one."""
    originals = _JsonlOriginals(path) if is_jsonl(path) and str(path) != "-" else None
    try:
        for item in read_history(path, layout):
            if isinstance(item, BadRow):
                yield item
                continue
            try:
                yield item.line, _message(item, originals, base_currency)
            except ValidationError as exc:
                e = exc.errors()[0]
                yield BadRow(item.line, f"{'.'.join(str(p) for p in e['loc'])}: {e['msg']}")
    finally:
        if originals is not None:
            originals.close()


def _message(row: Row, originals: _JsonlOriginals | None, base_currency: str) -> InputMessage:
    if originals is not None:
        return originals.message(row.line)
    return from_core(row.customer_id, row.event, base_currency)


@dataclass
class BackfillStats:
    rows: int = 0
    bad: list[tuple[str, BadRow]] = field(default_factory=list)


def count_lines(paths: list[Path]) -> int | None:
    """Rows to expect (for the progress bar); None when reading stdin."""
    if any(str(p) == "-" for p in paths):
        return None
    total = 0
    for path in paths:
        with path.open("rb") as handle:
            total += sum(1 for _ in handle)
    return total


def _progress(console: Console) -> Progress:
    columns = (TextColumn("backfill"), BarColumn(), TextColumn("{task.completed:,} rows"),
               TextColumn("{task.fields[rate]}"), TimeElapsedColumn())
    return Progress(*columns, console=console, disable=not console.is_terminal, transient=False)


async def publish_files(paths: list[Path], layout: CsvLayout, publisher: Publisher, rate: float | None,
                        console: Console, dry_run: bool = False) -> BackfillStats:
    """Send every good row of `paths` in file order; report bad rows with their line numbers."""
    from streams.local.publish import Pacer

    stats, pacer = BackfillStats(), Pacer(rate)
    base = publisher.settings.scoring.base_currency
    loop = asyncio.get_running_loop()
    with _progress(console) as progress:
        task = progress.add_task("backfill", total=count_lines(paths) if console.is_terminal else None, rate="")
        started = loop.time()
        for path in paths:
            for item in messages(path, layout, base):
                stats.rows += 1
                if isinstance(item, BadRow):
                    _report(progress.console, path, item, stats)
                elif not dry_run:
                    await pacer.wait()
                    await publisher.send(item[1])
                if stats.rows % 500 == 0:
                    per_s = stats.rows / max(loop.time() - started, 1e-6)
                    progress.update(task, completed=stats.rows, rate=f"{per_s:,.0f} rows/s")
        await publisher.flush()
        progress.update(task, completed=stats.rows)
    return stats


def _report(console: Console, path: Path, row: BadRow, stats: BackfillStats) -> None:
    stats.bad.append((str(path), row))
    if len(stats.bad) <= MAX_REPORTED:
        console.print(f"{path}: line {row.line}: {row.reason} (skipped)", markup=False, soft_wrap=True)


@app.command(epilog="""Examples:

\b
  tierstream backfill events.jsonl                  # to customer-events: keeps each customer's order
  tierstream backfill purchases.csv --rate 2000 --per-type
      # to purchases/returns/complaints/enquiries, at most 2,000 events/s
  tierstream backfill CDNOW_sample.txt --delimiter whitespace \\
      --columns customer_id,id,occurred_at,quantity,amount --quantity-col quantity

With the workers on `clock: event`, the result equals `tierstream replay FILE --exact`.
""")
def backfill(
    inputs: Inputs,
    config: ConfigOpt = None,
    bootstrap: Annotated[str | None, typer.Option("--bootstrap", help="Kafka host:port[,...] (env KAFKA_BOOTSTRAP).")]
    = None,
    partitions: Annotated[int | None, typer.Option(help="Partitions of topics it creates (default: config).")]
    = None,
    per_type: Annotated[bool, typer.Option("--per-type", help="Send to purchases/returns/complaints/enquiries "
                                           "instead of the mixed customer-events topic (erasure requests "
                                           "go there either way).")] = False,
    rate: Annotated[float | None, typer.Option(min=0.01, help="At most this many events per second.")] = None,
    customer_col: CustomerCol = "customer_id", time_col: TimeCol = "occurred_at", amount_col: AmountCol = "amount",
    type_col: TypeCol = None, id_col: IdCol = None, currency_col: CurrencyCol = None,
    quantity_col: QuantityCol = None, severity_col: SeverityCol = None, delimiter: Delimiter = ",",
    columns: Columns = None, date_format: DateFormat = None, timezone: Timezone = "UTC",
    item_col: ItemCol = None, category_col: CategoryCol = None,
    strict: Annotated[bool, typer.Option(help="Check the whole file first; any bad row: publish nothing, exit 1.")]
    = False,
) -> None:
    """Publish a history (CSV or JSONL) to the input topics.

    Keyed by customer id, in file order, with a progress bar."""
    settings = settings_from(config, kafka_bootstrap=bootstrap, partitions=partitions)
    layout = csv_layout(**locals())
    if strict and any(str(p) == "-" for p in inputs):
        raise typer.BadParameter("--strict reads the input twice; it cannot read stdin", param_hint="--strict")
    try:
        code = run_with_kafka(settings, _run(inputs, layout, settings, "per-type" if per_type else "mixed", rate,
                                             strict))
    except HistoryError as exc:
        raise ConfigError(f"error: {exc}") from None
    raise typer.Exit(code)


async def _run(inputs: list[Path], layout: CsvLayout, settings: Settings, mode: str, rate: float | None,
               strict: bool) -> int:
    from streams.kafka import ensure_topics
    from streams.local.publish import Publisher

    publisher = Publisher(settings, "per-type" if mode == "per-type" else "mixed")
    if strict:
        checked = await publish_files(inputs, layout, publisher, None, err, dry_run=True)
        if checked.bad:
            count = len(checked.bad)
            err.print(f"tierstream: --strict: {count:,} bad row{'s' if count != 1 else ''}; nothing published",
                      markup=False,
                      soft_wrap=True)
            return 1
    await ensure_topics(settings)
    async with publisher:
        stats = await publish_files(inputs, layout, publisher, rate, err)
    _summary(stats, publisher)
    if stats.rows and len(stats.bad) == stats.rows:
        path, first = stats.bad[0]
        err.print(f"tierstream: error: {nothing_read(first._replace(source=first.source or path), stats.rows)}",
                  markup=False, soft_wrap=True)
        return 2
    return 0


def _summary(stats: BackfillStats, publisher: Publisher) -> None:
    if len(stats.bad) > MAX_REPORTED:
        err.print(f"... and {len(stats.bad) - MAX_REPORTED:,} more bad rows", markup=False, soft_wrap=True)
    topics = ", ".join(f"{name} {n:,}" for name, n in publisher.by_topic.items()) or "nothing"
    err.print(f"rows read {stats.rows:,}; published {publisher.sent:,} ({topics}); "
              f"skipped {len(stats.bad):,} bad rows", markup=False, soft_wrap=True)
