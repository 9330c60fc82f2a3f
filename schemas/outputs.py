"""Messages tierstream publishes. Every one carries a deterministic `id`:
redelivery after a crash repeats it, so subscribers deduplicate by `id`."""

from __future__ import annotations

from datetime import date
from typing import Any, Literal

from pydantic import AwareDatetime, Field

from schemas.base import CustomerId, Message

OutputId = Field(
    pattern=r"^[0-9a-f]{32}$", description="Deterministic id (32 hex): same cause, same id. Deduplicate on it."
)


class Output(Message):
    """Fields every output has."""

    id: str = OutputId
    customer_id: CustomerId
    cause: str = Field(description="Event id (or review@<epoch day>) that caused this output.")
    event_time: AwareDatetime = Field(description="Event time of the cause (UTC).")
    emitted_at: AwareDatetime = Field(description="When tierstream emitted it (UTC).")
    config_version: str = Field(description="Version of the scoring rules in force.")
    model_version: str | None = Field(default=None, description="Version of the value model, if any.")
    calibration_version: str | None = Field(
        default=None, description="Version of the population calibration in force (calibrated tiering), if any."
    )


# Money sums are kept exactly in 1/10,000 of the currency unit (scoring.money): the number is that decimal.
EXACT = "the exact sum, at most 4 decimals (a JSON number: 12.5 for 12.50, 0.0005 for a twentieth of a cent)."
AT_RISK_SCORE = (
    "0-1. With a value model (model_version set): the probability of having stopped buying; by the rules: "
    "an overdue index (days since the last purchase against the typical gap), not a probability."
)


def type_tag(name: str) -> Any:
    """The `type` field of an output: its message name, so outputs can share one file (replay --decisions-out)
    and be told apart as inputs are by their `type`."""
    return Field(default=name, description=f'Message type tag, always "{name}".')


CauseText = Field(
    default=None,
    description='The cause in words, e.g. "purchase 42.00", "return 12.00", "complaint, severity 4", '
    '"no purchase for 93 days" (a time-driven review). For people: use `cause` to correlate.',
)


class TouchPlan(Message):
    """The standing contact pattern of a tier."""

    channel: str = Field(description="Contact channel.")
    cadence_days: int = Field(description="Days between touches.")
    owner: str = Field(description="Who owns the relationship.")


class TierChanged(Output):
    """The customer entered another tier (topic `customer-tier-changes`)."""

    type: Literal["TierChanged"] = type_tag("TierChanged")
    from_tier: str | None = Field(description="Previous tier; null on first assignment.")
    to_tier: str = Field(description="New tier.")
    direction: Literal["up", "down", "new"] = Field(description="Movement between tiers.")
    score: float = Field(ge=0, le=100, description="Composite score 0-100 now.")
    previous_score: float | None = Field(description="Composite score before, 0-100.")
    touch_plan: TouchPlan = Field(description="The new tier's contact pattern.")
    cause_text: str | None = CauseText


class ContactActionRequested(Output):
    """A contact-plan action after the ROI guard (topic `contact-plan-actions`).

    Act on roi_decision approved or downgraded; skipped is sent so the reason is seen. A held_out action
    (the customer is in the rule's control group) goes to `contact-plan-holdouts` instead, never to the
    action topic: it records what would have been sent, so its outcome can be compared.
    """

    type: Literal["ContactActionRequested"] = type_tag("ContactActionRequested")
    rule: str = Field(description="Contact rule that asked for it.")
    trigger: str = Field(
        description="tier_changed, segment_changed, at_risk, top_tier_complaint, potential_changed or "
        "satisfaction_dropped."
    )
    action_type: str = Field(description="What to do, e.g. retention_call.")
    channel: str = Field(description="Channel to use (after the ROI guard).")
    requested_channel: str = Field(description="Channel the rule asked for.")
    priority: str = Field(description="low, normal, high or urgent.")
    owner: str = Field(description="Team or role that carries it out.")
    due_at: AwareDatetime = Field(description="When it should be done by (UTC).")
    cost: float = Field(ge=0, description="Cost of the action, base currency.")
    annual_value: float = Field(ge=0, description="What the customer is worth (see value_basis), base currency.")
    value_basis: Literal["annual_value", "clv"] = Field(
        default="annual_value", description="annual_value: net spend a year x margin; clv: the value model's CLV."
    )
    roi_decision: Literal["approved", "downgraded", "skipped", "held_out"] = Field(
        description="ROI guard's verdict; held_out: in the rule's control group, not to be sent (cost 0)."
    )
    reason: str = Field(description="Why the ROI guard decided so.")
    tier: str = Field(description="Customer's tier when requested.")
    cause_text: str | None = CauseText
    proposition: str | None = Field(default=None, description="Next best proposition for the customer, e.g. upsell.")
    proposition_reason: str | None = Field(default=None, description="Why that proposition, in words.")
    roi_basis: str | None = Field(
        default=None,
        description="With the ROI guard on evidence (roi_evidence.enabled): the budget's basis and why, "
        "'configured share: ...' (too little evidence) or 'evidence <version>: <uplift> [interval] over n "
        "treated / m held out'; null when the guard uses the configured share alone.",
    )
    proposition_category: str | None = Field(
        default=None,
        description="The category the proposition offers: the one the customer is most likely to buy next that "
        "they have not bought (category affinity of the value model); null when it names none.",
    )


