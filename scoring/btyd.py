"""Buy-Till-You-Die summary of a state, with the lifetimes library's definitions.

As `lifetimes.utils.summary_data_from_transaction_data(freq="D")` with the
observation end on day `as_of`: x = distinct purchase days - 1, t_x = days
from the first to the last purchase day, T = days from the first purchase
day to `as_of`, mean_repeat_value = mean of per-day totals over repeat days
(0 when x is 0). Returns are not purchases and do not enter it.
"""

from __future__ import annotations

from dataclasses import dataclass

from scoring.money import SCALE
from scoring.state import CustomerState


@dataclass(frozen=True, slots=True)
class BtydSummary:
    x: int
    t_x: int
    T: int
    mean_repeat_value: float


def btyd_summary(state: CustomerState, as_of: int) -> BtydSummary | None:
    """The summary as of epoch day `as_of`; None for a customer with no purchase."""
    if state.first_day is None or state.last_day is None:
        return None
    x = state.purchase_days - 1
    repeat_e4 = state.total_e4 - state.first_day_e4  # exact: one division, no rounding per line or day
    mean = repeat_e4 / (SCALE * x) if x > 0 else 0.0
    return BtydSummary(x, state.last_day - state.first_day, as_of - state.first_day, mean)
