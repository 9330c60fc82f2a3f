"""What the core decides: plain values the shell turns into output messages."""

from __future__ import annotations

import json
from dataclasses import dataclass, fields
from typing import Any, Literal

from pydantic_core import to_json

RoiDecision = Literal["approved", "downgraded", "skipped", "held_out"]  # held_out: a control group, not sent


@dataclass(frozen=True, slots=True)
class TierChange:
    """The customer moved between tiers. `from_tier` is None on first assignment."""

    id: str
    cause: str
    at_ms: int
    from_tier: str | None
    to_tier: str
    direction: Literal["up", "down", "new"]
    score: float
    previous_score: float | None
    touch_channel: str
    touch_cadence_days: int
    touch_owner: str
    kind: Literal["tier_change"] = "tier_change"
    cause_text: str = ""  # the cause in words ("purchase 42.00"); "" in outboxes written before it existed


@dataclass(frozen=True, slots=True)
class ActionRequest:
    """A contact-plan action, after the ROI guard. `cost` and `annual_value` (what the customer is
    worth on `value_basis`: the annual value, or the model's CLV) are in base currency."""

    id: str
    cause: str
    at_ms: int
    rule: str
    trigger: str
    action_type: str
    channel: str
    requested_channel: str
    priority: str
    owner: str
    due_ms: int
    cost: float
    annual_value: float
    roi_decision: RoiDecision
    reason: str
    tier: str
    kind: Literal["action"] = "action"
    value_basis: str = "annual_value"  # annual_value, or clv with a value model
    cause_text: str = ""
    proposition: str = ""  # the next best proposition when requested ("" in outboxes written before it existed)
    proposition_reason: str = ""
    roi_basis: str = ""  # with roi_evidence enabled: the budget's basis ("configured share: ..." or "evidence ...")
    proposition_category: str = ""  # the category the proposition offers ("" none, or an outbox from before it)


@dataclass(frozen=True, slots=True)
class Alert:
    """An alert for people: `at_risk`, `top_tier_complaint` or `satisfaction_drop`."""

    id: str
    cause: str
    at_ms: int
    alert_kind: Literal["at_risk", "top_tier_complaint", "satisfaction_drop"]
    tier: str
    score: float
    at_risk_score: float
    value_at_stake: float
    reason: str
    kind: Literal["alert"] = "alert"
    value_basis: str = "annual_value"
    cause_text: str = ""


@dataclass(frozen=True, slots=True)
class PotentialChange:
    """The customer entered the "low value, high potential" cell (`from_cell` None on a first evaluation)."""

    id: str
    cause: str
    at_ms: int
    from_cell: str | None
    to_cell: str
    potential: float
    previous_potential: float | None
    tier: str
    basis: str  # model or rules
    proposition: str
    reason: str
    kind: Literal["potential_change"] = "potential_change"
    cause_text: str = ""
    category: str = ""  # the category the proposition offers ("" none)


@dataclass(frozen=True, slots=True)
class ScoreChanged:
    """The published profile changed (tier, score, segment or at-risk); the shell sends a snapshot."""

    id: str
    cause: str
    at_ms: int
    kind: Literal["score"] = "score"


@dataclass(frozen=True, slots=True)
class OutcomeObserved:
    """What followed a measured contact-plan decision over its window (`scoring.outcomes`): money in base
    currency, `started_ms` the decision's time, the window `[started_ms, started_ms + window_days)`."""

    id: str
    cause: str
    at_ms: int
    action_id: str
    rule: str
    action_type: str
    channel: str
    group: Literal["treated", "held_out"]
    tier: str
    started_ms: int
    window_days: int
    purchases: int
    revenue: float
    returns: float
    cost: float
    tier_after: str
    tier_move: Literal["up", "down", "same"]
    churned: bool
    kind: Literal["outcome"] = "outcome"


@dataclass(frozen=True, slots=True)
class Forgotten:
    """The state forgot the customer (`scoring.retention`): `reason` inactive (no event for
    `retention.forget_after_days`) or erasure (a request). `last_seen_day` (epoch day) and `tier` are what the
    state held (None when it held none)."""

    id: str
    cause: str
    at_ms: int
    reason: Literal["inactive", "erasure"]
    last_seen_day: int | None
    tier: str | None
    kind: Literal["forgotten"] = "forgotten"
    cause_text: str = ""


Decision = TierChange | ActionRequest | Alert | ScoreChanged | OutcomeObserved | PotentialChange | Forgotten
_BY_KIND: dict[str, type[Any]] = {
    "forgotten": Forgotten,
    "tier_change": TierChange,
    "potential_change": PotentialChange,
    "action": ActionRequest,
    "alert": Alert,
    "score": ScoreChanged,
    "outcome": OutcomeObserved,
}


_FIELDS = {kind: tuple(f.name for f in fields(cls)) for kind, cls in _BY_KIND.items()}


def decision_to_dict(decision: Decision) -> dict[str, Any]:
    return {name: getattr(decision, name) for name in _FIELDS[decision.kind]}


def decision_from_dict(data: dict[str, Any]) -> Decision:
    cls = _BY_KIND[data["kind"]]
    result: Decision = cls(**data)
    return result


def encode_decisions(decisions: tuple[Decision, ...]) -> bytes:
    """Compact JSON of decisions (flat values only, so no recursive conversion is needed), as UTF-8.

    pydantic-core's writer (every step with decisions runs this): ~4x faster than `json.dumps`, the same
    values back from `json.loads` (shortest round-trip floats, infinities as `json` writes them)."""
    return to_json([decision_to_dict(d) for d in decisions], inf_nan_mode="constants")


def decode_decisions(payload: bytes) -> tuple[Decision, ...]:
    return tuple(decision_from_dict(d) for d in json.loads(payload))
