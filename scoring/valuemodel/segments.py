"""The customer segments the at-risk model is judged on.

`repeat`: x > 0 at the summary's end day; `repeat_top_value_third`: the
third of repeat buyers with the highest spend up to that day (rounded up,
ties by input order; in a log without amounts, where every spend is 0, the
most purchase days stand for the most value); `all`: every customer in the
summary.
"""

from __future__ import annotations

import math

import numpy as np

from scoring.valuemodel.arrays import BoolArray
from scoring.valuemodel.summary import Summary


def segments(s: Summary) -> dict[str, BoolArray]:
    """Masks over the summary's customers, by segment name."""
    repeat = s.x > 0
    value = s.total_value[repeat]
    order = np.argsort(-(value if value.any() else s.x[repeat]), kind="stable")
    top = np.zeros(int(repeat.sum()), dtype=np.bool_)
    top[order[: math.ceil(top.size / 3)]] = True
    top_third = np.zeros_like(repeat)
    top_third[np.flatnonzero(repeat)[top]] = True
    return {"repeat": repeat, "repeat_top_value_third": top_third, "all": np.ones_like(repeat)}
