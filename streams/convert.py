"""The edge: input messages -> core events, core decisions -> output messages.
Nested values are passed as plain dicts: pydantic-core validates them faster
than Python-level `model_construct` would build them. The worker skips the
models altogether (`decision_json`): pydantic-core's serializer writes the
same fields, in the same order and formats, as `model_dump_json` would.
"""

from __future__ import annotations

from datetime import datetime
from decimal import Decimal
from typing import TYPE_CHECKING

from pydantic_core import to_json

from schemas.base import Message
from schemas.inputs import (
    ComplaintFiled,
    ErasureRequested,
    EventMessage,
    OrderReturned,
    PurchaseCompleted,
)
from schemas.outputs import (
    ContactActionRequested,
    ContactOutcome,
    CustomerAlert,
    CustomerForgotten,
    PotentialChanged,
    TierChanged,
)
from scoring import money
from scoring.decisions import (
    ActionRequest,
    Decision,
    Forgotten,
    OutcomeObserved,
    PotentialChange,
    ScoreChanged,
    TierChange,
)
from scoring.events import CoreEvent, Kind, day_start, from_ms, to_ms

if TYPE_CHECKING:
    pass

InputMessage = EventMessage
_KINDS = {"purchase": Kind.PURCHASE, "return": Kind.RETURN, "complaint": Kind.COMPLAINT, "enquiry": Kind.ENQUIRY,
          "erasure": Kind.ERASURE}
def to_e4(amount: Decimal) -> int:
    """The exact 1/10,000 units of a message's amount (`scoring.money`; the schema allows at most 4 decimals)."""
    return money.to_e4(amount)


def to_core(message: InputMessage) -> CoreEvent:
    """The core's view of an input message."""
    kind = _KINDS[message.type]
    if isinstance(message, ErasureRequested):
        return CoreEvent(kind, message.event_id, to_ms(message.requested_at))
    at_ms = to_ms(message.occurred_at)
    if isinstance(message, PurchaseCompleted):
        categories = item_categories(message)
        return CoreEvent(kind, message.event_id, at_ms, to_e4(message.amount), message.currency, 0, categories)
    if isinstance(message, OrderReturned):
        return CoreEvent(kind, message.event_id, at_ms, to_e4(message.amount), message.currency or "")
    if isinstance(message, ComplaintFiled):
        return CoreEvent(kind, message.event_id, at_ms, severity=message.severity)
    return CoreEvent(kind, message.event_id, at_ms)


def item_categories(message: PurchaseCompleted) -> tuple[str, ...]:
    """The distinct categories of a purchase's items, in order of first appearance: each item's category, else
    its product code (at most 100 characters)."""
    if not message.items:
        return ()
    return tuple(dict.fromkeys((item.category or item.sku)[:100] for item in message.items))


class OutputContext:
    """What every output of one step shares: who, versions, and when it was emitted."""

    def __init__(
        self, customer_id: str, config_version: str, emitted_at: datetime, model_version: str | None = None,
        calibration_version: str | None = None,
    ) -> None:
        self.customer_id, self.config_version, self.emitted_at = customer_id, config_version, emitted_at
        self.model_version, self.calibration_version = model_version, calibration_version

    def base(self, output_id: str, cause: str, event_time: datetime) -> dict[str, object]:
        return output_base(output_id, self.customer_id, cause, event_time, self.emitted_at, self.config_version,
                           self.model_version, self.calibration_version)


def output_base(
    output_id: str, customer_id: str, cause: str, event_time: datetime, emitted_at: datetime, config_version: str,
    model_version: str | None, calibration_version: str | None,
) -> dict[str, object]:
    """The fields every output starts with, in the order of `schemas.outputs.Output`."""
    return {"id": output_id, "customer_id": customer_id, "cause": cause, "event_time": event_time,
            "emitted_at": emitted_at, "config_version": config_version, "model_version": model_version,
            "calibration_version": calibration_version}


