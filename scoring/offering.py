"""The three offering answers of an evaluated customer: potential and cell, satisfaction, proposition.

A function of the state, its evaluation and the value model's figures only, so the stream's
decisions, its snapshots, Redis, the API and replay's CSV all show the same answers.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, NamedTuple

from scoring.config import ScoringConfig
from scoring.potential import Potential, assess_potential
from scoring.proposition import Proposition, Situation, propose, with_category
from scoring.rfm import Score
from scoring.satisfaction import Satisfaction, grade
from scoring.state import CustomerState

if TYPE_CHECKING:
    from scoring.affinity import Affinity
    from scoring.valuemodel.scalar import CustomerValue


class Offering(NamedTuple):
    potential: Potential
    satisfaction: Satisfaction
    proposition: Proposition


def assess_offering(
    state: CustomerState,
    s: Score,
    tier: str,
    segment: str,
    at_risk: bool,
    value: CustomerValue | None,
    config: ScoringConfig,
    potential: Potential | None = None,
    satisfaction: Satisfaction | None = None,
    affinity: Affinity | None = None,
) -> Offering:
    """The offering answers of `state` scored `s` (as of `s.day`) in `tier` and `segment` (`potential`,
    `satisfaction`: already assessed by the caller; `affinity`: the value model's, which names the category
    of a cross-sell)."""
    potential = potential or assess_potential(s, tier, value, config)
    satisfaction = satisfaction or grade(state, s, config)
    situation = Situation(tier, potential.cell, segment, satisfaction.grade, at_risk)
    return Offering(potential, satisfaction, with_category(propose(situation, config), state, affinity, config))
