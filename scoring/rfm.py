"""Score a state as of a day: R, F, M (1-5), adjustments, composite 0-100.

The composite is `sum of R/F/M points - return penalty - complaint penalty
+ tenure bonus + enquiry points`, clamped to [0, 100] and rounded to 0.01.
Every term is listed in `Score.components`, so a score always explains itself.
"""

from __future__ import annotations

from bisect import bisect_left, bisect_right
from collections.abc import Sequence
from typing import NamedTuple

from scoring.config import ScoringConfig
from scoring.fold import window_start
from scoring.state import C_COUNT, C_SEV, E_COUNT, P_CENTS, P_COUNT, R_CENTS, R_COUNT, CustomerState, DecayedSlot


class Component(NamedTuple):
    """One term of the composite: its input value and the points it adds (negative: costs)."""

    name: str
    value: float
    points: float


class Window(NamedTuple):
    """Sums over the rolling window, in cents and counts."""

    purchase_cents: int
    purchases: int
    return_cents: int
    returns: int
    complaints: int
    recent_cents: int  # purchases in the last `trend_days`
    enquiries: int
    previous_cents: int  # purchases in the `trend_days` before those


COMPONENT_NAMES = ("recency", "frequency", "monetary", "returns", "complaints", "tenure", "enquiries")


class Score(NamedTuple):
    """A customer's score as of `day` (epoch day). Money in base currency units. Immutable.

    `points` holds each component's points in `COMPONENT_NAMES` order; their
    sum, clamped to [0, 100] and rounded to 0.01, is `composite`.
    """

    day: int
    composite: float
    r: int
    f: int
    m: int
    recency_days: int | None
    frequency: int
    monetary: float
    returns_amount: float
    return_rate: float
    complaints: int
    complaint_weight: float
    enquiry_weight: float
    tenure_days: int | None
    annual_value: float
    recent_spend: float
    points: tuple[float, ...]
    previous_spend: float = 0.0

    @property
    def components(self) -> tuple[Component, ...]:
        """The explanation: each component's input value and the points it adds."""
        years = (self.tenure_days or 0) // 365
        values = (
            self.r,
            self.f,
            self.m,
            self.return_rate,
            round(self.complaint_weight, 4),
            years,
            round(self.enquiry_weight, 4),
        )
        return tuple(Component(n, v, p) for n, v, p in zip(COMPONENT_NAMES, values, self.points, strict=True))


def rank_at_most(value: float, cuts: Sequence[float]) -> int:
    """5 when value <= cuts[0], ... 1 when value > cuts[-1] (smaller is better); cuts ascending."""
    return 5 - bisect_left(cuts, value)


def rank_at_least(value: float, cuts: Sequence[float]) -> int:
    """1 + the number of cut points that value reaches (larger is better); cuts ascending."""
    return 1 + bisect_right(cuts, value)


def decayed(state: CustomerState, today: int, slot: DecayedSlot, half_life: int, start: int) -> float:
    """Sum of a bucket counter over days in [start, today], each halved every `half_life` whole days of age."""
    total = 0.0
    for day, bucket in state.buckets.items():
        if bucket[slot] and start <= day <= today:
            total += bucket[slot] * 0.5 ** ((today - day) // half_life)
    return total


def window_sums(state: CustomerState, today: int, config: ScoringConfig) -> Window:
    start = window_start(today, config)
    recent_from = today - config.trend_days + 1
    previous_from = recent_from - config.trend_days
    pc = pn = rc = rn = cn = recent = en = previous = 0
    for day, b in state.buckets.items():
        if start <= day <= today:
            pc += b[P_CENTS]
            pn += b[P_COUNT]
            rc += b[R_CENTS]
            rn += b[R_COUNT]
            cn += b[C_COUNT]
            en += b[E_COUNT]
            if day >= recent_from:
                recent += b[P_CENTS]
            elif day >= previous_from:
                previous += b[P_CENTS]
    return Window(pc, pn, rc, rn, cn, recent, en, previous)


def score(state: CustomerState, today: int, config: ScoringConfig) -> Score:
    """Score `state` as of epoch day `today`. Pure; depends only on its arguments."""
    w = window_sums(state, today, config)
    recency = None if state.last_day is None else max(0, today - state.last_day)
    tenure = None if state.first_day is None else max(0, today - state.first_day)
    net = (w.purchase_cents - w.return_cents) / 100
    r = 1 if recency is None else rank_at_most(recency, config.recency_days)
    f = rank_at_least(w.purchases, config.frequency_counts)
    m = rank_at_least(net, config.monetary_amounts)
    rate = w.return_cents / w.purchase_cents if w.purchase_cents else (1.0 if w.return_cents else 0.0)
    start = window_start(today, config)
    c_weight = decayed(state, today, C_SEV, config.complaint_half_life_days, start) if w.complaints else 0.0
    e_weight = decayed(state, today, E_COUNT, config.enquiry_half_life_days, start) if w.enquiries else 0.0
    points = _points(config, r, f, m, rate, c_weight, e_weight, tenure)
    total = sum(points)
    # round() of a float costs ~0.3 us (correct rounding): skipped where it cannot change anything
    composite = 0.0 if total <= 0.0 else 100.0 if total >= 100.0 else round(total, 2)
    annual = max(0.0, net) * config.value_margin * 365 / config.window_days
    return Score(
        today,
        composite,
        r,
        f,
        m,
        recency,
        w.purchases,
        w.purchase_cents / 100,
        w.return_cents / 100,
        round(rate, 4) if rate else 0.0,
        w.complaints,
        c_weight,
        e_weight,
        tenure,
        round(annual, 2) if annual else 0.0,
        w.recent_cents / 100,
        points,
        w.previous_cents / 100,
    )


def _points(
    c: ScoringConfig,
    r: int,
    f: int,
    m: int,
    rate: float,
    complaints: float,
    enquiries: float,
    tenure: int | None,
) -> tuple[float, ...]:
    wr, wf, wm = c.weights
    years = (tenure or 0) // 365
    returns = min(c.return_penalty_max, max(0.0, rate - c.return_tolerance) * c.return_penalty_per_rate)
    enquiry = max(-c.enquiry_points_max, min(c.enquiry_points_max, enquiries * c.enquiry_points))
    return (
        wr * (r - 1) / 4,
        wf * (f - 1) / 4,
        wm * (m - 1) / 4,
        -returns,
        -min(c.complaint_penalty_max, complaints * c.complaint_points_per_severity),
        min(c.tenure_points_max, years * c.tenure_points_per_year),
        enquiry,
    )
