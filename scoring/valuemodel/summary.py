"""Purchase logs and the Buy-Till-You-Die (BTYD) summary of each customer.

Days are integer epoch days. A customer's purchases on one day count as one
purchase day whose amount is the day's total, as in lifetimes'
`summary_data_from_transaction_data(freq="D")`.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from scoring.valuemodel.arrays import BoolArray, FloatArray, IntArray

History = Sequence[tuple[int, float]]


@dataclass(frozen=True)
class PurchaseLog:
    """All purchase days of `n_customers` customers, one row per (customer, day).

    Invariants: rows are sorted by (customer, day) with no repeated pair;
    `customer` indexes the histories the log was built from (0..n_customers-1).
    """

    customer: IntArray
    day: IntArray
    amount: FloatArray
    n_customers: int


@dataclass(frozen=True)
class Summary:
    """BTYD summary at `end_day` of the customers who had bought by then.

    `customer` indexes the purchase log; `x` is repeat purchase days, `t_x` days
    from first to last purchase day, `T` days from first purchase day to
    `end_day`; `mean_repeat_value` is the mean day total over repeat days (0
    when x == 0) and `total_value` the spend of all days up to `end_day`.
    """

    customer: IntArray
    x: FloatArray
    t_x: FloatArray
    T: FloatArray
    mean_repeat_value: FloatArray
    total_value: FloatArray

    @property
    def recency(self) -> FloatArray:
        """Days since the last purchase day (T - t_x)."""
        return self.T - self.t_x


def purchase_log(histories: Sequence[History]) -> PurchaseLog:
    """Flatten per-customer (day, amount) lists; same-day amounts are summed."""
    sizes = [len(h) for h in histories]
    customer = np.repeat(np.arange(len(histories), dtype=np.int64), sizes)
    rows = [row for h in histories for row in h]
    day = np.array([int(d) for d, _ in rows], dtype=np.int64)
    amount = np.array([float(a) for _, a in rows], dtype=np.float64)
    return purchase_log_of(customer, day, amount, len(histories))


def log_of(transactions_by_customer: Mapping[Any, History] | PurchaseLog) -> PurchaseLog:
    """The purchase log of per-customer (day, amount) lists (`purchase_log`), or the log itself."""
    if isinstance(transactions_by_customer, PurchaseLog):
        return transactions_by_customer
    return purchase_log(list(transactions_by_customer.values()))


def purchase_log_of(customer: IntArray, day: IntArray, amount: FloatArray, n: int) -> PurchaseLog:
    """The log of purchase rows (customer index 0..n-1, day, amount) in history order (each customer's rows
    together, as `purchase_log` flattens them); same-day amounts are summed in that order."""
    if not _sorted(customer, day):  # a reader's log comes in (customer, day) order: no sort to pay for
        order = np.lexsort((day, customer))
        customer, day, amount = customer[order], day[order], amount[order]
    starts = _group_starts(customer, day)
    totals = np.add.reduceat(amount, starts) if starts.size else amount[:0]
    return PurchaseLog(customer[starts], day[starts], totals, n)


def _sorted(customer: IntArray, day: IntArray) -> bool:
    """Whether the rows are in (customer, day) order already (the stable lexsort would leave them as they are)."""
    if customer.size < 2:
        return True
    step = customer[1:] - customer[:-1]
    return bool((step >= 0).all() and ((step > 0) | (day[1:] >= day[:-1])).all())


def _group_starts(customer: IntArray, day: IntArray) -> IntArray:
    """Row indexes where a new (customer, day) pair starts; rows are sorted."""
    new = np.ones(customer.size, dtype=np.bool_)
    new[1:] = (customer[1:] != customer[:-1]) | (day[1:] != day[:-1])
    return np.flatnonzero(new).astype(np.int64)


def summarise(log: PurchaseLog, end_day: int) -> Summary:
    """The BTYD summary of purchase days on or before `end_day` (inclusive)."""
    keep = log.day <= end_day
    customer, day, amount = log.customer[keep], log.day[keep], log.amount[keep]
    ids, first, count = np.unique(customer, return_index=True, return_counts=True)
    if ids.size == 0:
        empty = np.zeros(0)
        return Summary(ids.astype(np.int64), empty, empty, empty, empty, empty)
    total = np.add.reduceat(amount, first)
    x = (count - 1).astype(np.float64)
    repeat_spend = total - amount[first]
    mean_repeat = np.where(x > 0, repeat_spend / np.maximum(x, 1.0), 0.0)
    t_x = (day[first + count - 1] - day[first]).astype(np.float64)
    T = (end_day - day[first]).astype(np.float64)
    return Summary(ids.astype(np.int64), x, t_x, T, mean_repeat, total)


def bought_between(log: PurchaseLog, start_day: int, end_day: int) -> BoolArray:
    """Per customer of the log: any purchase day in (start_day, end_day]."""
    inside = (log.day > start_day) & (log.day <= end_day)
    flags = np.zeros(log.n_customers, dtype=np.bool_)
    flags[log.customer[inside]] = True
    return flags


def window_activity(log: PurchaseLog, end_day: int, window_days: int) -> tuple[FloatArray, FloatArray]:
    """Per customer: purchase days and spend in (end_day - window_days, end_day]."""
    inside = (log.day > end_day - window_days) & (log.day <= end_day)
    counts = np.bincount(log.customer[inside], minlength=log.n_customers)
    spend = np.bincount(log.customer[inside], weights=log.amount[inside], minlength=log.n_customers)
    return counts.astype(np.float64), spend.astype(np.float64)
