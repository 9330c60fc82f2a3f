"""Message models: valid samples pass, invalid inputs are refused, outputs forbid extra fields."""

from __future__ import annotations

import json
import typing
from datetime import UTC, datetime
from decimal import Decimal
from pathlib import Path

import pytest
from pydantic import AwareDatetime, BaseModel, TypeAdapter, ValidationError

from schemas import (
    INPUT_MODELS,
    OUTPUT_MODELS,
    ComplaintFiled,
    EnquiryReceived,
    ErasureRequested,
    InputEvent,
    LineItem,
    OrderReturned,
    PurchaseCompleted,
    ScoreComponent,
    TouchPlan,
)

EVENTS = Path(__file__).resolve().parents[1] / "fixtures" / "events"
INPUT = TypeAdapter(InputEvent)
SAMPLES = {"purchase": PurchaseCompleted, "return": OrderReturned, "complaint": ComplaintFiled,
           "enquiry": EnquiryReceived, "erasure": ErasureRequested}


def _sample(name: str) -> dict:
    return json.loads((EVENTS / f"{name}.json").read_text())


# --- valid inputs ------------------------------------------------------------------------------

@pytest.mark.parametrize(("name", "model"), SAMPLES.items())
def test_sample_files_validate(name, model):
    text = (EVENTS / f"{name}.json").read_text()
    message = model.model_validate_json(text)
    assert message.type == name
    assert INPUT.validate_json(text) == message
    moment = message.requested_at if isinstance(message, ErasureRequested) else message.occurred_at
    assert moment.utcoffset() is not None


def test_one_sample_per_input_type():
    assert set(SAMPLES) == set(INPUT_MODELS)
    assert {m.model_fields["type"].default for m in INPUT_MODELS.values()} == set(INPUT_MODELS)
    assert all(INPUT_MODELS[k] is v for k, v in SAMPLES.items())


def test_mixed_jsonl_validates_line_by_line():
    lines = [line for line in (EVENTS / "mixed.jsonl").read_text().splitlines() if line.strip()]
    messages = [INPUT.validate_json(line) for line in lines]
    assert {m.type for m in messages} == set(INPUT_MODELS)
    assert len({m.event_id for m in messages}) == len(messages)


def test_amounts_are_exact_decimals():
    purchase = PurchaseCompleted.model_validate(_sample("purchase"))
    assert purchase.amount == Decimal("249.90")
    assert purchase.items is not None and purchase.items[0].unit_price == Decimal("99.95")
    assert OrderReturned.model_validate(_sample("return")).amount == Decimal("99.95")


def test_offsets_are_kept_and_comparable():
    complaint = ComplaintFiled.model_validate(_sample("complaint"))
    assert complaint.occurred_at == datetime(2025, 3, 21, 7, 15, tzinfo=UTC)


def test_return_currency_is_optional_but_purchase_currency_is_not():
    data = _sample("return")
    del data["currency"]
    assert OrderReturned.model_validate(data).currency is None
    data = _sample("purchase")
    del data["currency"]
    with pytest.raises(ValidationError):
        PurchaseCompleted.model_validate(data)


@pytest.mark.parametrize("amount", ["0", 0, "0.0001", "1000000000", 1_000_000_000, "12.3400", 7])
def test_amount_edges_accepted(amount):
    PurchaseCompleted.model_validate({**_sample("purchase"), "amount": amount})


def test_messages_are_immutable():
    purchase = PurchaseCompleted.model_validate(_sample("purchase"))
    with pytest.raises(ValidationError):
        purchase.amount = Decimal(1)  # type: ignore[misc]


# --- invalid inputs ----------------------------------------------------------------------------

def _raw_with(name: str, field: str, raw_json_value: str) -> str:
    """The sample's JSON text with `field` set to a raw JSON token (so NaN etc. can be written)."""
    data = _sample(name)
    data[field] = "__PLACEHOLDER__"
    return json.dumps(data).replace('"__PLACEHOLDER__"', raw_json_value)


