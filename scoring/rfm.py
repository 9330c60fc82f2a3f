"""Score a state as of a day: R, F, M (1-5), adjustments, composite 0-100.

The composite is `sum of R/F/M points - return penalty - complaint penalty
+ tenure bonus + enquiry points`, clamped to [0, 100] and rounded to 0.01.
Every term is listed in `Score.components`, so a score always explains itself.

R/F/M points: with a calibration in force (`config.calibration`), weight x the
customer's percentile position among the active customers (recency: fewer
days is better; see `scoring.calibration.position`), and the R/F/M ranks are
the quintiles of those positions. Otherwise (absolute tiering, or no
calibration yet) the ranks come from the configured cut points and the points
are weight x (rank - 1) / 4.
"""

from __future__ import annotations

from bisect import bisect_left, bisect_right
from collections.abc import Mapping, Sequence
from typing import NamedTuple

from scoring.calibration import PercentileTables, position, quintile_rank
from scoring.config import ScoringConfig
from scoring.fold import window_start
from scoring.money import SCALE, cents_of
from scoring.state import C_COUNT, C_SEV, E_COUNT, P_COUNT, P_E4, R_COUNT, R_E4, Bucket, CustomerState, DecayedSlot


class Component(NamedTuple):
    """One term of the composite: its input value and the points it adds (negative: costs)."""

    name: str
    value: float
    points: float


class Window(NamedTuple):
    """Sums over the rolling window: money in 1/10,000 of the base currency (`scoring.money`), and counts."""

    purchase_e4: int
    purchases: int
    return_e4: int
    returns: int
    complaints: int
    recent_e4: int  # purchases in the last `trend_days`
    enquiries: int
    previous_e4: int  # purchases in the `trend_days` before those


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
        values = self.component_values()
        return tuple(Component(n, v, p) for n, v, p in zip(COMPONENT_NAMES, values, self.points, strict=True))

    def component_values(self) -> tuple[float, ...]:
        """Each component's input value, in `COMPONENT_NAMES` order (what `components` pairs with the points)."""
        return (
            self.r,
            self.f,
            self.m,
            self.return_rate,
            round(self.complaint_weight, 4) if self.complaint_weight else self.complaint_weight,
            (self.tenure_days or 0) // 365,
            round(self.enquiry_weight, 4) if self.enquiry_weight else self.enquiry_weight,
        )


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
            pc += b[P_E4]
            pn += b[P_COUNT]
            rc += b[R_E4]
            rn += b[R_COUNT]
            cn += b[C_COUNT]
            en += b[E_COUNT]
            if day >= recent_from:
                recent += b[P_E4]
            elif day >= previous_from:
                previous += b[P_E4]
    return Window(pc, pn, rc, rn, cn, recent, en, previous)


def recency_position(calibration: PercentileTables, recency: int | None) -> float:
    """Calibrated R position in [0, 1]: about the share of active customers who bought longer ago."""
    return 0.0 if recency is None else 1.0 - position(calibration.recency_days, recency)


def calibrated_rfm(
    calibration: PercentileTables,
    weights: tuple[float, float, float],
    recency: int | None,
    purchases: int,
    net_cents: int,
) -> tuple[tuple[int, int, int], tuple[float, float, float]]:
    """(R, F, M ranks 1-5, R/F/M points) from percentile positions among the active customers; `net_cents` is the
    window's net spend in whole cents (`scoring.money.cents_of`), the unit of the calibration's tables."""
    wr, wf, wm = weights
    r = recency_position(calibration, recency)
    f = position(calibration.frequency, purchases)
    m = position(calibration.monetary_cents, net_cents)
    return (quintile_rank(r), quintile_rank(f), quintile_rank(m)), (wr * r, wf * f, wm * m)


def absolute_rfm(
    config: ScoringConfig, recency: int | None, purchases: int, net: float
) -> tuple[tuple[int, int, int], tuple[float, float, float]]:
    """(R, F, M ranks 1-5 from the configured cut points, R/F/M points)."""
    wr, wf, wm = config.weights
    r = 1 if recency is None else rank_at_most(recency, config.recency_days)
    f = rank_at_least(purchases, config.frequency_counts)
    m = rank_at_least(net, config.monetary_amounts)
    return (r, f, m), (wr * (r - 1) / 4, wf * (f - 1) / 4, wm * (m - 1) / 4)


def composite_of(points: Sequence[float]) -> float:
    """The composite of a score's points: their sum clamped to [0, 100], rounded to 0.01."""
    total = sum(points)
    # round() of a float costs ~0.3 us (correct rounding): skipped where it cannot change anything
    return 0.0 if total <= 0.0 else 100.0 if total >= 100.0 else round(total, 2)


class Inputs(NamedTuple):
    """What a score is made of, before R/F/M: the window's sums, recency and tenure (days), the return rate,
    the decayed complaint and enquiry weights, and the points after R/F/M (`adjustments`)."""

    window: Window
    recency: int | None
    tenure: int | None
    rate: float
    complaint_weight: float
    enquiry_weight: float
    adjustments: tuple[float, float, float, float]


