"""Options shared by the commands that read a history file (replay, calibrate, fit, evaluate, backfill, bootstrap)."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any

import typer

from streams.offline.history import DEFAULT_TIMEZONE, CsvLayout, HistoryError, time_zone

Inputs = Annotated[list[Path], typer.Argument(
    help="CSV or JSONL (.jsonl) histories; '-' reads stdin.", exists=True, dir_okay=False, allow_dash=True)]
CustomerCol = Annotated[str, typer.Option(help="Customer id column.")]
TimeCol = Annotated[str, typer.Option(help="Event time column (ISO or YYYYMMDD).")]
AmountCol = Annotated[str, typer.Option(help="Amount column (negative in a purchases log: a refund); "
                                             "'none' for a log without amounts.")]
TypeCol = Annotated[str | None, typer.Option(help="Event type column of a mixed log (purchase, return, "
                                                  "complaint, enquiry).")]
IdCol = Annotated[str | None, typer.Option(help="Event id column; rows without one are distinct events.")]
CurrencyCol = Annotated[str | None, typer.Option(help="Currency column (default: base currency).")]
QuantityCol = Annotated[str | None, typer.Option(help="Quantity column: amount = amount x quantity.")]
ItemCol = Annotated[str | None, typer.Option(
    help="Item (product code) column of a purchase: what the category affinity learns and proposes when there is "
         "no category column.")]
CategoryCol = Annotated[str | None, typer.Option(help="Item category column of a purchase (category affinity).")]
SeverityCol = Annotated[str | None, typer.Option(help="Complaint severity column (1-5; default 3).")]
Delimiter = Annotated[str, typer.Option(help="Field delimiter, or 'whitespace'.")]
Columns = Annotated[str | None, typer.Option(help="Comma-separated names for a file without header.")]
DateFormat = Annotated[str | None, typer.Option(help="strptime format of the time column.")]
Timezone = Annotated[str, typer.Option(help="IANA time zone of times without an offset, e.g. Europe/London "
                                            "(default UTC; a date without a time is that calendar day).")]


def csv_layout(
    customer_col: str = "customer_id", time_col: str = "occurred_at", amount_col: str = "amount",
    type_col: str | None = None, id_col: str | None = None, currency_col: str | None = None,
    quantity_col: str | None = None, severity_col: str | None = None, delimiter: str = ",",
    columns: str | None = None, date_format: str | None = None, timezone: str = DEFAULT_TIMEZONE,
    item_col: str | None = None, category_col: str | None = None, **_: Any,
) -> CsvLayout:
    """The CsvLayout the shared options describe (extra keyword arguments are ignored)."""
    try:
        time_zone(timezone)
    except HistoryError as exc:
        raise typer.BadParameter(str(exc), param_hint="--timezone") from None
    return CsvLayout(
        customer=customer_col, time=time_col, amount=None if amount_col.lower() == "none" else amount_col,
        type=type_col, event_id=id_col, currency=currency_col, quantity=quantity_col, severity=severity_col,
        delimiter=delimiter,
        columns=tuple(c.strip() for c in columns.split(",")) if columns else (), date_format=date_format,
        timezone=timezone, item=item_col, category=category_col)
