"""The one customer profile record: its Redis hash, API document and CustomerScore message agree."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

import pytest

from schemas.outputs import CustomerScore
from streams.profile import MODEL_FIELDS, OFFERING_FIELDS, CustomerProfile, stored_profile
from tests.serving.model_kit import cdnow_model, scored

SHARED = ("tier", "score", "r_score", "f_score", "m_score", "segment", "at_risk", "at_risk_score", "annual_value",
          "recency_days", "frequency", "monetary", "returns_amount", "complaints", "tenure_days", "model_version",
          "calibration_version", *MODEL_FIELDS, *OFFERING_FIELDS)


@pytest.fixture(scope="module", params=["rules", "model"])
def profiles(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> list[CustomerProfile]:
    model = cdnow_model(tmp_path_factory.mktemp("model")) if request.param == "model" else None
    handler, flush = scored(model)
    out = []
    for _, customer, _ in flush.states:
        state = handler.cache.get(customer)
        assert state is not None
        profile = stored_profile(customer, state, handler.config, model)
        assert profile is not None
        out.append(profile)
    return out


def renderings(profile: CustomerProfile) -> tuple[dict, dict, dict]:
    message = profile.message("0" * 32, "test", profile.updated_ms, datetime(2024, 1, 1, tzinfo=UTC))
    return profile.redis_fields(), profile.document(), CustomerScore.model_validate_json(
        message.model_dump_json()).model_dump(mode="json")


def test_every_rendering_shows_the_same_figures(profiles: list[CustomerProfile]) -> None:
    for profile in profiles:
        redis, document, message = renderings(profile)
        for name in SHARED:
            assert redis[name] == document[name], name
            if name in message:
                assert message[name] == redis[name], name
        assert redis["components"] == document["components"] == message["components"]
        assert redis["version"] == document["config_version"] == message["config_version"]


def test_money_has_at_most_4_decimals_and_names_are_the_r_f_m_scores(profiles: list[CustomerProfile]) -> None:
    for profile in profiles:
        redis, _, _ = renderings(profile)
        assert round(redis["monetary"], 4) == redis["monetary"]
        assert {"r_score", "f_score", "m_score"} <= set(redis) and "r" not in redis


def test_with_a_model_every_profile_has_clv_and_the_model_version(profiles: list[CustomerProfile]) -> None:
    with_model = [p for p in profiles if p.model_version is not None]
    without = [p for p in profiles if p.model_version is None]
    assert bool(with_model) != bool(without)  # one fixture parameter each
    for profile in with_model:
        assert all(profile.model[name] is not None for name in MODEL_FIELDS)
        assert profile.model_version == "cdnow-v2"
    for profile in without:
        assert all(profile.model[name] is None for name in MODEL_FIELDS)
    for profile in profiles:  # the potential's basis follows the model; every profile has its offering
        fields = profile.offering_fields()
        assert fields["potential_basis"] == ("model" if profile.model_version else "rules")
        category = fields.pop("proposition_category")  # None: these customers' purchases carry no items
        assert None not in fields.values() and 0 <= fields["potential"] <= 1 and category is None


def test_stored_profile_is_what_the_worker_published(tmp_path: Path) -> None:
    model = cdnow_model(tmp_path)
    handler, flush = scored(model)
    published = dict(flush.profiles)
    assert len(published) == 6
    for customer, fields in published.items():
        state = handler.cache.get(customer)
        assert state is not None
        again = stored_profile(customer, state, handler.config, model)
        assert again is not None and again.redis_fields() == fields


def test_a_sub_cent_spend_shows_exactly_in_every_rendering() -> None:
    """Money kept in 1/10,000 (`scoring.money`): 222.831 + 554.02 shows as 776.851 in Redis, the API document
    and the CustomerScore message, and a whole-cent spend as before (12.5: 12.50)."""
    from scoring import NEW_STATE, CoreEvent, Kind, ScoringConfig, fold
    from scoring.events import MS_PER_DAY
    from scoring.step import evaluate
    from streams.profile import profile_of

    config, day = ScoringConfig(), 20_000
    for amounts, shown in (((2_228_310, 5_540_200), 776.851), ((125_000,), 12.5)):
        events = [CoreEvent(Kind.PURCHASE, f"p{i}", (day - i) * MS_PER_DAY, a, "USD") for i, a in enumerate(amounts)]
        state, _, _ = fold(NEW_STATE, events, (day + 1) * MS_PER_DAY - 1, config)
        profile = profile_of("c1", state, evaluate(state, day, config), config)
        redis, document, message = renderings(profile)
        assert redis["monetary"] == document["monetary"] == message["monetary"] == shown
        assert CustomerScore.model_validate_json(profile.message_json("0" * 32, "t", 0, datetime(2024, 1, 1,
                                                 tzinfo=UTC))).monetary == shown


def test_the_proposition_names_its_category_in_every_rendering_and_on_actions() -> None:
    """A model fitted with items: the cross-sell names the category on the profile (Redis, API, CustomerScore)
    and on the contact action the same evaluation requests."""
    from schemas.outputs import ContactActionRequested
    from scoring import NEW_STATE, CoreEvent, Kind, parse_config, step
    from scoring.affinity import fit_affinity
    from scoring.decisions import ActionRequest
    from scoring.events import MS_PER_DAY
    from scoring.valuemodel import ValueModel
    from streams.convert import OutputContext, decision_message
    from tests.scoring.test_valuemodel import MODEL_V2

    model = ValueModel.from_dict(MODEL_V2).with_affinity(fit_affinity([{"tea", "cups"}] * 3 + [{"tea"}], 2))
    assert ValueModel.from_dict(model.to_dict()) == model  # the model file keeps the affinity
    config = parse_config({
        "tiering": "absolute",
        "propositions": {"rules": [{"name": "all", "proposition": "cross_sell", "reason": "why"}]},
        "contact_rules": [{"name": "hello", "on": "tier_changed", "action": {"type": "mail", "channel": "email"}}],
    })
    day = 20_000
    event = CoreEvent(Kind.PURCHASE, "p1", day * MS_PER_DAY, 500_000, "USD", 0, ("tea",))
    result = step(NEW_STATE, event, event.at_ms, "c1", config, model=model)
    assert result.state.categories == (("tea", day),)
    profile = stored_profile("c1", result.state, config, model)
    assert profile is not None
    redis, document, message = renderings(profile)
    assert redis["proposition_category"] == document["proposition_category"] == message["proposition_category"]
    assert redis["proposition_category"] == "cups" and "also bought cups" in redis["proposition_reason"]
    actions = [d for d in result.decisions if isinstance(d, ActionRequest)]
    assert actions and all(a.proposition_category == "cups" for a in actions)
    ctx = OutputContext("c1", config.version, datetime(2024, 1, 1, tzinfo=UTC), model.version)
    sent = decision_message(actions[0], ctx)
    assert isinstance(sent, ContactActionRequested) and sent.proposition_category == "cups"
    plain = stored_profile("c1", result.state, config, None)
    assert plain is not None and plain.redis_fields()["proposition_category"] is None
