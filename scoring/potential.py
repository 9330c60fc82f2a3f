"""Potential: how likely a customer is to be worth more soon, and the value x potential cell.

The score is in [0, 1], rounded to 4 decimals. `trend` is the share of the last two `trend_days`
periods' spend that fell in the latest one (0.5: flat, 1: all recent or a new customer, 0: nothing
bought in either).

- With a value model: `P(alive) x (w x trend + (1 - w) x reach)`, where `reach` places the spend the
  model predicts (CLV over its horizon, scaled to the window) on the monetary scale the score uses:
  the percentile among the active customers under a calibration, else (M rank - 1) / 4 from the
  configured cut points. A customer whose predicted spend would rank with the best reaches 1.
- Without one (the rule-based fallback): `w x trend + (1 - w) x (F - 1) / 4`, F the score's
  frequency rank (1-5): a customer buying more often than before, and often, has potential.

`w` is `potential.trend_weight`. The cell: high value when the tier is in `potential.high_value_tiers`
(empty: the upper half of the ladder), high potential when the score reaches `potential.threshold`.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, NamedTuple

from scoring.calibration import position
from scoring.config import ScoringConfig, derived
from scoring.rfm import Score, rank_at_least

if TYPE_CHECKING:
    from scoring.valuemodel.scalar import CustomerValue

DAYS_PER_MONTH = 30


class Potential(NamedTuple):
    """A potential score in [0, 1], its cell and the basis: `model` or `rules`."""

    score: float
    cell: str
    basis: str


def trend_share(s: Score) -> float:
    """Share of the last two periods' spend that fell in the latest one; 0 with no spend in either."""
    total = s.recent_spend + s.previous_spend
    return s.recent_spend / total if total > 0 else 0.0


def reach(predicted: float, config: ScoringConfig) -> float:
    """Where a window's net spend of `predicted` (base currency) would place on the score's monetary scale, 0-1."""
    calibration = config.calibration
    if calibration is not None:
        return position(calibration.monetary_cents, round(predicted * 100))
    return (rank_at_least(predicted, config.monetary_amounts) - 1) / 4


def potential_score(s: Score, value: CustomerValue | None, config: ScoringConfig) -> float:
    """The potential score of a customer scored `s` (with the model's figures `value`, when any)."""
    w = config.potential.trend_weight
    if value is None:
        raw = w * trend_share(s) + (1 - w) * (s.f - 1) / 4
    else:
        predicted = value.clv * config.window_days / (DAYS_PER_MONTH * config.clv_horizon_months)
        raw = value.p_alive * (w * trend_share(s) + (1 - w) * reach(predicted, config))
    return round(min(1.0, max(0.0, raw)), 4)


def high_value_tiers(config: ScoringConfig) -> tuple[str, ...]:
    """The tiers that count as high value: configured, else the upper half of the ladder (at least one)."""
    global _last  # noqa: PLW0603 - a memo: one config scores a whole run
    last = _last
    if last[0] is config:
        return last[1]
    tiers = derived(config, "high_value_tiers", lambda: _high_value_tiers(config))
    _last = (config, tiers)  # replaced whole, so read safely from any thread
    return tiers


_last: tuple[object, tuple[str, ...]] = (None, ())


def _high_value_tiers(config: ScoringConfig) -> tuple[str, ...]:
    names = config.tier_names
    return config.potential.high_value_tiers or names[: max(1, len(names) // 2)]


def cell_of(tier: str, potential: float, config: ScoringConfig) -> str:
    """The value x potential cell's name for a tier and a potential score."""
    cells = config.potential.cells
    high = potential >= config.potential.threshold
    if tier in high_value_tiers(config):
        return cells.high_value_high_potential if high else cells.high_value_low_potential
    return cells.low_value_high_potential if high else cells.low_value_low_potential


def assess_potential(s: Score, tier: str, value: CustomerValue | None, config: ScoringConfig) -> Potential:
    p = potential_score(s, value, config)
    return Potential(p, cell_of(tier, p, config), "rules" if value is None else "model")
