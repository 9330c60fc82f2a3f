"""Satisfaction grade: five levels from dissatisfaction points, with an explanation.

Points (all >= 0, `satisfaction.*`): complaints (the decayed severity sum the score uses, halving
every `complaint_half_life_days`) x `complaint_points`; the window's return rate above
`return_tolerance` x `return_points`; decayed enquiries x `enquiry_points`; and
`recent_complaint_points` when the last complaint is at most `recent_days` old. The grade: at most
`grade_cuts[0]` points and `very_satisfied_min_purchases` purchases in the window: very_satisfied;
else at most each next cut: satisfied, neutral, disappointed; above the last: very_disappointed.
"""

from __future__ import annotations

from typing import NamedTuple

from scoring.config import ScoringConfig
from scoring.fold import window_start
from scoring.offering_config import GRADES
from scoring.rfm import Score
from scoring.state import C_COUNT, CustomerState

TERMS = ("complaints", "returns", "enquiries", "recent_complaint")


class Satisfaction(NamedTuple):
    """A grade (one of `GRADES`) and its dissatisfaction points; `values` and `term_points` are each term's
    input and points, in `TERMS` order (complaint weight, return rate, enquiry weight, days since the last
    complaint)."""

    grade: str
    points: float
    values: tuple[float, float, float, float] = (0.0, 0.0, 0.0, 0.0)
    term_points: tuple[float, float, float, float] = (0.0, 0.0, 0.0, 0.0)

    @property
    def components(self) -> tuple[tuple[str, float, float], ...]:
        """(name, input value, points) of each term, rounded as published (inputs to 4 places, points to 2)."""
        return tuple(
            (n, round(v, 4), round(p, 2)) for n, v, p in zip(TERMS, self.values, self.term_points, strict=True)
        )

    def explanation(self) -> str:
        """The grade in words: each term that costs points, or why none does."""
        if not self.points:  # every term is >= 0, so none costs anything (most customers: skip the rounding)
            return f"{self.grade}: no complaint, returns within tolerance"
        parts = [_describe(name, value, points) for name, value, points in self.components if points]
        return f"{self.grade}: " + ("; ".join(parts) if parts else "no complaint, returns within tolerance")


def _describe(name: str, value: float, points: float) -> str:
    if name == "returns":
        return f"return rate {value:.0%} -{points:.1f}"
    if name == "recent_complaint":
        return f"complaint {value:.0f} days ago -{points:.1f}"
    return f"{name} {value:.2f} (decayed) -{points:.1f}"


def grade_rank(grade: str) -> int:
    """0 for very_satisfied ... 4 for very_disappointed."""
    return GRADES.index(grade)


def last_complaint_day(state: CustomerState, today: int, config: ScoringConfig) -> int | None:
    """The latest day in the window, up to `today`, with a complaint."""
    start = window_start(today, config)
    days = [day for day, b in state.buckets.items() if b[C_COUNT] and start <= day <= today]
    return max(days) if days else None


def grade(state: CustomerState, s: Score, config: ScoringConfig) -> Satisfaction:
    """The satisfaction of a customer scored `s` (as of `s.day`)."""
    c = config.satisfaction
    excess = max(0.0, s.return_rate - config.return_tolerance)
    if not (s.complaints or excess or s.enquiry_weight):  # most customers: nothing against them
        return Satisfaction(_grade_of(0.0, s.frequency, config), 0.0)
    age = None
    if s.complaints:
        last = last_complaint_day(state, s.day, config)
        age = None if last is None else s.day - last
    recent = c.recent_complaint_points if age is not None and age <= c.recent_days else 0.0
    terms = (
        s.complaint_weight * c.complaint_points,
        excess * c.return_points,
        s.enquiry_weight * c.enquiry_points,
        recent,
    )
    points = round(sum(terms), 2)
    values = (s.complaint_weight, s.return_rate, s.enquiry_weight, float(age or 0))
    return Satisfaction(_grade_of(points, s.frequency, config), points, values, terms)


def _grade_of(points: float, purchases: int, config: ScoringConfig) -> str:
    cuts = config.satisfaction.grade_cuts
    if points <= cuts[0] and purchases >= config.satisfaction.very_satisfied_min_purchases:
        return GRADES[0]
    for cut, name in zip(cuts[1:], GRADES[1:4], strict=True):
        if points <= cut:
            return name
    return GRADES[4]
