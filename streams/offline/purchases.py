"""Read purchase histories for `tierstream fit` and `evaluate`: the shell side of the value model.

The value model (`scoring.valuemodel`) takes per customer a sorted list of
(epoch day, amount in base currency). This module reads history files with
the same layouts as `replay` and says what it left out: only purchases count
(a negative amount in a purchases log is a refund, a return; complaints and
enquiries are not purchases), a repeated event id counts once (as the stream
applies it once), and an amount in a currency without a rate in the config
cannot be valued.
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass, field
from pathlib import Path

from scoring.config import ScoringConfig
from scoring.events import MS_PER_DAY, CoreEvent, Kind
from scoring.fold import to_base_e4
from scoring.money import money_float
from streams.offline.history import BadRow, CsvLayout, is_jsonl, read_history

History = dict[str, list[tuple[int, float]]]


@dataclass
class PurchaseRead:
    """Purchases per customer (sorted by day) and the count of every row left out, by reason.

    `later`: purchases after the `until_day` asked for (not an error);
    `unreadable`: the first bad row of the first input none of whose rows could
    be read (wrong columns or format), else None.
    """

    histories: History = field(default_factory=dict)
    purchases: int = 0
    bad: int = 0
    returns: int = 0
    not_purchases: int = 0
    duplicates: int = 0
    no_rate: int = 0
    later: int = 0
    unreadable: tuple[Path, BadRow] | None = None

    def left_out(self) -> str:
        """'8,905 returns (negative amounts or return rows), 135,080 bad rows' or "" when nothing was."""
        parts = [
            (self.returns, "returns (negative amounts or return rows)"),
            (self.not_purchases, "complaints and enquiries"),
            (self.duplicates, "repeated event ids"),
            (self.no_rate, "purchases in a currency without a rate (fx_rates in the config)"),
            (self.bad, "bad rows (see `tierstream replay --strict` to find them)"),
        ]
        return ", ".join(f"{n:,} {what}" for n, what in parts if n)


def read_purchases(
    inputs: list[Path], layout: CsvLayout, until_day: int | None = None, config: ScoringConfig | None = None
) -> PurchaseRead:
    """Every purchase of `inputs` on or before `until_day` (all when None), in base currency.

    Raises streams.offline.history.HistoryError when a file as a whole cannot be read.
    """
    config = config or ScoringConfig()
    found: dict[str, list[tuple[int, float]]] = defaultdict(list)
    read = PurchaseRead()
    for path in inputs:
        seen: dict[str, set[str]] | None = defaultdict(set) if layout.event_id or is_jsonl(path) else None
        first_bad, good = None, 0
        for row in read_history(path, layout):
            if isinstance(row, BadRow):
                read.bad += 1
                first_bad = first_bad or row
                continue
            good += 1
            _add(read, found, row.customer_id, row.event, seen, until_day, config)
        if first_bad is not None and not good and read.unreadable is None:
            read.unreadable = (path, first_bad)
    for purchases in found.values():
        purchases.sort()
    read.histories = dict(found)
    return read


def _add(
    read: PurchaseRead,
    found: dict[str, list[tuple[int, float]]],
    customer: str,
    event: CoreEvent,
    seen: dict[str, set[str]] | None,
    until_day: int | None,
    config: ScoringConfig,
) -> None:
    if seen is not None:
        ids = seen[customer]
        if event.event_id in ids:
            read.duplicates += 1
            return
        ids.add(event.event_id)
    if event.kind is not Kind.PURCHASE:
        if event.kind is Kind.RETURN:
            read.returns += 1
        else:
            read.not_purchases += 1
        return
    amount = to_base_e4(event, config)
    if amount is None:
        read.no_rate += 1
        return
    day = event.at_ms // MS_PER_DAY
    if until_day is not None and day > until_day:
        read.later += 1
        return
    read.purchases += 1
    found[customer].append((day, money_float(amount)))