class ContactOutcome(Output):
    """What followed a measured contact-plan decision, treated or held out, once its window closed
    (topic `contact-plan-outcomes`). Only rules with a control group (holdout_share > 0) are measured."""

    type: Literal["ContactOutcome"] = type_tag("ContactOutcome")
    action_id: str = Field(description="Id of the ContactActionRequested (treated or held_out) it follows.")
    rule: str = Field(description="Contact rule of the decision.")
    action_type: str = Field(description="What was (or would have been) done.")
    channel: str = Field(description="Channel used (held out: the one that would have been used).")
    group: Literal["treated", "held_out"] = Field(description="treated: the action was sent; held_out: the control.")
    tier: str = Field(description="Customer's tier at the decision.")
    started_at: AwareDatetime = Field(description="Time of the decision: the window's start (UTC, inclusive).")
    window_days: int = Field(ge=1, description="Length of the window, days (the rule's outcome_days).")
    purchases: int = Field(ge=0, description="Purchases with an event time inside the window.")
    revenue: float = Field(ge=0, description=f"Their amount, base currency; {EXACT}")
    returns: float = Field(ge=0, description=f"Refunds with an event time inside the window, base currency; {EXACT}")
    cost: float = Field(ge=0, description="What the action cost, base currency (0 when held out).")
    tier_after: str = Field(description="Customer's tier when the window closed.")
    tier_move: Literal["up", "down", "same"] = Field(description="From `tier` to `tier_after`.")
    churned: bool = Field(description="No purchase in the window, and at risk or lapsed when it closed.")


class CustomerAlert(Output):
    """Something people must look at now (topic `customer-alerts`)."""

    type: Literal["CustomerAlert"] = type_tag("CustomerAlert")
    kind: Literal["at_risk", "top_tier_complaint", "satisfaction_drop"] = Field(
        description="Alert kind; satisfaction_drop: a top-tier customer slid to a disappointed grade or worse."
    )
    tier: str = Field(description="Customer's tier.")
    score: float = Field(ge=0, le=100, description="Composite score 0-100.")
    at_risk_score: float = Field(ge=0, le=1, description=AT_RISK_SCORE)
    value_at_stake: float = Field(ge=0, description="Value at stake (see value_basis), base currency.")
    value_basis: Literal["annual_value", "clv"] = Field(
        default="annual_value", description="annual_value, or clv with a value model."
    )
    reason: str = Field(description="Why, in words.")
    cause_text: str | None = CauseText


class PotentialChanged(Output):
    """The customer entered the "low value, high potential" cell (topic `customer-tier-changes`, which
    carries changes of a customer's value standing: tell the two apart by `type`)."""

    type: Literal["PotentialChanged"] = type_tag("PotentialChanged")
    from_cell: str | None = Field(description="Value x potential cell before; null on a first evaluation.")
    to_cell: str = Field(description="The cell entered (its configured name, default develop).")
    potential: float = Field(ge=0, le=1, description="Potential score 0-1 now.")
    previous_potential: float | None = Field(description="Potential score 0-1 before.")
    potential_basis: Literal["model", "rules"] = Field(description="model: from the value model; rules: fallback.")
    tier: str = Field(description="Customer's tier.")
    proposition: str = Field(description="Next best proposition now, e.g. upsell.")
    proposition_reason: str = Field(description="Why that proposition, in words.")
    cause_text: str | None = CauseText
    proposition_category: str | None = Field(
        default=None,
        description="The category the proposition offers: the one the customer is most likely to buy next that "
        "they have not bought (category affinity of the value model); null when it names none.",
    )


class CustomerForgotten(Output):
    """tierstream forgot the customer (topic `customer-tier-changes`, with the other changes of a customer's
    standing: tell them apart by `type`). Its state, Redis profile and deadline are deleted (a tombstone on the
    state's changelog and on `customer-scores`); a later event of the same id starts a new customer. The input
    topics still hold the customer's raw events until their own retention (see docs/delivery.md, Retention)."""

    type: Literal["CustomerForgotten"] = type_tag("CustomerForgotten")
    reason: Literal["inactive", "erasure"] = Field(
        description="inactive: no event for scoring.retention.forget_after_days; erasure: an ErasureRequested."
    )
    last_activity_day: date | None = Field(
        description="UTC date of the customer's latest event of any kind; null when nothing was held."
    )
    tier: str | None = Field(description="Tier the customer had when forgotten; null when never scored.")
    cause_text: str | None = CauseText


GRADE = Literal["very_satisfied", "satisfied", "neutral", "disappointed", "very_disappointed"]