@pytest.mark.parametrize(("name", "field", "raw"), [
    ("purchase", "amount", "NaN"), ("purchase", "amount", '"NaN"'), ("purchase", "amount", '"nan"'),
    ("purchase", "amount", "Infinity"), ("purchase", "amount", '"Infinity"'), ("purchase", "amount", "-Infinity"),
    ("purchase", "amount", "-0.01"), ("purchase", "amount", '"-1"'), ("purchase", "amount", "-1e-9"),
    ("purchase", "amount", "1000000000.01"), ("purchase", "amount", '"1e10"'), ("purchase", "amount", "1e300"),
    ("purchase", "amount", '"0.00001"'),
    ("purchase", "amount", "null"), ("purchase", "amount", '""'), ("purchase", "amount", '"12,50"'),
    ("return", "amount", "NaN"), ("return", "amount", "-5"), ("return", "amount", "1e12"),
    ("purchase", "occurred_at", '"2025-03-14T09:26:53"'),
    ("purchase", "occurred_at", '"2025-03-14"'),
    ("purchase", "occurred_at", '"yesterday"'),
    ("complaint", "occurred_at", '"2025-03-21 08:15:00"'),
    ("enquiry", "occurred_at", '"2025-13-01T00:00:00Z"'),
    ("complaint", "severity", "6"), ("complaint", "severity", "0"), ("complaint", "severity", "-1"),
    ("complaint", "severity", "2.5"), ("complaint", "severity", '"high"'), ("complaint", "severity", "null"),
    ("purchase", "currency", '"usd"'), ("purchase", "currency", '"US"'), ("purchase", "currency", '"USDX"'),
    ("purchase", "currency", '"U$D"'), ("purchase", "currency", '"USD\\n"'), ("purchase", "currency", '""'),
    ("purchase", "currency", "null"), ("return", "currency", '"eur"'),
    ("purchase", "event_id", '""'), ("purchase", "event_id", '"a\\nb"'), ("purchase", "event_id", '"a\\u0000"'),
    ("purchase", "event_id", json.dumps("x" * 201)),
    ("purchase", "customer_id", '""'), ("purchase", "customer_id", '"C\\t1"'), ("purchase", "customer_id", "123"),
    ("purchase", "order_id", '""'),
    ("purchase", "type", '"refund"'), ("purchase", "type", '"return"'),
    ("purchase", "items", '[{"sku": "A", "quantity": 0, "unit_price": 1}]'),
    ("purchase", "items", '[{"sku": "A", "quantity": 1, "unit_price": -1}]'),
    ("purchase", "items", '[{"sku": "A", "quantity": 1, "unit_price": "NaN"}]'),
    ("purchase", "items", '[{"sku": "A", "quantity": 1, "unit_price": 1, "colour": "red"}]'),
    ("purchase", "items", '[{"sku": "A", "quantity": 1}]'),
    ("complaint", "category", '""'),
    ("enquiry", "topic", '""'),
])
def test_invalid_field_values_are_refused(name, field, raw):
    text = _raw_with(name, field, raw)
    with pytest.raises(ValidationError):
        SAMPLES[name].model_validate_json(text)
    with pytest.raises(ValidationError):
        INPUT.validate_json(text)


@pytest.mark.parametrize("name", SAMPLES)
def test_extra_field_is_refused(name):
    data = {**_sample(name), "unexpected": 1}
    with pytest.raises(ValidationError) as err:
        SAMPLES[name].model_validate(data)
    assert [e["type"] for e in err.value.errors()] == ["extra_forbidden"]


@pytest.mark.parametrize(("name", "field"), [
    (name, field) for name, model in SAMPLES.items()
    for field, info in model.model_fields.items() if info.is_required()
])
def test_missing_required_field_is_refused(name, field):
    data = _sample(name)
    del data[field]
    with pytest.raises(ValidationError) as err:
        SAMPLES[name].model_validate(data)
    assert [(e["type"], e["loc"]) for e in err.value.errors()] == [("missing", (field,))]


def test_required_fields_are_the_expected_ones():
    required = {name: {f for f, i in m.model_fields.items() if i.is_required()} for name, m in SAMPLES.items()}
    assert required == {
        "purchase": {"event_id", "customer_id", "occurred_at", "amount", "currency", "order_id"},
        "return": {"event_id", "customer_id", "occurred_at", "amount", "order_id"},
        "complaint": {"event_id", "customer_id", "occurred_at", "severity", "category"},
        "enquiry": {"event_id", "customer_id", "occurred_at", "topic"},
        "erasure": {"event_id", "customer_id", "requested_at"},
    }


