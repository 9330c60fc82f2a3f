"""The worker writes output JSON without building the pydantic models; it must be the models' JSON, byte
for byte: every decision and snapshot of a realistic stream (absolute and calibrated tiering), and the float
formats where pydantic-core and Python's `repr` differ."""

from __future__ import annotations

import dataclasses
import json
from datetime import UTC, datetime

import pytest

from scoring.calibrate import apply_calibration, calibrate
from scoring.config import ScoringConfig
from scoring.events import MS_PER_DAY, from_ms
from scoring.state import NEW_STATE, CustomerState
from scoring.step import StepResult, step, value_of
from streams.convert import OutputContext, decision_json, decision_message, to_core
from streams.local.generator import generate
from streams.profile import CustomerProfile, profile_of

END = datetime(2026, 6, 30, tzinfo=UTC)


def stepped(config: ScoringConfig, customers: int = 150, days: float = 400) -> list[tuple[str, StepResult]]:
    """Every step of a generated stream, event clock (each event as of its own time)."""
    states: dict[str, CustomerState] = {}
    out = []
    for message in generate(11, customers, days, start=datetime(2025, 6, 1, tzinfo=UTC)):
        event = to_core(message)
        result = step(states.get(message.customer_id, NEW_STATE), event, event.at_ms, message.customer_id, config)
        states[message.customer_id] = result.state
        out.append((message.customer_id, result))
    return out


def calibrated_config() -> ScoringConfig:
    config = ScoringConfig()
    finals = {customer: result.state for customer, result in stepped(config, days=300)}
    day = max(s.clock_ms for s in finals.values()) // MS_PER_DAY
    return apply_calibration(config, calibrate(finals.values(), day, config))


@pytest.fixture(scope="module", params=["absolute", "calibrated"])
def steps(request: pytest.FixtureRequest) -> tuple[ScoringConfig, list[tuple[str, StepResult]]]:
    # absolute: with a control group, so held-out actions and outcomes are among the decisions
    config = ScoringConfig(tiering="absolute", global_holdout_share=0.3) if request.param == "absolute" \
        else calibrated_config()
    return config, stepped(config)


def test_decisions_are_the_models_json(steps: tuple[ScoringConfig, list[tuple[str, StepResult]]]) -> None:
    config, results = steps
    kinds = set()
    for customer, result in results:
        ctx = OutputContext(customer, config.version, from_ms(result.state.clock_ms), "m-1",
                            config.calibration.version if config.calibration else None)
        for decision in result.decisions:
            message = decision_message(decision, ctx)
            fast = decision_json(decision, ctx)
            assert (fast is None) == (message is None)
            if message is not None:
                assert fast == message.model_dump_json().encode(), decision
                kinds.add(decision.kind)
    assert kinds == {"tier_change", "potential_change", "action", "alert"} | (
        {"outcome"} if config.global_holdout_share else set())


def profiles(config: ScoringConfig, results: list[tuple[str, StepResult]]) -> list[CustomerProfile]:
    out = []
    for customer, result in results:
        if result.evaluation is not None:
            value = value_of(result.state, result.evaluation.score.day, config, None)
            out.append(profile_of(customer, result.state, result.evaluation, config, None, value))
    return out


def test_snapshots_are_the_models_json(steps: tuple[ScoringConfig, list[tuple[str, StepResult]]]) -> None:
    config, results = steps
    seen = profiles(config, results)
    assert len({p.segment for p in seen}) >= 4 and len({p.tier for p in seen}) >= 3
    for profile in seen:
        emitted = from_ms(profile.updated_ms)
        fast = profile.message_json("0" * 32, "e-1", profile.updated_ms - 5, emitted)
        assert fast == profile.message("0" * 32, "e-1", profile.updated_ms - 5, emitted).model_dump_json().encode()


@pytest.mark.parametrize("tiny", [1e-06, 1e-05, 2.5e-07, 0.0001, 1e16, 5])
def test_float_formats_follow_pydantic(steps: tuple[ScoringConfig, list[tuple[str, StepResult]]],
                                       tiny: float) -> None:
    """Python's repr writes 1e-05 and pydantic-core 0.00001: the fast path must write pydantic's."""
    config, results = steps
    profile = dataclasses.replace(profiles(config, results)[-1], model_version="m-1", at_risk_score=tiny / 1e16,
                                  model={"p_alive": tiny / 1e16, "expected_purchases_90": tiny,
                                         "expected_purchases_365": tiny, "clv": tiny})
    emitted = from_ms(profile.updated_ms)
    fast = profile.message_json("0" * 32, "e-1", profile.updated_ms, emitted)
    assert fast == profile.message("0" * 32, "e-1", profile.updated_ms, emitted).model_dump_json().encode()
    assert json.loads(fast)["clv"] == tiny


@pytest.mark.parametrize(("last_seen", "tier"), [(20_000, "B"), (None, None)])
def test_a_forget_is_the_models_json(last_seen: int | None, tier: str | None) -> None:
    from scoring.decisions import Forgotten

    decision = Forgotten("0" * 32, "review@20400", 20_400 * MS_PER_DAY, "inactive", last_seen, tier,
                         cause_text="no activity for 400 days")
    ctx = OutputContext("C1", "rules-1", from_ms(20_400 * MS_PER_DAY), None, "cal-1")
    message = decision_message(decision, ctx)
    assert message is not None and decision_json(decision, ctx) == message.model_dump_json().encode()
    doc = json.loads(message.model_dump_json())
    assert (doc["type"], doc["last_activity_day"], doc["tier"]) == (
        "CustomerForgotten", None if last_seen is None else "2024-10-04", tier)
