"""Scoring rules: one frozen object passed to every core function.

Every default here is the product default and is documented in
`tierstream.yaml.example`. Loading from a file happens in the shell
(`streams.settings`); this module only validates a mapping.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Any, Literal, TypeVar

import yaml
from pydantic import BaseModel, ConfigDict, Field, PrivateAttr, ValidationError, field_validator, model_validator

from scoring.calibration import Calibration
from scoring.dedupe import worst_case_bytes
from scoring.errors import CalibrationError, ConfigError
from scoring.evidence import Evidence
from scoring.offering_config import (
    AffinityConfig,
    PotentialConfig,
    PropositionConfig,
    SatisfactionConfig,
    check_offerings,
    defaults_follow_cells,
)

Direction = Literal["up", "down", "new", "any"]
Trigger = Literal[
    "tier_changed", "segment_changed", "at_risk", "top_tier_complaint", "potential_changed", "satisfaction_dropped"
]
Tiering = Literal["calibrated", "absolute"]
SEGMENTS = ("new", "active", "rising", "declining", "lapsed", "bad_business")


# id(config.tiers) -> (that tuple, its names): a memo of `ScoringConfig.tier_names` (a private attribute
# would take part in the config's equality). Holding the tuple keeps its id from being reused.
_TIER_NAMES: dict[int, tuple[tuple[Any, ...], tuple[str, ...]]] = {}
_TIER_NAMES_KEPT = 64
T = TypeVar("T")
# (id(source), name) -> (source, value): values derived once from an immutable config (or a part of one) by
# `derived`, for the scoring path; holding the source keeps its id from being reused.
_DERIVED: dict[tuple[int, str], tuple[object, Any]] = {}
_DERIVED_KEPT = 256


def derived(source: object, name: str, make: Callable[[], T]) -> T:
    """`make()`, computed once per `source` (an immutable config or part of one) and `name`."""
    key = (id(source), name)
    hit = _DERIVED.get(key)
    if hit is not None and hit[0] is source:
        value: T = hit[1]
        return value
    if len(_DERIVED) >= _DERIVED_KEPT:
        _DERIVED.clear()
    value = make()
    _DERIVED[key] = (source, value)
    return value


class _Frozen(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


class TierRule(_Frozen):
    """A tier and the composite score (0-100) needed to enter it."""

    name: str = Field(description="Tier name, e.g. AAA.")
    min_score: float = Field(ge=0, le=100, description="Score needed to enter (inclusive).")


class TouchPattern(_Frozen):
    """How a tier is looked after: the standing contact plan of the tier."""

    channel: str = Field(description="Contact channel, e.g. phone, email, online.")
    cadence_days: int = Field(gt=0, description="Days between touches.")
    owner: str = Field(description="Who owns the relationship, e.g. account_manager.")


class ActionSpec(_Frozen):
    """An action a rule asks for."""

    type: str = Field(description="Action type, e.g. vip_call.")
    channel: str = Field(description="Channel, must appear in `channel_costs`.")
    priority: Literal["low", "normal", "high", "urgent"] = "normal"
    due_in_days: float = Field(default=0, ge=0, description="Due this many days after the trigger.")
    owner: str = Field(default="crm", description="Team or role that carries it out.")


class ContactRule(_Frozen):
    """A contact-plan rule: when the trigger matches, request the action."""

    name: str = Field(description="Rule name, unique; part of the action id.")
    on: Trigger = Field(description="The decision that triggers the rule.")
    from_tiers: tuple[str, ...] = Field(default=(), description="Previous tier in this list (empty: any).")
    to_tiers: tuple[str, ...] = Field(default=(), description="Current tier in this list (empty: any).")
    direction: Direction = Field(
        default="any", description="For tier_changed: up, down, new (first assignment) or any."
    )
    segments: tuple[str, ...] = Field(default=(), description="Current segment in this list (empty: any).")
    cells: tuple[str, ...] = Field(default=(), description="Current value x potential cell in this list (empty: any).")
    action: ActionSpec
    holdout_share: float = Field(
        default=0.0,
        ge=0,
        lt=1,
        description="Share of the customers this rule would contact that form its "
        "control group (0-1): recorded as held_out, never sent. Above 0, outcomes are tracked (scoring.outcomes).",
    )
    outcome_days: int = Field(
        default=60, ge=1, le=365, description="Days after an action (or a held-out one) its outcome is observed."
    )


class FrequencyCap(_Frozen):
    """At most `max_count` actions of a type per customer in `per_days`, and a cooldown."""

    max_count: int = Field(default=1, ge=1)
    per_days: float = Field(default=7, gt=0, description="Cap window, days.")
    cooldown_days: float = Field(default=0, ge=0, description="Minimum days between two sends.")


DEFAULT_TIER_NAMES = ("AAA", "A", "B", "C")
DEFAULT_SHARES = (0.05, 0.15, 0.30)  # AAA, A, B; C takes the rest


def _renamed(rule: ContactRule, rename: dict[str, str]) -> ContactRule:
    def tiers(names: tuple[str, ...]) -> tuple[str, ...]:
        return tuple(dict.fromkeys(rename[n] for n in names))

    return rule.model_copy(update={"from_tiers": tiers(rule.from_tiers), "to_tiers": tiers(rule.to_tiers)})


def _default_tiers() -> tuple[TierRule, ...]:
    return (
        TierRule(name="AAA", min_score=80),
        TierRule(name="A", min_score=60),
        TierRule(name="B", min_score=35),
        TierRule(name="C", min_score=0),
    )


def _default_touch() -> dict[str, TouchPattern]:
    return {
        "AAA": TouchPattern(channel="phone", cadence_days=30, owner="account_manager"),
        "A": TouchPattern(channel="email", cadence_days=30, owner="crm"),
        "B": TouchPattern(channel="email", cadence_days=60, owner="crm"),
        "C": TouchPattern(channel="online", cadence_days=90, owner="automated"),
    }


def _default_rules() -> tuple[ContactRule, ...]:
    def rule(name: str, on: Trigger, action: ActionSpec, **kw: Any) -> ContactRule:
        return ContactRule(name=name, on=on, action=action, **kw)

    return (
        rule(
            "welcome-top-tier",
            "tier_changed",
            ActionSpec(type="vip_welcome", channel="phone", priority="high", due_in_days=2, owner="account_manager"),
            to_tiers=("AAA",),
        ),
        rule(
            "thank-upgrade",
            "tier_changed",
            ActionSpec(type="upgrade_thanks", channel="email", due_in_days=1),
            to_tiers=("A", "B"),
            direction="up",
        ),
        rule(
            "win-back-downgrade",
            "tier_changed",
            ActionSpec(type="win_back_offer", channel="email", priority="high", due_in_days=3),
            from_tiers=("AAA", "A"),
            direction="down",
        ),
        rule(
            "retain-at-risk",
            "at_risk",
            ActionSpec(
                type="retention_call", channel="phone", priority="urgent", due_in_days=1, owner="account_manager"
            ),
        ),
        rule(
            "top-tier-complaint",
            "top_tier_complaint",
            ActionSpec(
                type="service_recovery_call", channel="phone", priority="urgent", due_in_days=0, owner="service_desk"
            ),
        ),
        rule(
            "review-bad-business",
            "segment_changed",
            ActionSpec(type="account_review", channel="online", priority="low", due_in_days=14, owner="finance"),
            segments=("bad_business",),
        ),
        rule(
            "nurture-rising",
            "segment_changed",
            ActionSpec(type="nurture_offer", channel="email", due_in_days=7),
            segments=("rising",),
            to_tiers=("B", "C"),
        ),
    )


class RetentionConfig(_Frozen):
    """When the state forgets a customer on time alone (an erasure request forgets one at once, whatever this)."""

    forget_after_days: int | None = Field(
        default=None,
        ge=1,
        description="Forget a customer (state, Redis profile, deadline; a CustomerForgotten output) once this many "
        "days passed since their latest event of any kind, at the review of that day. None: keep every customer "
        "forever. Must be above lapsed_days and recency_days' last cut point.",
    )


class RoiEvidenceConfig(_Frozen):
    """The ROI guard on measured uplift (opt-in): an evidence file (`tierstream plan-report --evidence-out`,
    given to a worker as `evidence_path`, to replay as `--evidence`) replaces the configured value share for
    a rule and tier with at least `min_outcomes` customers in each group."""

    enabled: bool = Field(default=False, description="Use the evidence when there is enough of it.")
    min_outcomes: int = Field(
        default=200,
        ge=2,
        description="Customers with a closed outcome window needed in each group (treated, held "
        "out) of a rule and tier before its evidence replaces the configured share.",
    )
    measure: Literal["purchase_rate", "revenue"] = Field(
        default="purchase_rate",
        description="purchase_rate: an action may cost up to the uplift of the purchase rate x what the customer is "
        "worth; revenue: up to the uplift of net revenue per customer x value_margin.",
    )


class ScoringConfig(_Frozen):
    """All scoring rules. Days are UTC calendar days; money is in `base_currency`."""

    version: str = Field(default="rules-1", description="Config version stamped on every output.")
    base_currency: str = Field(default="USD", description="Currency of all scored amounts (ISO 4217).")
    fx_rates: dict[str, float] = Field(
        default_factory=dict, description="Units of base currency per unit of another currency."
    )
    window_days: int = Field(default=365, ge=7, le=3650, description="Rolling window for F, M and returns.")
    dedupe_days: int = Field(
        default=3 * 365,
        ge=7,
        description="Event ids are remembered until their day is this old (redeliveries); older events are "
        "refused as too old to deduplicate.",
    )
    dedupe_exact_ids: int = Field(
        default=2048,
        ge=0,
        description="Event ids (with a hash of the event's content) kept exactly per customer; beyond, a Bloom "
        "filter per 30 days remembers them (see docs/delivery.md, Dedupe).",
    )
    dedupe_filter_bytes: int = Field(
        default=2048,
        ge=64,
        le=65536,
        description="Size of a customer's Bloom filter per 30 days (bytes); it takes about bytes x 0.83 events "
        "at a 1% false-positive rate, and refuses more.",
    )
    max_state_bytes: int = Field(
        default=256 * 1024,
        ge=16 * 1024,
        le=900_000,
        description="Largest serialised customer state; an event that would make it larger is refused (a dead "
        "letter). Below the producer's 1,000,000-byte record limit.",
    )
    max_future_seconds: float = Field(
        default=86_400, ge=0, description="Events later than now + this are rejected (clock skew)."
    )
    # R/F/M thresholds: four cut points each.
    recency_days: tuple[int, int, int, int] = Field(
        default=(30, 90, 180, 365), description="R=5 when days since last purchase <= first, ... R=1 above last."
    )
    frequency_counts: tuple[float, float, float, float] = Field(
        default=(2, 4, 8, 16), description="F=1+number of cut points the window purchase count reaches."
    )
    monetary_amounts: tuple[float, float, float, float] = Field(
        default=(100, 300, 1000, 3000), description="M=1+number of cut points the window net spend reaches."
    )
    weights: tuple[float, float, float] = Field(
        default=(35, 30, 35),
        description="Most points R, F, M contribute: absolute, linear from 0 at rank 1 to all at 5; "
        "calibrated, weight x the customer's percentile position among the active customers.",
    )
    tiering: Tiering = Field(
        default="calibrated",
        description="calibrated: R/F/M points are percentile positions in the active population and the "
        "tiers hold `tier_shares` of the active customers, from a calibration (`tierstream calibrate`, "
        "`fit`; replay calibrates from its own input); until one is given, the absolute cut points and "
        "tier thresholds apply. absolute: always the cut points and the tiers' min_score.",
    )
    tier_shares: dict[str, float] = Field(
        default_factory=lambda: dict(zip(DEFAULT_TIER_NAMES, DEFAULT_SHARES, strict=False)),
        description="Calibrated tiering: share of the active customers (a purchase in the window) in each tier, "
        "highest first; the last tier takes the rest.",
    )
    return_tolerance: float = Field(default=0.1, ge=0, le=1, description="Return rate that costs nothing.")
    return_penalty_per_rate: float = Field(default=60, ge=0, description="Points per unit return rate above tolerance.")
    return_penalty_max: float = Field(default=30, ge=0)
    complaint_half_life_days: int = Field(default=90, ge=1, description="Complaint weight halves every this many days.")
    complaint_points_per_severity: float = Field(default=2.0, ge=0)
    complaint_penalty_max: float = Field(default=20, ge=0)
    enquiry_half_life_days: int = Field(default=30, ge=1)
    enquiry_points: float = Field(default=1.0, description="Points per (decayed) enquiry; negative makes it a cost.")
    enquiry_points_max: float = Field(default=5, ge=0)
    tenure_points_per_year: float = Field(default=2.0, ge=0)
    tenure_points_max: float = Field(default=10, ge=0)
    tiers: tuple[TierRule, ...] = Field(default_factory=_default_tiers, description="Highest first.")
    hysteresis_margin: float = Field(default=3.0, ge=0, description="Leave a tier only below its threshold minus this.")
    min_dwell_days: int = Field(default=0, ge=0, description="Days before a downgrade is allowed.")
    new_customer_days: int = Field(default=90, ge=0, description="Segment 'new' while tenure <= this.")
    lapsed_days: int = Field(default=365, ge=1, description="Segment 'lapsed' when days since purchase > this.")
    trend_days: int = Field(default=90, ge=7, description="Recent period compared with the rest of the window.")
    rising_ratio: float = Field(default=1.5, gt=1)
    declining_ratio: float = Field(default=0.5, gt=0, lt=1)
    bad_business_share: float = Field(
        default=0.5, gt=0, description="Bad business when returns + complaint cost >= this share of spend."
    )
    complaint_cost: float = Field(default=25.0, ge=0, description="Cost to serve per complaint severity point.")
    at_risk_gap_multiple: float = Field(default=2.0, gt=1, description="At risk when recency > this x own gap.")
    default_gap_days: float = Field(default=60, gt=0, description="Typical gap when a customer has < 2 purchase days.")
    at_risk_min_m: int = Field(default=4, ge=1, le=5, description="'Valuable' means M score >= this ...")
    at_risk_model_threshold: float = Field(
        default=0.6, gt=0, lt=1, description="With a value model: at risk when its risk reaches this."
    )
    clv_horizon_months: int = Field(default=12, ge=1, le=120, description="CLV horizon (30-day months).")
    clv_monthly_discount: float = Field(default=0.01, ge=0, lt=1, description="CLV monthly discount rate.")
    at_risk_tiers: tuple[str, ...] = Field(default=("AAA", "A"), description="... or a tier in this list.")
    top_tiers: tuple[str, ...] = Field(default=("AAA",), description="A complaint from these tiers alerts.")
    touch_patterns: dict[str, TouchPattern] = Field(default_factory=_default_touch)
    contact_rules: tuple[ContactRule, ...] = Field(default_factory=_default_rules)
    channel_costs: dict[str, float] = Field(
        default_factory=lambda: {"phone": 15.0, "mail": 3.0, "email": 0.1, "online": 0.0},
        description="Cost of one action per channel, base currency.",
    )
    channel_ladder: tuple[str, ...] = Field(
        default=("phone", "mail", "email", "online"), description="Most to least expensive, for downgrades."
    )
    roi_max_share: float = Field(
        default=0.1, gt=0, description="An action may cost at most this share of the annual value."
    )
    value_margin: float = Field(default=1.0, gt=0, description="Share of net spend that is value (margin).")
    roi_evidence: RoiEvidenceConfig = Field(
        default_factory=RoiEvidenceConfig, description="The ROI guard on measured uplift (opt-in)."
    )
    frequency_caps: dict[str, FrequencyCap] = Field(default_factory=dict, description="Per action type.")
    global_holdout_share: float = Field(
        default=0.0, ge=0, lt=1, description="Share of all customers held out of every contact-plan rule (0-1)."
    )
    holdout_salt: str = Field(
        default="tierstream", min_length=1, description="Salt of the holdout hash: a new salt draws new groups."
    )
    max_open_outcomes: int = Field(
        default=16,
        ge=1,
        le=256,
        description="Outcome windows a customer's state tracks at once; a decision "
        "beyond them is not tracked (whichever its group).",
    )
    potential: PotentialConfig = Field(default_factory=PotentialConfig, description="Value x potential cells.")
    satisfaction: SatisfactionConfig = Field(default_factory=SatisfactionConfig, description="Satisfaction grade.")
    propositions: PropositionConfig = Field(default_factory=PropositionConfig, description="Next best proposition.")
    affinity: AffinityConfig = Field(
        default_factory=AffinityConfig, description="Category affinity: the category a proposition names."
    )
    retention: RetentionConfig = Field(
        default_factory=RetentionConfig, description="When a customer is forgotten (see docs/delivery.md, Retention)."
    )
    outbox_ttl_seconds: float = Field(
        default=900,
        ge=0,
        description="How long outputs are kept in state for resend on redelivery (seconds; "
        "longer than a failover, short enough to keep states small).",
    )

    @model_validator(mode="before")
    @classmethod
    def _defaults_follow_custom_tiers(cls, data: Any) -> Any:
        """With a custom tier ladder, unset tier-named defaults map onto it by position."""
        if not isinstance(data, dict) or not isinstance(data.get("tiers"), list | tuple):
            return data  # no ladder, or not a list: field validation reports it
        found = [t.get("name") if isinstance(t, dict) else getattr(t, "name", None) for t in data["tiers"]]
        names = [n for n in found if isinstance(n, str)]
        if not names or len(names) != len(found):
            return data  # let field validation report the bad ladder
        rename = {old: names[min(i, len(names) - 1)] for i, old in enumerate(DEFAULT_TIER_NAMES)}
        data = dict(data)
        data.setdefault("at_risk_tiers", tuple(dict.fromkeys(names[:2])))
        data.setdefault("top_tiers", (names[0],))
        data.setdefault("tier_shares", dict(zip(names[:-1], DEFAULT_SHARES, strict=False)))
        if "touch_patterns" not in data:
            defaults = _default_touch()
            data["touch_patterns"] = {new: defaults[old] for old, new in reversed(rename.items())}
        if "contact_rules" not in data:
            data["contact_rules"] = tuple(_renamed(rule, rename) for rule in _default_rules())
        return data

    @model_validator(mode="before")
    @classmethod
    def _propositions_follow_cells(cls, data: Any) -> Any:
        return defaults_follow_cells(data) if isinstance(data, dict) and "propositions" not in data else data

    @field_validator("fx_rates")
    @classmethod
    def _rates(cls, v: dict[str, float]) -> dict[str, float]:
        for currency, rate in v.items():
            if not math.isfinite(rate) or rate <= 0:
                raise ValueError(f"rate of {currency} must be a positive number")
        return v

    @field_validator("channel_costs")
    @classmethod
    def _costs(cls, v: dict[str, float]) -> dict[str, float]:
        for channel, cost in v.items():
            if not math.isfinite(cost) or cost < 0:
                raise ValueError(f"cost of {channel} must be a number >= 0")
        return v

    @field_validator("tier_shares")
    @classmethod
    def _shares(cls, v: dict[str, float]) -> dict[str, float]:
        for tier, share in v.items():
            if not math.isfinite(share) or not 0 < share < 1:
                raise ValueError(f"share of {tier} must be > 0 and < 1")
        return v

    @field_validator("recency_days", "frequency_counts", "monetary_amounts")
    @classmethod
    def _ascending(cls, v: tuple[float, ...]) -> tuple[float, ...]:
        if list(v) != sorted(v):
            raise ValueError("cut points must be ascending")
        return v

    @model_validator(mode="after")
    def _consistent(self) -> ScoringConfig:
        names = [t.name for t in self.tiers]
        if not self.tiers or len(set(names)) != len(names):
            raise ValueError("tiers: need at least one tier and unique names")
        if [t.min_score for t in self.tiers] != sorted((t.min_score for t in self.tiers), reverse=True):
            raise ValueError("tiers: list highest min_score first")
        if self.tiers[-1].min_score != 0:
            raise ValueError("tiers: the last tier must have min_score 0 so every score has a tier")
        missing = set(names) - set(self.touch_patterns)
        if missing:
            raise ValueError(f"touch_patterns: tier {sorted(missing)[0]!r} has no touch pattern")
        unknown = {c for r in self.contact_rules for c in (r.action.channel,)} - set(self.channel_costs)
        if unknown:
            raise ValueError(f"contact_rules: channel {sorted(unknown)[0]!r} has no entry in channel_costs")
        if set(self.channel_ladder) - set(self.channel_costs):
            raise ValueError("channel_ladder: every channel needs an entry in channel_costs")
        if 2 * self.trend_days > self.window_days:
            raise ValueError("trend_days: two trend periods must fit in window_days")
        for name in ("at_risk_tiers", "top_tiers"):
            if unknown_tiers := set(getattr(self, name)) - set(names):
                raise ValueError(f"{name}: unknown tier {sorted(unknown_tiers)[0]!r}")
        for rule in self.contact_rules:
            _check_rule(rule, names)
            if unknown_cells := set(rule.cells) - set(self.potential.cells.names):
                raise ValueError(f"contact_rules: rule {rule.name!r}: unknown cell {sorted(unknown_cells)[0]!r}")
        check_offerings(self.potential, self.propositions, names, SEGMENTS)
        _check_shares(self.tier_shares, names, self.tiering == "calibrated")
        _check_dedupe(self)
        _check_retention(self)
        return self

    # The calibration applied by `calibrated` (not a setting: it comes from a calibration file).
    _calibration: Calibration | None = PrivateAttr(default=None)
    # The evidence applied by `with_evidence` (from an evidence file; read only under `roi_evidence.enabled`).
    _evidence: Evidence | None = PrivateAttr(default=None)

    # Both properties below are on the scoring path (several reads per step): pydantic's `__getattr__`
    # for private attributes costs microseconds, and so does rebuilding the names.
    @property
    def tier_names(self) -> tuple[str, ...]:
        tiers = self.tiers
        cached = _TIER_NAMES.get(id(tiers))
        if cached is not None and cached[0] is tiers:
            return cached[1]
        if len(_TIER_NAMES) >= _TIER_NAMES_KEPT:
            _TIER_NAMES.clear()
        names = tuple(t.name for t in tiers)
        _TIER_NAMES[id(tiers)] = (tiers, names)
        return names

    @property
    def calibration(self) -> Calibration | None:
        """The calibration in force: None under absolute tiering, or before one is applied (then the
        absolute cut points and the tiers' min_score apply, in either mode)."""
        if self.tiering != "calibrated":
            return None
        private = self.__pydantic_private__
        return private["_calibration"] if private else None

    @property
    def evidence(self) -> Evidence | None:
        """The evidence in force (`with_evidence`), whether or not `roi_evidence.enabled`."""
        private = self.__pydantic_private__
        return private["_evidence"] if private else None

    def with_evidence(self, evidence: Evidence | None) -> ScoringConfig:
        """This config with `evidence` for the ROI guard (kept by `calibrated`)."""
        effective = self.model_copy()
        effective._evidence = evidence
        return effective

    def calibrated(self, calibration: Calibration) -> ScoringConfig:
        """The effective config under `calibration`: its tier thresholds replace the tiers' min_score and
        its percentile tables give the R/F/M points. Under absolute tiering, this config unchanged.

        Raises CalibrationError when the calibration was made for other tiers or another window.
        """
        if self.tiering != "calibrated":
            return self
        if calibration.tier_names != self.tier_names:
            raise CalibrationError(
                f"calibration: thresholds: tiers {', '.join(calibration.tier_names)} are not the config's "
                f"({', '.join(self.tier_names)})"
            )
        if calibration.window_days != self.window_days:
            raise CalibrationError(
                f"calibration: window_days: computed over {calibration.window_days} days, "
                f"the config's window is {self.window_days}"
            )
        tiers = tuple(t.model_copy(update={"min_score": calibration.thresholds[t.name]}) for t in self.tiers)
        effective = self.model_copy(update={"tiers": tiers})
        effective._calibration = calibration
        return effective


def _check_shares(shares: dict[str, float], tiers: list[str], required: bool) -> None:
    """Every tier but the last needs a share (calibrated tiering); the last takes the rest."""
    where = "tier_shares"
    if unknown := set(shares) - set(tiers):
        raise ValueError(f"{where}: unknown tier {sorted(unknown)[0]!r}")
    listed = [t for t in tiers if t in shares]
    if listed != list(shares):
        raise ValueError(f"{where}: list the tiers in the order of `tiers` (highest first)")
    last, upper = tiers[-1], [shares[t] for t in tiers[:-1] if t in shares]
    if last in shares and abs(sum(shares.values()) - 1) > 1e-9:
        raise ValueError(f"{where}: {last!r} is the last tier: it takes the rest (leave it out)")
    if sum(upper) >= 1:
        raise ValueError(f"{where}: the shares add up to {sum(upper):g}: leave some for the last tier {last!r}")
    if required and (missing := [t for t in tiers[:-1] if t not in shares]):
        raise ValueError(f"{where}: tier {missing[0]!r} has no share (every tier but the last needs one)")


def _check_dedupe(config: ScoringConfig) -> None:
    """The id memory's worst case must leave half of max_state_bytes to the rest of the state."""
    worst = worst_case_bytes(config.dedupe_days, config.dedupe_exact_ids, config.dedupe_filter_bytes)
    if 2 * worst > config.max_state_bytes:
        raise ValueError(
            f"max_state_bytes: the id memory (dedupe_exact_ids, dedupe_filter_bytes per 30 of dedupe_days) may "
            f"take {worst} bytes: more than half of {config.max_state_bytes}; raise it or lower those"
        )


def _check_retention(config: ScoringConfig) -> None:
    """A customer must be lapsed (and at the lowest recency rank) before being forgotten for inactivity."""
    days = config.retention.forget_after_days
    horizon = max(config.lapsed_days, config.recency_days[-1])
    if days is not None and days <= horizon:
        raise ValueError(
            f"retention.forget_after_days: {days} days would forget customers before they are lapsed; it must be "
            f"above lapsed_days and recency_days' last cut point ({horizon})"
        )


def _check_rule(rule: ContactRule, tiers: list[str]) -> None:
    """A rule whose filters name no real tier or segment would silently never fire."""
    where = f"contact_rules: rule {rule.name!r}"
    for tier in (*rule.from_tiers, *rule.to_tiers):
        if tier not in tiers:
            raise ValueError(f"{where}: unknown tier {tier!r}")
    for seg in rule.segments:
        if seg not in SEGMENTS:
            raise ValueError(f"{where}: unknown segment {seg!r} (one of {', '.join(SEGMENTS)})")
    if rule.direction != "any" and rule.on != "tier_changed":
        raise ValueError(f"{where}: direction applies only to on: tier_changed")


def parse_config(data: Any) -> ScoringConfig:
    """Validate a mapping into a config; raises ConfigError with one line naming the field."""
    if data is None:
        data = {}
    if not isinstance(data, dict):
        raise ConfigError("config: the top level must be a mapping of settings")
    try:
        return ScoringConfig.model_validate(data)
    except ValidationError as exc:
        err = exc.errors()[0]
        where = ".".join(str(p) for p in err["loc"]) or "config"
        raise ConfigError(f"config: {where}: {err['msg']}") from None


def parse_config_yaml(text: str) -> ScoringConfig:
    """Parse YAML text (already read by the caller) into a config."""
    try:
        data = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        line = f" at line {mark.line + 1}" if mark is not None else ""
        raise ConfigError(f"config: not valid YAML{line}") from None
    if isinstance(data, dict) and "scoring" in data:
        data = data["scoring"]
    return parse_config(data)