def test_union_without_type_tag_is_refused():
    data = _sample("purchase")
    del data["type"]
    PurchaseCompleted.model_validate(data)          # the topic model defaults its tag
    with pytest.raises(ValidationError):
        INPUT.validate_python(data)                 # the mixed stream needs it


@pytest.mark.parametrize("raw", ["", "{", "[]", "null", '"purchase"', "{}"])
def test_non_objects_are_refused(raw):
    with pytest.raises(ValidationError):
        INPUT.validate_json(raw)


# --- outputs ----------------------------------------------------------------------------------

NOW = "2025-03-14T10:00:00+00:00"
COMMON = {"id": "0123456789abcdef0123456789abcdef", "customer_id": "C-1", "cause": "ord-1",
          "event_time": "2025-03-14T09:00:00Z", "emitted_at": NOW, "config_version": "rules-1"}
OUTPUT_SAMPLES = {
    "TierChanged": {**COMMON, "from_tier": "B", "to_tier": "A", "direction": "up", "score": 61.5,
                    "previous_score": 40.0,
                    "touch_plan": {"channel": "email", "cadence_days": 30, "owner": "crm"}},
    "CustomerForgotten": {**COMMON, "reason": "inactive", "last_activity_day": "2024-02-01", "tier": "C",
                          "cause_text": "no activity for 400 days"},
    "PotentialChanged": {**COMMON, "from_cell": "maintain", "to_cell": "develop", "potential": 0.65,
                         "previous_potential": 0.5, "potential_basis": "rules", "tier": "B", "proposition": "upsell",
                         "proposition_reason": "low value with the potential to grow (cell develop)"},
    "ContactActionRequested": {**COMMON, "rule": "thank-upgrade", "trigger": "tier_changed",
                               "action_type": "upgrade_thanks", "channel": "email", "requested_channel": "email",
                               "priority": "normal", "owner": "crm", "due_at": NOW, "cost": 0.1,
                               "annual_value": 350.0, "roi_decision": "approved",
                               "reason": "email costs 0.10 <= budget 35.00", "tier": "A"},
    "ContactOutcome": {**COMMON, "action_id": "0123456789abcdef0123456789abcdef", "rule": "thank-upgrade",
                       "action_type": "upgrade_thanks", "channel": "email", "group": "held_out", "tier": "A",
                       "started_at": NOW, "window_days": 60, "purchases": 2, "revenue": 120.5, "returns": 0.0,
                       "cost": 0.0, "tier_after": "AAA", "tier_move": "up", "churned": False},
    "CustomerAlert": {**COMMON, "kind": "at_risk", "tier": "AAA", "score": 90.0, "at_risk_score": 0.57,
                      "value_at_stake": 5000.0, "reason": "15 days since last purchase, typical gap 7.0 days"},
    "CustomerScore": {**COMMON, "tier": "A", "score": 61.5, "r_score": 5, "f_score": 2, "m_score": 3,
                      "recency_days": 0, "frequency": 2, "monetary": 350.0, "returns_amount": 0.0,
                      "complaints": 0, "tenure_days": 1, "segment": "new", "at_risk": False,
                      "at_risk_score": 0.0, "annual_value": 350.0,
                      "components": [{"name": "recency", "value": 5, "points": 35.0}],
                      "next_review_at": "2025-04-15T00:00:00Z"},
    "DeadLetter": {
        "id": "0123456789abcdef0123456789abcdef", "source_topic": "purchases", "partition": 0, "offset": 17,
                   "key_b64": None,
                   "payload_b64": "e30=", "payload_size": 2, "payload_sha256": "44136fa3" * 8, "truncated": False,
                   "reason": "schema: amount: Input should be greater than or equal to 0", "error_type": "schema",
                   "emitted_at": NOW, "config_version": "rules-1"},
}
NESTED = {"TouchPlan": TouchPlan, "ScoreComponent": ScoreComponent, "LineItem": LineItem}


def test_every_output_has_a_sample():
    assert set(OUTPUT_SAMPLES) == set(OUTPUT_MODELS)


