"""Tier assignment with hysteresis: scores wobbling at a boundary never flap.

Entering a higher tier needs its threshold. Leaving a tier needs the score
to fall below the tier's threshold minus `hysteresis_margin`; the customer
then lands in the highest lower tier whose threshold minus the margin the
score still reaches. A downgrade may also wait `min_dwell_days` in the tier.
"""

from __future__ import annotations

from scoring.config import ScoringConfig


def raw_tier(score: float, config: ScoringConfig) -> str:
    """The tier the score qualifies for with no history (the last tier takes all)."""
    for tier in config.tiers:
        if score >= tier.min_score:
            return tier.name
    return config.tiers[-1].name


def tier_rank(name: str, config: ScoringConfig) -> int:
    """0 for the top tier, larger further down; unknown tiers rank below all."""
    names = config.tier_names
    return names.index(name) if name in names else len(names)


def assign_tier(
    score: float,
    current: str | None,
    since_day: int | None,
    today: int,
    config: ScoringConfig,
) -> str:
    """The tier for `score` given the current tier and the day it was entered."""
    candidate = raw_tier(score, config)
    if current is None or current not in config.tier_names:
        return candidate
    if tier_rank(candidate, config) <= tier_rank(current, config):
        return candidate  # same or higher: entering needs only the threshold
    if since_day is not None and today - since_day < config.min_dwell_days:
        return current
    for tier in config.tiers[tier_rank(current, config) :]:
        if score >= tier.min_score - config.hysteresis_margin:
            return tier.name
    return config.tiers[-1].name
