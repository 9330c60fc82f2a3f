"""Messages tierstream publishes. Every one carries a deterministic `id`:
redelivery after a crash repeats it, so subscribers deduplicate by `id`."""

from __future__ import annotations

from typing import Literal

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


class TouchPlan(Message):
    """The standing contact pattern of a tier."""

    channel: str = Field(description="Contact channel.")
    cadence_days: int = Field(description="Days between touches.")
    owner: str = Field(description="Who owns the relationship.")


class TierChanged(Output):
    """The customer entered another tier (topic `customer-tier-changes`)."""

    from_tier: str | None = Field(description="Previous tier; null on first assignment.")
    to_tier: str = Field(description="New tier.")
    direction: Literal["up", "down", "new"] = Field(description="Movement between tiers.")
    score: float = Field(ge=0, le=100, description="Composite score 0-100 now.")
    previous_score: float | None = Field(description="Composite score before, 0-100.")
    touch_plan: TouchPlan = Field(description="The new tier's contact pattern.")


class ContactActionRequested(Output):
    """A contact-plan action after the ROI guard (topic `contact-plan-actions`).

    Act on roi_decision approved or downgraded; skipped is sent so the reason is seen.
    """

    rule: str = Field(description="Contact rule that asked for it.")
    trigger: str = Field(description="tier_changed, segment_changed, at_risk or top_tier_complaint.")
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
    roi_decision: Literal["approved", "downgraded", "skipped"] = Field(description="ROI guard's verdict.")
    reason: str = Field(description="Why the ROI guard decided so.")
    tier: str = Field(description="Customer's tier when requested.")


class CustomerAlert(Output):
    """Something people must look at now (topic `customer-alerts`)."""

    kind: Literal["at_risk", "top_tier_complaint"] = Field(description="Alert kind.")
    tier: str = Field(description="Customer's tier.")
    score: float = Field(ge=0, le=100, description="Composite score 0-100.")
    at_risk_score: float = Field(ge=0, le=1, description="Risk of having stopped buying, 0-1.")
    value_at_stake: float = Field(ge=0, description="Value at stake (see value_basis), base currency.")
    value_basis: Literal["annual_value", "clv"] = Field(
        default="annual_value", description="annual_value, or clv with a value model."
    )
    reason: str = Field(description="Why, in words.")


class ScoreComponent(Message):
    """One term of the composite score."""

    name: str = Field(description="recency, frequency, monetary, returns, complaints, tenure, enquiries.")
    value: float = Field(description="The input: a 1-5 rank, a rate, a decayed weight or years.")
    points: float = Field(description="Points it adds to the composite (negative: a penalty).")


class CustomerScore(Output):
    """Latest profile of a customer (topic `customer-scores`, keyed by customer: latest wins)."""

    tier: str = Field(description="Current tier.")
    score: float = Field(ge=0, le=100, description="Composite score 0-100.")
    r_score: int = Field(ge=1, le=5, description="Recency rank 1-5.")
    f_score: int = Field(ge=1, le=5, description="Frequency rank 1-5.")
    m_score: int = Field(ge=1, le=5, description="Monetary rank 1-5.")
    recency_days: int | None = Field(description="Days since the last purchase; null if none.")
    frequency: int = Field(ge=0, description="Purchases in the rolling window.")
    monetary: float = Field(ge=0, description="Purchase amount in the window, base currency.")
    returns_amount: float = Field(ge=0, description="Refunds in the window, base currency.")
    complaints: int = Field(ge=0, description="Complaints in the window.")
    tenure_days: int | None = Field(description="Days since the first purchase; null if none.")
    segment: str = Field(description="new, active, rising, declining, lapsed or bad_business.")
    at_risk: bool = Field(description="A valuable customer overdue by their own rhythm.")
    at_risk_score: float = Field(ge=0, le=1, description="0-1.")
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
    "ContactActionRequested": ContactActionRequested,
    "CustomerAlert": CustomerAlert,
    "CustomerScore": CustomerScore,
    "DeadLetter": DeadLetter,
}
