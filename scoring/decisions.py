"""What the core decides: plain values the shell turns into output messages."""

from __future__ import annotations

import json
from dataclasses import dataclass, fields
from typing import Any, Literal

RoiDecision = Literal["approved", "downgraded", "skipped"]


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


@dataclass(frozen=True, slots=True)
class Alert:
    """An alert for people: `at_risk` or `top_tier_complaint`."""

    id: str
    cause: str
    at_ms: int
    alert_kind: Literal["at_risk", "top_tier_complaint"]
    tier: str
    score: float
    at_risk_score: float
    value_at_stake: float
    reason: str
    kind: Literal["alert"] = "alert"
    value_basis: str = "annual_value"


@dataclass(frozen=True, slots=True)
class ScoreChanged:
    """The published profile changed (tier, score, segment or at-risk); the shell sends a snapshot."""

    id: str
    cause: str
    at_ms: int
    kind: Literal["score"] = "score"


Decision = TierChange | ActionRequest | Alert | ScoreChanged
_BY_KIND: dict[str, type[Any]] = {
    "tier_change": TierChange,
    "action": ActionRequest,
    "alert": Alert,
    "score": ScoreChanged,
}


_FIELDS = {kind: tuple(f.name for f in fields(cls)) for kind, cls in _BY_KIND.items()}


def decision_to_dict(decision: Decision) -> dict[str, Any]:
    return {name: getattr(decision, name) for name in _FIELDS[decision.kind]}


def decision_from_dict(data: dict[str, Any]) -> Decision:
    cls = _BY_KIND[data["kind"]]
    result: Decision = cls(**data)
    return result


def encode_decisions(decisions: tuple[Decision, ...]) -> bytes:
    """Compact JSON of decisions (flat values only, so no recursive conversion is needed)."""
    return json.dumps([decision_to_dict(d) for d in decisions], separators=(",", ":")).encode()


def decode_decisions(payload: bytes) -> tuple[Decision, ...]:
    return tuple(decision_from_dict(d) for d in json.loads(payload))
