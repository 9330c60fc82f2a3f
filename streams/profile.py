"""One customer profile record, and its renderings: Redis hash, API document, CustomerScore, CSV row.

Every place that shows a customer's profile derives it from `CustomerProfile` (built by
`profile_of` from a state and its evaluation), so names and rounding agree everywhere: money to
2 decimals, scores to 2, component points to 4, probabilities to 4 (p_alive 6).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import TYPE_CHECKING, Any

from pydantic_core import to_json

from schemas.outputs import CustomerScore
from scoring.btyd import btyd_summary
from scoring.config import ScoringConfig
from scoring.events import MS_PER_DAY, from_ms
from scoring.money import DECIMALS
from scoring.offering import Offering, assess_offering
from scoring.rfm import COMPONENT_NAMES
from scoring.state import CustomerState
from scoring.step import Evaluation, evaluate, value_of
from streams.convert import output_base

if TYPE_CHECKING:
    from scoring.affinity import Affinity
    from scoring.valuemodel.model import ValueModel
    from scoring.valuemodel.scalar import CustomerValue

MODEL_FIELDS = ("p_alive", "expected_purchases_90", "expected_purchases_365", "clv")
OFFERING_FIELDS = ("potential", "potential_basis", "value_potential_cell", "satisfaction", "satisfaction_points",
                   "satisfaction_explanation", "proposition", "proposition_reason", "proposition_category")


@dataclass(frozen=True, slots=True)
class CustomerProfile:
    """A customer's published profile as of `day` (epoch day of the evaluation)."""

    customer_id: str
    day: int
    tier: str
    score: float
    r_score: int
    f_score: int
    m_score: int
    recency_days: int | None
    frequency: int
    monetary: float
    returns_amount: float
    complaints: int
    tenure_days: int | None
    segment: str
    at_risk: bool
    at_risk_score: float
    typical_gap_days: float
    annual_value: float
    components: tuple[tuple[str, float, float], ...]  # (name, input value, points)
    review_day: int | None
    updated_ms: int
    config_version: str
    model_version: str | None
    model: dict[str, float | None]  # MODEL_FIELDS -> value (None without a model)
    calibration_version: str | None = None
    offering: Offering | None = None  # potential and cell, satisfaction, proposition

    # -- renderings ---------------------------------------------------------------------------
    def offering_fields(self) -> dict[str, Any]:
        """Potential, value x potential cell, satisfaction and proposition (None each without an offering)."""
        o = self.offering
        if o is None:
            return dict.fromkeys(OFFERING_FIELDS)
        return {"potential": o.potential.score, "potential_basis": o.potential.basis,
                "value_potential_cell": o.potential.cell, "satisfaction": o.satisfaction.grade,
                "satisfaction_points": o.satisfaction.points,
                "satisfaction_explanation": o.satisfaction.explanation(), "proposition": o.proposition.name,
                "proposition_reason": o.proposition.reason, "proposition_category": o.proposition.category or None}
    def component_dicts(self) -> list[dict[str, Any]]:
        return [{"name": n, "value": v, "points": p} for n, v, p in self.components]

    def explanation(self) -> str:
        """The score in words: each component that adds or costs points."""
        return "; ".join(f"{n} {p:+.1f}" for n, _, p in self.components if p)

    def redis_fields(self) -> dict[str, Any]:
        """The Redis hash (see `streams.serving.redis_view` for the key layout)."""
        return {
            "tier": self.tier, "score": self.score, "r_score": self.r_score, "f_score": self.f_score,
            "m_score": self.m_score, "segment": self.segment, "at_risk": self.at_risk,
            "at_risk_score": self.at_risk_score, "annual_value": self.annual_value,
            "recency_days": self.recency_days, "frequency": self.frequency, "monetary": self.monetary,
            "returns_amount": self.returns_amount, "complaints": self.complaints, "tenure_days": self.tenure_days,
            "components": self.component_dicts(), "updated_at": from_ms(self.updated_ms).isoformat(),
            "version": self.config_version, "model_version": self.model_version,
            "calibration_version": self.calibration_version, **self.model, **self.offering_fields(),
        }

    def document(self, state: CustomerState | None = None) -> dict[str, Any]:
        """The query API's document (`GET /customers/{id}`); with the state, its BTYD summary too."""
        btyd = None if state is None else btyd_summary(state, self.day)
        return {
            "customer_id": self.customer_id, "as_of": from_ms(self.day * MS_PER_DAY).date().isoformat(),
            "tier": self.tier, "stored_tier": None if state is None else state.tier, "score": self.score,
            "segment": self.segment, "r_score": self.r_score, "f_score": self.f_score, "m_score": self.m_score,
            "recency_days": self.recency_days, "frequency": self.frequency, "monetary": self.monetary,
            "returns_amount": self.returns_amount, "complaints": self.complaints, "tenure_days": self.tenure_days,
            "annual_value": self.annual_value, "at_risk": self.at_risk, "at_risk_score": self.at_risk_score,
            "typical_gap_days": self.typical_gap_days, "components": self.component_dicts(),
            "explanation": self.explanation(),
            "btyd": None if btyd is None else {"x": btyd.x, "t_x": btyd.t_x, "T": btyd.T,
                                                "mean_repeat_value": round(btyd.mean_repeat_value, 2)},
            "next_review_at": None if self.review_day is None else from_ms(self.review_day * MS_PER_DAY).isoformat(),
            "config_version": self.config_version, "model_version": self.model_version,
            "calibration_version": self.calibration_version, **self.model, **self.offering_fields(),
        }

    def score_fields(self, output_id: str, cause: str, event_ms: int, emitted_at: datetime) -> dict[str, object]:
        """The CustomerScore snapshot's fields, in the model's order and already of its field types."""
        return {
            **output_base(output_id, self.customer_id, cause, from_ms(event_ms), emitted_at, self.config_version,
                          self.model_version, self.calibration_version),
            "type": "CustomerScore", "tier": self.tier, "score": float(self.score), "r_score": self.r_score,
            "f_score": self.f_score,
            "m_score": self.m_score, "recency_days": self.recency_days, "frequency": self.frequency,
            "monetary": float(self.monetary), "returns_amount": float(self.returns_amount),
            "complaints": self.complaints, "tenure_days": self.tenure_days, "segment": self.segment,
            "at_risk": self.at_risk, "at_risk_score": float(self.at_risk_score),
            "annual_value": float(self.annual_value),
            "components": [{"name": n, "value": float(v), "points": float(p)} for n, v, p in self.components],
            **{name: None if v is None else float(v) for name, v in self.model.items()},
            "next_review_at": None if self.review_day is None else from_ms(self.review_day * MS_PER_DAY),
            **self.offering_fields(),
        }

    def message(self, output_id: str, cause: str, event_ms: int, emitted_at: datetime) -> CustomerScore:
        """The CustomerScore snapshot of this profile (topic `customer-scores`)."""
        return CustomerScore(**self.score_fields(output_id, cause, event_ms, emitted_at))

    def message_json(self, output_id: str, cause: str, event_ms: int, emitted_at: datetime) -> bytes:
        """`message(...).model_dump_json()`, byte for byte, without building the model (the worker's flush;
        tests hold the two paths equal)."""
        return to_json(self.score_fields(output_id, cause, event_ms, emitted_at))


