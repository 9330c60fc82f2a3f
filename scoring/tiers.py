"""Tier assignment with hysteresis: scores wobbling at a boundary never flap.

Entering a higher tier needs its threshold. Leaving a tier needs the score
to fall below the tier's threshold minus `hysteresis_margin`; the customer
then lands in the highest lower tier whose threshold minus the margin the
score still reaches. A downgrade may also wait `min_dwell_days` in the tier.
"""

from __future__ import annotations

from typing import NamedTuple

from scoring.config import ScoringConfig, derived


class _Ladder(NamedTuple):
    """The tiers of a config, for the scoring path: names, rank by name, and (name, min_score) in order."""

    names: tuple[str, ...]
    rank: dict[str, int]
    steps: tuple[tuple[str, float], ...]


# the last (tiers, ladder) looked up, replaced whole (so read safely from any thread): one config scores a run
_last: tuple[object, _Ladder | None] = (None, None)


def _ladder(config: ScoringConfig) -> _Ladder:
    global _last  # noqa: PLW0603 - a memo, see above
    tiers = config.tiers
    last = _last
    if last[0] is tiers and last[1] is not None:
        return last[1]
    ladder = derived(
        tiers,
        "ladder",
        lambda: _Ladder(
            tuple(t.name for t in tiers),
            {t.name: i for i, t in reversed(list(enumerate(tiers)))},  # the first of a name, as `index`
            tuple((t.name, t.min_score) for t in tiers),
        ),
    )
    _last = (tiers, ladder)
    return ladder


def raw_tier(score: float, config: ScoringConfig) -> str:
    """The tier the score qualifies for with no history (the last tier takes all)."""
    steps = _ladder(config).steps
    for name, min_score in steps:
        if score >= min_score:
            return name
    return steps[-1][0]


def tier_rank(name: str, config: ScoringConfig) -> int:
    """0 for the top tier, larger further down; unknown tiers rank below all."""
    ladder = _ladder(config)
    return ladder.rank.get(name, len(ladder.names))


def assign_tier(
    score: float,
    current: str | None,
    since_day: int | None,
    today: int,
    config: ScoringConfig,
) -> str:
    """The tier for `score` given the current tier and the day it was entered."""
    candidate = raw_tier(score, config)
    if current is None:
        return candidate
    ladder = _ladder(config)
    rank = ladder.rank
    now = rank.get(current)
    if now is None:
        return candidate
    if rank[candidate] <= now:
        return candidate  # same or higher: entering needs only the threshold
    if since_day is not None and today - since_day < config.min_dwell_days:
        return current
    margin = config.hysteresis_margin
    steps = ladder.steps
    for name, min_score in steps[now:]:
        if score >= min_score - margin:
            return name
    return steps[-1][0]