def decision_fields(decision: Decision, ctx: OutputContext) -> tuple[type[Message], dict[str, object]] | None:
    """The output model of a decision and its fields, in the model's order and already of the field types
    (floats as floats); None for ScoreChanged (a snapshot: `streams.profile`)."""
    if isinstance(decision, ScoreChanged):
        return None
    fields = ctx.base(decision.id, decision.cause, from_ms(decision.at_ms))
    if isinstance(decision, TierChange):
        fields["type"] = "TierChanged"  # the subclass's fields follow the base's
        fields.update(from_tier=decision.from_tier, to_tier=decision.to_tier, direction=decision.direction,
                      score=float(decision.score),
                      previous_score=None if decision.previous_score is None else float(decision.previous_score),
                      touch_plan={"channel": decision.touch_channel, "cadence_days": decision.touch_cadence_days,
                                  "owner": decision.touch_owner},
                      cause_text=decision.cause_text or None)  # "": an outbox entry from before cause_text
        return TierChanged, fields
    if isinstance(decision, ActionRequest):
        fields["type"] = "ContactActionRequested"  # the subclass's fields follow the base's
        fields.update(rule=decision.rule, trigger=decision.trigger, action_type=decision.action_type,
                      channel=decision.channel, requested_channel=decision.requested_channel,
                      priority=decision.priority, owner=decision.owner, due_at=from_ms(decision.due_ms),
                      cost=float(decision.cost), annual_value=float(decision.annual_value),
                      value_basis=decision.value_basis, roi_decision=decision.roi_decision, reason=decision.reason,
                      tier=decision.tier, cause_text=decision.cause_text or None,
                      proposition=decision.proposition or None, proposition_reason=decision.proposition_reason or None,
                      roi_basis=decision.roi_basis or None,
                      proposition_category=decision.proposition_category or None)
        return ContactActionRequested, fields
    if isinstance(decision, OutcomeObserved):
        fields["type"] = "ContactOutcome"
        fields.update(action_id=decision.action_id, rule=decision.rule, action_type=decision.action_type,
                      channel=decision.channel, group=decision.group, tier=decision.tier,
                      started_at=from_ms(decision.started_ms), window_days=decision.window_days,
                      purchases=decision.purchases, revenue=float(decision.revenue), returns=float(decision.returns),
                      cost=float(decision.cost), tier_after=decision.tier_after, tier_move=decision.tier_move,
                      churned=decision.churned)
        return ContactOutcome, fields
    if isinstance(decision, PotentialChange):
        fields["type"] = "PotentialChanged"
        fields.update(from_cell=decision.from_cell, to_cell=decision.to_cell, potential=float(decision.potential),
                      previous_potential=None if decision.previous_potential is None
                      else float(decision.previous_potential),
                      potential_basis=decision.basis, tier=decision.tier, proposition=decision.proposition,
                      proposition_reason=decision.reason, cause_text=decision.cause_text or None,
                      proposition_category=decision.category or None)
        return PotentialChanged, fields
    if isinstance(decision, Forgotten):
        fields["type"] = "CustomerForgotten"
        last = None if decision.last_seen_day is None else day_start(decision.last_seen_day).date()
        fields.update(reason=decision.reason, last_activity_day=last, tier=decision.tier,
                      cause_text=decision.cause_text or None)
        return CustomerForgotten, fields
    fields["type"] = "CustomerAlert"
    fields.update(kind=decision.alert_kind, tier=decision.tier, score=float(decision.score),
                  at_risk_score=float(decision.at_risk_score), value_at_stake=float(decision.value_at_stake),
                  value_basis=decision.value_basis, reason=decision.reason, cause_text=decision.cause_text or None)
    return CustomerAlert, fields


def decision_message(decision: Decision, ctx: OutputContext) -> Message | None:
    """The output message of a decision, validated; None for ScoreChanged (a snapshot: `streams.profile`)."""
    made = decision_fields(decision, ctx)
    return None if made is None else made[0](**made[1])


def decision_json(decision: Decision, ctx: OutputContext) -> bytes | None:
    """`decision_message(decision, ctx).model_dump_json()`, byte for byte, without building the model: the
    worker's hot path (the core's decisions are valid by construction; tests hold the two paths equal)."""
    made = decision_fields(decision, ctx)
    return None if made is None else to_json(made[1])
