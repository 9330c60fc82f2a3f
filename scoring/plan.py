"""Contact plan: rules matched on what changed, the ROI guard, frequency caps.

Never spend more to retain a customer than the customer is worth: an action
whose channel costs more than `roi_max_share` of the annual value is moved
down `channel_ladder` to the first channel within budget, or skipped when
none is; the action says which and why.

On evidence (`roi_evidence.enabled`, opt-in): when the evidence in force (`ScoringConfig.with_evidence`)
has at least `min_outcomes` customers in each group of the rule and tier, the budget is the measured
incremental value instead of the share: the uplift of the purchase rate x what the customer is worth
(`measure: purchase_rate`), or the uplift of net revenue per customer x `value_margin` (`revenue`); a
rule whose interval lies entirely below zero is skipped. `roi_basis` says which budget applied and why.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from scoring.config import ContactRule, ScoringConfig
from scoring.decisions import RoiDecision


@dataclass(frozen=True, slots=True)
class Trigger:
    """Something that happened to a customer that rules may react to."""

    on: str  # tier_changed | segment_changed | at_risk | top_tier_complaint | potential_changed | ...
    tier: str
    from_tier: str | None = None
    direction: str = ""
    segment: str = ""
    cell: str = ""  # the value x potential cell


@dataclass(frozen=True, slots=True)
class RoiVerdict:
    decision: RoiDecision
    channel: str
    cost: float
    reason: str
    roi_basis: str | None = None  # None: evidence mode is off; else "configured share: ..." or "evidence ...: ..."


@dataclass(frozen=True, slots=True)
class EvidenceBasis:
    """The budget the evidence gives (None: the configured share applies) and why."""

    budget: float | None
    text: str
    below_zero: bool = False


def _interval(low: float | None, high: float | None, scale: float, fmt: str) -> str:
    return "" if low is None or high is None else f" [{low * scale:{fmt}}, {high * scale:{fmt}}]"


def evidence_basis(rule: str, tier: str, worth: float, config: ScoringConfig, label: str) -> EvidenceBasis:
    """What the evidence in force says of `rule` in `tier` for a customer worth `worth` (on `label`)."""
    settings = config.roi_evidence
    evidence = config.evidence
    if evidence is None:
        return EvidenceBasis(None, "configured share: no evidence loaded")
    row = evidence.find(rule, tier)
    need = settings.min_outcomes
    if row is None:
        return EvidenceBasis(None, f"configured share: evidence {evidence.version} has no outcome of {rule} in {tier}")
    if row.treated < need or row.held_out < need:
        return EvidenceBasis(
            None,
            f"configured share: evidence {evidence.version}: {row.treated} treated / {row.held_out} held out "
            f"in {tier}, fewer than {need} in a group",
        )
    if settings.measure == "purchase_rate":
        low, high = row.purchase_low, row.purchase_high
        gain = row.purchase_uplift * worth
        what = (
            f"purchase-rate uplift {row.purchase_uplift * 100:+.1f} pts{_interval(low, high, 100, '+.1f')} "
            f"x {label} {worth:.2f}"
        )
    else:
        low, high = row.revenue_low, row.revenue_high
        gain = row.revenue_uplift * config.value_margin
        what = f"revenue uplift {row.revenue_uplift:+.2f}{_interval(low, high, 1, '+.2f')} per customer"
        if config.value_margin != 1:
            what += f" x margin {config.value_margin:g}"
    text = f"evidence {evidence.version}: {what} over {row.treated} treated / {row.held_out} held out in {tier}"
    return EvidenceBasis(max(gain, 0.0), text, high is not None and high < 0)


@dataclass(frozen=True, slots=True)
class CapDecision:
    """Whether an action may be sent now; `retry_at_s` (epoch seconds) when not."""

    allowed: bool
    reason: str
    retry_at_s: float | None = None


def matches(rule: ContactRule, trigger: Trigger) -> bool:
    """True when the rule listens to this trigger and its filters accept it."""
    if rule.on != trigger.on:
        return False
    if rule.to_tiers and trigger.tier not in rule.to_tiers:
        return False
    if rule.from_tiers and trigger.from_tier not in rule.from_tiers:
        return False
    if rule.segments and trigger.segment not in rule.segments:
        return False
    if rule.cells and trigger.cell not in rule.cells:
        return False
    return rule.direction in ("any", trigger.direction)


def matching_rules(trigger: Trigger, config: ScoringConfig) -> tuple[ContactRule, ...]:
    return tuple(rule for rule in config.contact_rules if matches(rule, trigger))


def roi_guard(
    channel: str, worth: float, config: ScoringConfig, basis: str = "annual_value", rule: str = "", tier: str = ""
) -> RoiVerdict:
    """Keep, downgrade or skip an action on `channel` of `rule` for a customer in `tier` worth `worth` (on
    `basis`: the annual value, or the value model's CLV)."""
    label = basis.replace("_", " ") if basis != "clv" else "CLV"
    cost = config.channel_costs[channel]
    on_evidence = config.roi_evidence.enabled
    found = evidence_basis(rule, tier, worth, config, label) if on_evidence else None
    roi_basis = None if found is None else found.text
    if found is not None and found.below_zero:
        why = f"{found.text}: its 95 % interval lies entirely below zero; skipped"
        return RoiVerdict("skipped", channel, 0.0, why, roi_basis)
    if found is not None and found.budget is not None:
        budget = found.budget
        why = f"{channel} costs {cost:.2f} > expected incremental value {budget:.2f}"
    else:
        budget = config.roi_max_share * worth
        why = f"{channel} costs {cost:.2f} > {config.roi_max_share:.0%} of {label} {worth:.2f}"
    if cost <= budget:
        return RoiVerdict("approved", channel, cost, f"{channel} costs {cost:.2f} <= budget {budget:.2f}", roi_basis)
    ladder = config.channel_ladder
    below = ladder[ladder.index(channel) + 1 :] if channel in ladder else ()
    for cheaper in below:
        if config.channel_costs[cheaper] <= budget:
            c = config.channel_costs[cheaper]
            return RoiVerdict("downgraded", cheaper, c, f"{why}; downgraded to {cheaper} ({c:.2f})", roi_basis)
    return RoiVerdict("skipped", channel, 0.0, f"{why}; no cheaper channel fits, skipped", roi_basis)


def check_frequency_cap(
    action_type: str,
    sent_at_s: Sequence[float],
    now_s: float,
    config: ScoringConfig,
) -> CapDecision:
    """Decide over the epoch-second times this action type was last sent to the customer.

    Allowed when fewer than `max_count` sends fall in the last `per_days` and
    the latest is at least `cooldown_days` old. No cap configured: allowed.
    """
    cap = config.frequency_caps.get(action_type)
    if cap is None:
        return CapDecision(True, "no cap")
    window_s, cooldown_s = cap.per_days * 86_400, cap.cooldown_days * 86_400
    recent = sorted(t for t in sent_at_s if now_s - t < window_s)
    blocked: list[tuple[float, str]] = []  # (when it stops blocking, why)
    if sent_at_s and now_s - max(sent_at_s) < cooldown_s:
        blocked.append((max(sent_at_s) + cooldown_s, f"cooldown of {cap.cooldown_days:g} days"))
    if len(recent) >= cap.max_count:
        blocked.append(
            (
                recent[len(recent) - cap.max_count] + window_s,
                f"cap of {cap.max_count} per {cap.per_days:g} days reached",
            )
        )
    if blocked:
        retry, _ = max(blocked)
        return CapDecision(False, "; ".join(why for _, why in blocked), retry)
    return CapDecision(True, "within cap")