def profile_of(
    customer_id: str, state: CustomerState, evaluation: Evaluation, config: ScoringConfig,
    model_version: str | None = None, value: CustomerValue | None = None, affinity: Affinity | None = None,
) -> CustomerProfile:
    """The profile of `state` as evaluated (`evaluation`, as of its score's day) under `config` (whose
    version, and calibration's, it is stamped with)."""
    s, risk = evaluation.score, evaluation.risk
    return CustomerProfile(
        customer_id, s.day, evaluation.tier, s.composite, s.r, s.f, s.m, s.recency_days, s.frequency,
        round(s.monetary, DECIMALS), round(s.returns_amount, DECIMALS), s.complaints, s.tenure_days, evaluation.segment,
        risk.is_at_risk, risk.score, round(risk.gap_days, 2), s.annual_value,
        tuple(zip(COMPONENT_NAMES, s.component_values(), [round(p, 4) if p else p for p in s.points], strict=True)),
        state.review_day, state.clock_ms,
        config.version, model_version, model_values(value),
        config.calibration.version if config.calibration is not None else None,
        assess_offering(state, s, evaluation.tier, evaluation.segment, risk.is_at_risk, value, config,
                        affinity=affinity),
    )


def model_values(value: CustomerValue | None) -> dict[str, float | None]:
    """The value model's figures as output fields (None without a model)."""
    if value is None:
        return dict.fromkeys(MODEL_FIELDS)
    return {"p_alive": round(value.p_alive, 6), "expected_purchases_90": round(value.expected_90, 4),
            "expected_purchases_365": round(value.expected_365, 4), "clv": round(value.clv, 2)}


def stored_profile(
    customer_id: str, state: CustomerState, config: ScoringConfig, model: ValueModel | None = None,
    today: int | None = None,
) -> CustomerProfile | None:
    """A stored customer's profile as of `today` (default: its last evaluation, the one it published);
    None before its first evaluation. The worker's lookups and `redis-resync` both use it."""
    if state.scored_day is None:
        return None
    day = state.scored_day if today is None else max(today, state.scored_day)
    evaluation = evaluate(state, day, config, model)
    return profile_of(customer_id, state, evaluation, config, model.version if model else None,
                      value_of(state, day, config, model), model.affinity if model else None)