@pytest.mark.parametrize("name", sorted(OUTPUT_MODELS))
def test_output_samples_validate(name):
    message = OUTPUT_MODELS[name].model_validate(OUTPUT_SAMPLES[name])
    assert OUTPUT_MODELS[name].model_validate_json(message.model_dump_json()) == message


@pytest.mark.parametrize("name", sorted(OUTPUT_MODELS))
def test_every_output_model_forbids_extra_fields(name):
    model = OUTPUT_MODELS[name]
    assert model.model_config.get("extra") == "forbid"
    with pytest.raises(ValidationError) as err:
        model.model_validate({**OUTPUT_SAMPLES[name], "unexpected": True})
    assert [(e["type"], e["loc"]) for e in err.value.errors()] == [("extra_forbidden", ("unexpected",))]


@pytest.mark.parametrize("name", sorted(NESTED))
def test_nested_models_forbid_extra_fields(name):
    model = NESTED[name]
    assert model.model_config.get("extra") == "forbid"
    with pytest.raises(ValidationError) as err:
        model.model_validate({"unexpected": 1})
    assert ("extra_forbidden", ("unexpected",)) in [(e["type"], e["loc"]) for e in err.value.errors()]


def test_nested_extra_field_in_an_output_is_refused():
    data = {**OUTPUT_SAMPLES["TierChanged"], "touch_plan": {"channel": "x", "cadence_days": 1, "owner": "y",
                                                             "colour": "red"}}
    with pytest.raises(ValidationError):
        OUTPUT_MODELS["TierChanged"].model_validate(data)


@pytest.mark.parametrize(("name", "field", "value"), [
    ("TierChanged", "score", 100.01), ("TierChanged", "score", -1), ("TierChanged", "direction", "sideways"),
    ("ContactActionRequested", "cost", -0.01), ("ContactActionRequested", "roi_decision", "maybe"),
    ("ContactActionRequested", "annual_value", -1), ("ContactOutcome", "group", "maybe"),
    ("ContactOutcome", "revenue", -1), ("ContactOutcome", "window_days", 0),
    ("CustomerAlert", "at_risk_score", 1.01), ("CustomerAlert", "kind", "birthday"),
    ("CustomerScore", "r_score", 0), ("CustomerScore", "m_score", 6), ("CustomerScore", "score", 101),
    ("CustomerScore", "frequency", -1), ("CustomerScore", "potential", 1.01),
    ("CustomerScore", "satisfaction", "ecstatic"), ("PotentialChanged", "potential", -0.1),
    ("DeadLetter", "offset", -1), ("DeadLetter", "partition", -1),
])
def test_output_value_ranges(name, field, value):
    with pytest.raises(ValidationError):
        OUTPUT_MODELS[name].model_validate({**OUTPUT_SAMPLES[name], field: value})


def _datetime_fields(model: type[BaseModel]) -> list[str]:
    def has_datetime(annotation: object) -> bool:
        if annotation is datetime or annotation is AwareDatetime:
            return True
        return any(has_datetime(a) for a in typing.get_args(annotation))
    return [f for f, info in model.model_fields.items() if has_datetime(info.annotation)]


@pytest.mark.parametrize(("name", "field"), [
    (name, field) for name in sorted(OUTPUT_MODELS) for field in _datetime_fields(OUTPUT_MODELS[name])
])
def test_output_times_must_carry_a_utc_offset(name, field):
    """Every time in an output is documented as UTC; a naive datetime must be refused.
    (CustomerScore.next_review_at is typed `datetime | None`, not AwareDatetime, and accepts one.)"""
    data = {**OUTPUT_SAMPLES[name], field: "2025-04-15T00:00:00"}
    with pytest.raises(ValidationError):
        OUTPUT_MODELS[name].model_validate(data)


def test_datetime_fields_found():
    assert set(_datetime_fields(OUTPUT_MODELS["CustomerScore"])) == {"event_time", "emitted_at", "next_review_at"}
    assert set(_datetime_fields(OUTPUT_MODELS["ContactActionRequested"])) == {"event_time", "emitted_at", "due_at"}
    assert _datetime_fields(OUTPUT_MODELS["DeadLetter"]) == ["emitted_at"]
