"""The edge: input messages -> core events, core decisions -> output messages.
Nested values are passed as plain dicts: pydantic-core validates them faster
than Python-level `model_construct` would build them.
"""

from __future__ import annotations

from datetime import datetime
from decimal import ROUND_HALF_EVEN, Decimal
from typing import TYPE_CHECKING

from schemas.base import Message
from schemas.inputs import ComplaintFiled, EnquiryReceived, OrderReturned, PurchaseCompleted
from schemas.outputs import (
    ContactActionRequested,
    CustomerAlert,
    CustomerScore,
    TierChanged,
)
from scoring.decisions import ActionRequest, Alert, Decision, TierChange
from scoring.events import CoreEvent, Kind, from_ms, to_ms
from scoring.review import next_review_at
from scoring.state import CustomerState
from scoring.step import Evaluation, StepResult, value_of

if TYPE_CHECKING:
    from scoring.config import ScoringConfig
    from scoring.valuemodel.model import ValueModel
    from scoring.valuemodel.scalar import CustomerValue

InputMessage = PurchaseCompleted | OrderReturned | ComplaintFiled | EnquiryReceived
_KINDS = {"purchase": Kind.PURCHASE, "return": Kind.RETURN, "complaint": Kind.COMPLAINT, "enquiry": Kind.ENQUIRY}
_CENT = Decimal(100)


def to_cents(amount: Decimal) -> int:
    """Minor units (1/100), rounding half to even."""
    return int((amount * _CENT).to_integral_value(ROUND_HALF_EVEN))


def to_core(message: InputMessage) -> CoreEvent:
    """The core's view of an input message."""
    kind = _KINDS[message.type]
    at_ms = to_ms(message.occurred_at)
    if isinstance(message, PurchaseCompleted):
        return CoreEvent(kind, message.event_id, at_ms, to_cents(message.amount), message.currency)
    if isinstance(message, OrderReturned):
        return CoreEvent(kind, message.event_id, at_ms, to_cents(message.amount), message.currency or "")
    if isinstance(message, ComplaintFiled):
        return CoreEvent(kind, message.event_id, at_ms, severity=message.severity)
    return CoreEvent(kind, message.event_id, at_ms)


class OutputContext:
    """What every output of one step shares: who, versions, and when it was emitted."""

    def __init__(
        self, customer_id: str, config_version: str, emitted_at: datetime, model_version: str | None = None,
    ) -> None:
        self.common = {"customer_id": customer_id, "config_version": config_version,
                       "emitted_at": emitted_at, "model_version": model_version}

    def base(self, decision: Decision) -> dict[str, object]:
        return {**self.common, "id": decision.id, "cause": decision.cause, "event_time": from_ms(decision.at_ms)}


def decision_message(decision: Decision, ctx: OutputContext) -> Message | None:
    """The output message of a decision; None for ScoreChanged (see `score_message`)."""
    if isinstance(decision, TierChange):
        touch = {"channel": decision.touch_channel, "cadence_days": decision.touch_cadence_days,
                 "owner": decision.touch_owner}
        return TierChanged(**ctx.base(decision),
                           from_tier=decision.from_tier, to_tier=decision.to_tier,
                           direction=decision.direction, score=decision.score,
                           previous_score=decision.previous_score, touch_plan=touch)
    if isinstance(decision, ActionRequest):
        return ContactActionRequested(
            **ctx.base(decision), rule=decision.rule, trigger=decision.trigger,
            action_type=decision.action_type, channel=decision.channel,
            requested_channel=decision.requested_channel, priority=decision.priority, owner=decision.owner,
            due_at=from_ms(decision.due_ms), cost=decision.cost, annual_value=decision.annual_value,
            value_basis=decision.value_basis, roi_decision=decision.roi_decision, reason=decision.reason,
            tier=decision.tier)
    if isinstance(decision, Alert):
        return CustomerAlert(
            **ctx.base(decision), kind=decision.alert_kind, tier=decision.tier,
            score=decision.score, at_risk_score=decision.at_risk_score,
            value_at_stake=decision.value_at_stake, value_basis=decision.value_basis, reason=decision.reason)
    return None


def score_message(
    decision: Decision, ev: Evaluation, state: CustomerState, ctx: OutputContext, value: CustomerValue | None,
) -> CustomerScore:
    """The profile snapshot a ScoreChanged decision publishes (`value`: the value model's figures)."""
    s = ev.score
    nxt = next_review_at(state)
    return CustomerScore(
        **ctx.base(decision), tier=ev.tier, score=s.composite, r_score=s.r, f_score=s.f,
        m_score=s.m, recency_days=s.recency_days, frequency=s.frequency, monetary=s.monetary,
        returns_amount=s.returns_amount, complaints=s.complaints, tenure_days=s.tenure_days,
        segment=ev.segment, at_risk=ev.risk.is_at_risk, at_risk_score=ev.risk.score,
        annual_value=s.annual_value, next_review_at=nxt, **model_fields(value),
        components=[{"name": c.name, "value": c.value, "points": round(c.points, 4)} for c in s.components],
    )


def snapshot_message(
    decision: Decision, result: StepResult, ev: Evaluation, state: CustomerState, ctx: OutputContext,
    value: CustomerValue | None, config: ScoringConfig, model: ValueModel | None,
) -> CustomerScore:
    """The snapshot of a step's ScoreChanged as of its own cause: a review caught up inside the step
    shows the state of its day (`StepResult.views`); otherwise `ev`, `state` and `value`."""
    at, seen = result.view(decision.cause) or (state, ev)
    figures = value if seen is ev else value_of(at, seen.score.day, config, model)
    return score_message(decision, seen, at, ctx, figures)


def model_fields(value: CustomerValue | None) -> dict[str, float | None]:
    """The value model's figures as output fields (None without a model)."""
    if value is None:
        return {"p_alive": None, "expected_purchases_90": None, "expected_purchases_365": None, "clv": None}
    return {"p_alive": round(value.p_alive, 6), "expected_purchases_90": round(value.expected_90, 4),
            "expected_purchases_365": round(value.expected_365, 4), "clv": round(value.clv, 2)}