def score_inputs(state: CustomerState, today: int, config: ScoringConfig) -> Inputs:
    """The inputs of `score(state, today, config)` (calibration plays no part in them)."""
    w = window_sums(state, today, config)
    recency = None if state.last_day is None else max(0, today - state.last_day)
    tenure = None if state.first_day is None else max(0, today - state.first_day)
    rate = w.return_e4 / w.purchase_e4 if w.purchase_e4 else (1.0 if w.return_e4 else 0.0)
    start = window_start(today, config)
    c_weight = decayed(state, today, C_SEV, config.complaint_half_life_days, start) if w.complaints else 0.0
    e_weight = decayed(state, today, E_COUNT, config.enquiry_half_life_days, start) if w.enquiries else 0.0
    return Inputs(w, recency, tenure, rate, c_weight, e_weight, adjustments(config, rate, c_weight, e_weight, tenure))


def _column_sums(
    buckets: Mapping[int, Bucket], start: int, today: int, recent_from: int, previous_from: int
) -> tuple[int, int, int, int, int, int, int, int] | None:
    """`window_sums`' figures in its order when every day is in [start, today] (the common case), summed by
    column (integers: the same sums); None otherwise (`window_sums` then)."""
    if not buckets or start > (earliest := min(buckets)) or max(buckets) > today:
        return None
    columns = tuple(zip(*buckets.values(), strict=True))
    pc = sum(columns[P_E4])
    recent = previous = 0
    if earliest >= recent_from:
        recent = pc
    else:
        for day, b in buckets.items():
            if day >= recent_from:
                recent += b[P_E4]
            elif day >= previous_from:
                previous += b[P_E4]
    return (
        pc,
        sum(columns[P_COUNT]),
        sum(columns[R_E4]),
        sum(columns[R_COUNT]),
        sum(columns[C_COUNT]),
        recent,
        sum(columns[E_COUNT]),
        previous,
    )


def score(state: CustomerState, today: int, config: ScoringConfig) -> Score:
    """Score `state` as of epoch day `today`. Pure; depends only on its arguments.

    `score_inputs`, `absolute_rfm` and `composite_of` inlined (this runs on every step): the same operations
    in the same order, so the same floats."""
    window_days = config.window_days
    start = today - window_days + 1  # window_start
    trend = config.trend_days
    recent_from = today - trend + 1
    previous_from = recent_from - trend
    sums = _column_sums(state.buckets, start, today, recent_from, previous_from) or window_sums(state, today, config)
    pc, pn, rc, _returns, cn, recent, en, previous = sums
    last, first = state.last_day, state.first_day
    recency = None if last is None else max(0, today - last)
    tenure = None if first is None else max(0, today - first)
    rate = rc / pc if pc else (1.0 if rc else 0.0)
    c_weight = decayed(state, today, C_SEV, config.complaint_half_life_days, start) if cn else 0.0
    e_weight = decayed(state, today, E_COUNT, config.enquiry_half_life_days, start) if en else 0.0
    net_e4 = pc - rc
    net = net_e4 / SCALE  # money_float
    calibration = config.calibration
    if calibration is None:
        wr, wf, wm = config.weights
        r = 1 if recency is None else 5 - bisect_left(config.recency_days, recency)  # rank_at_most
        f = 1 + bisect_right(config.frequency_counts, pn)  # rank_at_least
        m = 1 + bisect_right(config.monetary_amounts, net)
        points = (
            wr * (r - 1) / 4,
            wf * (f - 1) / 4,
            wm * (m - 1) / 4,
            *adjustments(config, rate, c_weight, e_weight, tenure),
        )
    else:
        (r, f, m), rfm = calibrated_rfm(calibration, config.weights, recency, pn, cents_of(net_e4))
        points = (*rfm, *adjustments(config, rate, c_weight, e_weight, tenure))
    total = sum(points)
    composite = 0.0 if total <= 0.0 else 100.0 if total >= 100.0 else round(total, 2)  # composite_of
    annual = max(0.0, net) * config.value_margin * 365 / window_days
    return Score(
        today,
        composite,
        r,
        f,
        m,
        recency,
        pn,
        pc / SCALE,
        rc / SCALE,
        round(rate, 4) if rate else 0.0,
        cn,
        c_weight,
        e_weight,
        tenure,
        round(annual, 2) if annual else 0.0,
        recent / SCALE,
        points,
        previous / SCALE,
    )


def adjustments(
    c: ScoringConfig,
    rate: float,
    complaints: float,
    enquiries: float,
    tenure: int | None,
) -> tuple[float, float, float, float]:
    """The points after R/F/M: returns, complaints (both <= 0), tenure, enquiries."""
    years = (tenure or 0) // 365
    returns = min(c.return_penalty_max, max(0.0, rate - c.return_tolerance) * c.return_penalty_per_rate)
    enquiry = max(-c.enquiry_points_max, min(c.enquiry_points_max, enquiries * c.enquiry_points))
    return (
        -returns,
        -min(c.complaint_penalty_max, complaints * c.complaint_points_per_severity),
        min(c.tenure_points_max, years * c.tenure_points_per_year),
        enquiry,
    )