class ScoreComponent(Message):
    """One term of the composite score."""

    name: str = Field(description="recency, frequency, monetary, returns, complaints, tenure, enquiries.")
    value: float = Field(description="The input: a 1-5 rank, a rate, a decayed weight or years.")
    points: float = Field(description="Points it adds to the composite (negative: a penalty).")


class CustomerScore(Output):
    """Latest profile of a customer (topic `customer-scores`, keyed by customer: latest wins)."""

    type: Literal["CustomerScore"] = type_tag("CustomerScore")
    tier: str = Field(description="Current tier.")
    score: float = Field(ge=0, le=100, description="Composite score 0-100.")
    r_score: int = Field(ge=1, le=5, description="Recency rank 1-5.")
    f_score: int = Field(ge=1, le=5, description="Frequency rank 1-5.")
    m_score: int = Field(ge=1, le=5, description="Monetary rank 1-5.")
    recency_days: int | None = Field(description="Days since the last purchase; null if none.")
    frequency: int = Field(ge=0, description="Purchases in the rolling window.")
    monetary: float = Field(ge=0, description=f"Purchase amount in the window, base currency; {EXACT}")
    returns_amount: float = Field(ge=0, description=f"Refunds in the window, base currency; {EXACT}")
    complaints: int = Field(ge=0, description="Complaints in the window.")
    tenure_days: int | None = Field(description="Days since the first purchase; null if none.")
    segment: str = Field(description="new, active, rising, declining, lapsed or bad_business.")
    at_risk: bool = Field(description="A valuable customer overdue by their own rhythm.")
    at_risk_score: float = Field(ge=0, le=1, description=AT_RISK_SCORE)
    annual_value: float = Field(ge=0, description="Net spend per year x margin, base currency.")
    components: list[ScoreComponent] = Field(description="How the composite was made.")
    p_alive: float | None = Field(default=None, ge=0, le=1, description="Value model: P(still a customer).")
    expected_purchases_90: float | None = Field(
        default=None, ge=0, description="Value model: expected purchase days in the next 90 days."
    )
    expected_purchases_365: float | None = Field(
        default=None, ge=0, description="Value model: expected purchase days in the next 365 days."
    )
    clv: float | None = Field(default=None, ge=0, description="Value model: discounted CLV, base currency.")
    next_review_at: AwareDatetime | None = Field(description="When the score may next change with no event.")
    potential: float | None = Field(default=None, ge=0, le=1, description="Potential score 0-1 (see README).")
    potential_basis: Literal["model", "rules"] | None = Field(
        default=None, description="model: from the value model; rules: the trend and frequency fallback."
    )
    value_potential_cell: str | None = Field(default=None, description="Value x potential cell (configured name).")
    satisfaction: GRADE | None = Field(default=None, description="Satisfaction grade.")
    satisfaction_points: float | None = Field(
        default=None, ge=0, description="Dissatisfaction points behind the grade (0: nothing against)."
    )
    satisfaction_explanation: str | None = Field(default=None, description="The grade in words.")
    proposition: str | None = Field(default=None, description="Next best proposition, e.g. upsell.")
    proposition_reason: str | None = Field(default=None, description="Why that proposition, in words.")
    proposition_category: str | None = Field(
        default=None,
        description="The category the proposition offers: the one the customer is most likely to buy next that "
        "they have not bought (category affinity of the value model); null when it names none.",
    )


class DeadLetter(Message):
    """An input that could not be scored (topic `tierstream-dlq`). Nothing is dropped silently."""

    id: str = Field(pattern=r"^[0-9a-f]{32}$", description="Deterministic id from source topic, partition and offset.")
    source_topic: str = Field(description="Topic the input came from.")
    partition: int = Field(ge=0, description="Its partition.")
    offset: int = Field(ge=0, description="Its offset.")
    key_b64: str | None = Field(description="The original key bytes, base64.")
    payload_b64: str = Field(description="The original value bytes, base64 (first 256 KiB).")
    payload_size: int = Field(ge=0, description="Size of the original value in bytes.")
    payload_sha256: str = Field(description="SHA-256 of the whole original value (hex).")
    truncated: bool = Field(description="True when payload_b64 holds only the first 256 KiB.")
    reason: str = Field(description="Why it was refused, in one line.")
    error_type: str = Field(description="decode, schema, rejected or internal.")
    emitted_at: AwareDatetime = Field(description="When it was dead-lettered (UTC).")
    config_version: str = Field(description="Version of the scoring rules in force.")


OUTPUT_MODELS: dict[str, type[Message]] = {
    "TierChanged": TierChanged,
    "PotentialChanged": PotentialChanged,
    "CustomerForgotten": CustomerForgotten,
    "ContactActionRequested": ContactActionRequested,
    "ContactOutcome": ContactOutcome,
    "CustomerAlert": CustomerAlert,
    "CustomerScore": CustomerScore,
    "DeadLetter": DeadLetter,
}
