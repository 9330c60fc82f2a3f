"""Settings of the offering answers: value x potential cells, the satisfaction grade, propositions.

Validated as part of `ScoringConfig` (fields `potential`, `satisfaction`, `propositions`); the rules
that read them live in `scoring.potential`, `scoring.satisfaction` and `scoring.proposition`.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

GRADES = ("very_satisfied", "satisfied", "neutral", "disappointed", "very_disappointed")


class _Frozen(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


class CellNames(_Frozen):
    """The names of the four value x potential cells (what each kind of customer is offered)."""

    low_value_low_potential: str = Field(default="maintain", description="Low value, little potential.")
    low_value_high_potential: str = Field(
        default="develop", description="Low value, could become high value soon (entering it: PotentialChanged)."
    )
    high_value_high_potential: str = Field(default="invest", description="High value, worth high-value service.")
    high_value_low_potential: str = Field(default="harvest", description="High value, served at low cost.")

    @model_validator(mode="after")
    def _unique(self) -> CellNames:
        if len(set(self.names)) != 4:
            raise ValueError("the four cell names must differ")
        return self

    @property
    def names(self) -> tuple[str, str, str, str]:
        return (
            self.low_value_low_potential,
            self.low_value_high_potential,
            self.high_value_high_potential,
            self.high_value_low_potential,
        )


class PotentialConfig(_Frozen):
    """Potential score (0-1) and the value x potential cell (see `scoring.potential`)."""

    high_value_tiers: tuple[str, ...] = Field(
        default=(), description="Tiers that count as high value (empty: the upper half of the tier ladder)."
    )
    threshold: float = Field(default=0.6, ge=0, le=1, description="High potential when the score reaches this.")
    trend_weight: float = Field(
        default=0.5, ge=0, le=1, description="Share of the score from the spend trend (last trend_days vs before)."
    )
    cells: CellNames = Field(default_factory=CellNames)


class SatisfactionConfig(_Frozen):
    """Satisfaction grade from dissatisfaction points (see `scoring.satisfaction`)."""

    complaint_points: float = Field(default=5, ge=0, description="Points per decayed complaint severity point.")
    return_points: float = Field(default=100, ge=0, description="Points per unit of return rate above tolerance.")
    enquiry_points: float = Field(default=3, ge=0, description="Points per decayed enquiry.")
    recent_days: int = Field(default=30, ge=0, description="A complaint this many days old or less is recent.")
    recent_complaint_points: float = Field(default=10, ge=0, description="Extra points for a recent complaint.")
    grade_cuts: tuple[float, float, float, float] = Field(
        default=(0, 10, 25, 50),
        description="Points at most for very_satisfied, satisfied, neutral, disappointed (above: very_disappointed).",
    )
    very_satisfied_min_purchases: int = Field(
        default=2, ge=0, description="very_satisfied also needs this many purchases in the window."
    )
    alert_grade: str = Field(
        default="disappointed", description="A top-tier customer sliding to this grade or worse raises an alert."
    )

    @field_validator("grade_cuts")
    @classmethod
    def _ascending(cls, v: tuple[float, ...]) -> tuple[float, ...]:
        if list(v) != sorted(v):
            raise ValueError("cut points must be ascending")
        return v

    @field_validator("alert_grade")
    @classmethod
    def _grade(cls, v: str) -> str:
        if v not in GRADES:
            raise ValueError(f"unknown grade {v!r} (one of {', '.join(GRADES)})")
        return v


class PropositionRule(_Frozen):
    """When every filter matches (empty: any), propose `proposition`; the first matching rule wins."""

    name: str = Field(description="Rule name, unique.")
    proposition: str = Field(description="What to propose, e.g. upsell, cross_sell, loyalty_reward.")
    reason: str = Field(default="", description="Why, in words (the matched filters are appended).")
    tiers: tuple[str, ...] = Field(default=(), description="Current tier in this list (empty: any).")
    cells: tuple[str, ...] = Field(default=(), description="Value x potential cell in this list (empty: any).")
    segments: tuple[str, ...] = Field(default=(), description="Segment in this list (empty: any).")
    satisfaction: tuple[str, ...] = Field(default=(), description="Satisfaction grade in this list (empty: any).")
    at_risk: bool | None = Field(default=None, description="At-risk flag must be this (null: any).")


def _default_propositions(cells: CellNames | None = None) -> tuple[PropositionRule, ...]:
    r = PropositionRule
    rules = (
        r(
            name="service-review",
            proposition="service_review",
            satisfaction=GRADES[3:],
            reason="dissatisfied: repair the service before selling",
        ),
        r(
            name="account-review",
            proposition="account_review",
            segments=("bad_business",),
            reason="returns and complaints eat the margin",
        ),
        r(name="keep-at-risk", proposition="loyalty_reward", at_risk=True, reason="valuable and overdue"),
        r(name="develop", proposition="upsell", cells=("develop",), reason="low value with the potential to grow"),
        r(name="invest", proposition="cross_sell", cells=("invest",), reason="high value and still growing"),
        r(name="harvest", proposition="loyalty_reward", cells=("harvest",), reason="high value, growth has levelled"),
        r(name="maintain", proposition="move_online_only", cells=("maintain",), reason="low value, low potential"),
    )
    if cells is None:
        return rules
    rename = dict(zip(CellNames().names, cells.names, strict=True))
    return tuple(rule.model_copy(update={"cells": tuple(rename[c] for c in rule.cells)}) for rule in rules)


def defaults_follow_cells(data: dict[str, Any]) -> dict[str, Any]:
    """With renamed cells and no proposition rules given, the default rules name the new cells."""
    potential = data.get("potential")
    cells = potential.get("cells") if isinstance(potential, dict) else None
    given = data.get("propositions")
    if not isinstance(cells, dict) or (isinstance(given, dict) and "rules" in given):
        return data
    try:
        names = CellNames.model_validate(cells)
    except ValueError:
        return data  # field validation reports it
    propositions = dict(given) if isinstance(given, dict) else {}
    propositions["rules"] = _default_propositions(names)
    return {**data, "propositions": propositions}


class AffinityConfig(_Frozen):
    """Cross-sell a category: what the state keeps of the categories bought, how `fit` learns the affinity
    between them, and which propositions name the category (see `scoring.affinity`)."""

    categories_kept: int = Field(
        default=16, ge=1, le=256, description="Most recently bought categories each customer's state keeps."
    )
    min_support: int = Field(
        default=5, ge=1, description="fit: customers who bought both categories for a pair to count."
    )
    related_kept: int = Field(default=10, ge=1, le=100, description="fit: related categories kept per category.")
    propositions: tuple[str, ...] = Field(
        default=("cross_sell", "upsell"),
        description="Propositions that name the category the customer is most likely to buy next (with a model "
        "fitted on purchases with items; else they stay as the rules say).",
    )
    excluded: tuple[str, ...] = Field(
        default=(),
        description="Categories (or product codes) never proposed nor learned from, e.g. postage and fees.",
    )

    @field_validator("propositions", "excluded")
    @classmethod
    def _names(cls, v: tuple[str, ...]) -> tuple[str, ...]:
        if any(not name.strip() for name in v):
            raise ValueError("names must not be empty")
        return v


class PropositionConfig(_Frozen):
    """Next best proposition: rules over tier, cell, segment, satisfaction and risk; first match wins."""

    rules: tuple[PropositionRule, ...] = Field(default_factory=_default_propositions)
    fallback: str = Field(default="none", description="Proposition when no rule matches.")


def check_offerings(
    potential: PotentialConfig, propositions: PropositionConfig, tiers: Sequence[str], segments: Sequence[str]
) -> None:
    """Names in the offering settings must be real tiers, cells, segments and grades (else a rule never fires)."""
    if unknown := set(potential.high_value_tiers) - set(tiers):
        raise ValueError(f"potential.high_value_tiers: unknown tier {sorted(unknown)[0]!r}")
    cells = potential.cells.names
    seen: set[str] = set()
    for i, rule in enumerate(propositions.rules):
        where = f"propositions.rules.{i}"
        if rule.name in seen:
            raise ValueError(f"{where}.name: {rule.name!r} is used twice")
        seen.add(rule.name)
        for field, allowed in (("tiers", tiers), ("cells", cells), ("segments", segments), ("satisfaction", GRADES)):
            for name in getattr(rule, field):
                if name not in allowed:
                    raise ValueError(f"{where}.{field}: unknown {field} value {name!r} (one of {', '.join(allowed)})")
