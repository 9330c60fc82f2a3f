"""Evidence: what each contact-plan rule measurably does, per tier, as a versioned artefact.

Written by `tierstream plan-report --evidence-out` from closed outcome windows (`scoring.uplift`): per rule
and tier (and "*", every tier), the customers treated and held out, the uplift of the purchase rate and of
the net revenue per customer, each with its 95 % interval (None: too few outcomes for one). `version` is
"ev-" + the first 12 hex digits of the SHA-256 of the canonical JSON of every other field, so the same
content has the same version; it is named in the decisions that used it.

The ROI guard reads it when `roi_evidence.enabled` (see `scoring.plan.evidence_basis`); it is applied to
a config with `ScoringConfig.with_evidence`. Pure: no I/O; the shell reads and writes the file.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterable
from typing import Any, Final, Literal

from pydantic import BaseModel, ConfigDict, Field, PrivateAttr, ValidationError, field_validator, model_validator

from scoring.errors import ScoringError
from scoring.uplift import RuleEffect

FORMAT = 1
KIND: Final = "tierstream-evidence"


class EvidenceError(ScoringError):
    """An evidence file is invalid; the message is one line naming the field."""


class RuleEvidence(BaseModel):
    """One rule in one tier ("*": every tier): counts and uplifts (treated minus held out)."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    rule: str = Field(min_length=1, description="Contact rule.")
    tier: str = Field(min_length=1, description="Customer's tier at the decision; * for every tier.")
    treated: int = Field(ge=0, description="Treated customers with a closed outcome window.")
    held_out: int = Field(ge=0, description="Held-out customers with a closed outcome window.")
    purchase_uplift: float = Field(description="Uplift of the purchase rate in the window (0-1 scale).")
    purchase_low: float | None = Field(description="Its 95 % interval, low end (None: too few outcomes).")
    purchase_high: float | None = Field(description="Its 95 % interval, high end.")
    revenue_uplift: float = Field(description="Uplift of net revenue per customer in the window, base currency.")
    revenue_low: float | None = Field(description="Its 95 % interval, low end.")
    revenue_high: float | None = Field(description="Its 95 % interval, high end.")
    cost: float = Field(ge=0, description="Mean cost of a treated action, base currency.")

    @model_validator(mode="after")
    def _intervals(self) -> RuleEvidence:
        for name in ("purchase", "revenue"):
            low, mid, high = (getattr(self, f"{name}_{p}") for p in ("low", "uplift", "high"))
            if (low is None) != (high is None):
                raise ValueError(f"{name}_low and {name}_high: give both or neither")
            if low is not None and not low <= mid <= high:
                raise ValueError(f"{name}_uplift must lie in [{name}_low, {name}_high]")
        return self


class Evidence(BaseModel):
    """Measured uplift per rule and tier. Immutable."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    kind: Literal["tierstream-evidence"] = Field(default=KIND, description="What the file is.")
    format: int = Field(description="File format number.")
    version: str = Field(pattern=r"^ev-[0-9a-f]{12}$", description="Content version, named in decisions.")
    outcomes: int = Field(ge=0, description="Distinct outcome windows it was measured from.")
    rules: tuple[RuleEvidence, ...] = Field(description="Per rule and tier, sorted.")
    _index: dict[tuple[str, str], RuleEvidence] = PrivateAttr(default_factory=dict)

    @field_validator("format")
    @classmethod
    def _known_format(cls, v: int) -> int:
        if v != FORMAT:
            raise ValueError(f"this tierstream reads evidence format {FORMAT}, not {v}")
        return v

    @model_validator(mode="after")
    def _unique(self) -> Evidence:
        keys = [(r.rule, r.tier) for r in self.rules]
        if len(set(keys)) != len(keys):
            raise ValueError("rules: a rule and tier appear twice")
        self._index = dict(zip(keys, self.rules, strict=True))
        return self

    def find(self, rule: str, tier: str) -> RuleEvidence | None:
        """The evidence of `rule` in `tier`, if any."""
        return self._index.get((rule, tier))

    def to_json(self) -> str:
        return json.dumps(self.model_dump(mode="json"), indent=1) + "\n"


def content_version(evidence: Evidence) -> str:
    """ "ev-" + 12 hex digits of the SHA-256 of the canonical JSON of every field but `version`."""
    doc = evidence.model_dump(mode="json", exclude={"version"})
    canonical = json.dumps(doc, separators=(",", ":"), ensure_ascii=True, allow_nan=False)
    return "ev-" + hashlib.sha256(canonical.encode()).hexdigest()[:12]


def make_evidence(effects: Iterable[RuleEffect], outcomes: int) -> Evidence:
    """The evidence of `scoring.uplift.effects` over `outcomes` windows, with its content version."""
    rows = [
        {
            "rule": e.rule,
            "tier": e.tier,
            "treated": e.treated,
            "held_out": e.held_out,
            "purchase_uplift": e.purchase.uplift,
            "purchase_low": e.purchase.low,
            "purchase_high": e.purchase.high,
            "revenue_uplift": e.revenue.uplift,
            "revenue_low": e.revenue.low,
            "revenue_high": e.revenue.high,
            "cost": e.cost,
        }
        for e in sorted(effects, key=lambda e: (e.rule, e.tier))
    ]
    draft = _validated({"format": FORMAT, "version": "ev-000000000000", "outcomes": outcomes, "rules": rows})
    return draft.model_copy(update={"version": content_version(draft)})


def parse_evidence(data: Any) -> Evidence:
    """Validate a mapping (a parsed file) into evidence whose version matches its content; EvidenceError
    (one line naming the field) otherwise."""
    if not isinstance(data, dict):
        raise EvidenceError("evidence: the top level must be a JSON object")
    evidence = _validated(data)
    expected = content_version(evidence)
    if evidence.version != expected:
        raise EvidenceError(
            f"evidence: version: {evidence.version} does not match the content ({expected}): "
            "the file was changed after it was made"
        )
    return evidence


def evidence_from_json(text: str) -> Evidence:
    try:
        data = json.loads(text)
    except json.JSONDecodeError as exc:
        raise EvidenceError(f"evidence: not valid JSON (line {exc.lineno}: {exc.msg})") from None
    return parse_evidence(data)


def _validated(data: dict[str, Any]) -> Evidence:
    try:
        return Evidence.model_validate(data)
    except ValidationError as exc:
        err = exc.errors()[0]
        where = ".".join(str(p) for p in err["loc"])
        message = err["msg"].removeprefix("Value error, ")
        raise EvidenceError(f"evidence: {where}: {message}" if where else f"evidence: {message}") from None
