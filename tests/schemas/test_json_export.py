"""The checked-in JSON Schemas (schemas/json/*.json) match the models."""

from __future__ import annotations

import difflib
import json
from pathlib import Path

import jsonschema
import pytest

import schemas
from schemas.export import all_models, json_schemas, schema_id

JSON_DIR = Path(schemas.__file__).resolve().parent / "json"
REGENERATE = "regenerate with `tierstream schemas export` (writes schemas/json/)"


def test_same_file_set():
    on_disk = sorted(p.name for p in JSON_DIR.glob("*.json"))
    expected = sorted(json_schemas())
    assert on_disk == expected, (
        f"schemas/json is out of sync: missing {sorted(set(expected) - set(on_disk))}, "
        f"stale {sorted(set(on_disk) - set(expected))}; {REGENERATE} and delete stale files")


@pytest.mark.parametrize("name", sorted(json_schemas()))
def test_checked_in_schema_is_current(name):
    path = JSON_DIR / name
    expected = json_schemas()[name]
    actual = path.read_text() if path.exists() else ""
    if actual != expected:
        diff = "".join(difflib.unified_diff(
            actual.splitlines(keepends=True), expected.splitlines(keepends=True),
            f"schemas/json/{name} (checked in)", f"{name} (from the model)", n=1))
        pytest.fail(f"schemas/json/{name} is out of date; {REGENERATE}\n{diff[:3000]}", pytrace=False)


def test_export_is_stable_text():
    first, second = json_schemas(), json_schemas()
    assert first == second
    for name, text in first.items():
        assert text.endswith("}\n")
        assert json.dumps(json.loads(text), indent=2, sort_keys=True) + "\n" == text, name


def test_one_schema_per_message_model():
    assert set(json_schemas()) == {f"{name}.json" for name in all_models()}
    assert {"PurchaseCompleted.json", "OrderReturned.json", "ComplaintFiled.json", "EnquiryReceived.json",
            "TierChanged.json", "ContactActionRequested.json", "CustomerAlert.json", "CustomerScore.json",
            "DeadLetter.json"} <= set(json_schemas())


def _objects(node):
    """Every JSON Schema object node (a dict with "properties")."""
    if isinstance(node, dict):
        if "properties" in node:
            yield node
        for value in node.values():
            yield from _objects(value)
    elif isinstance(node, list):
        for value in node:
            yield from _objects(value)


@pytest.mark.parametrize("name", sorted(json_schemas()))
def test_every_object_in_a_schema_forbids_additional_properties(name):
    doc = json.loads(json_schemas()[name])
    objects = list(_objects(doc))
    assert objects
    assert all(o.get("additionalProperties") is False for o in objects), name
    assert doc["title"] == name.removesuffix(".json")


@pytest.mark.parametrize("name", sorted(json_schemas()))
def test_every_schema_names_its_dialect_and_id_and_validates_with_them(name):
    doc = json.loads(json_schemas()[name])
    assert doc["$schema"] == "https://json-schema.org/draft/2020-12/schema"
    assert doc["$id"] == schema_id(name.removesuffix(".json"))
    ids = {json.loads(text)["$id"] for text in json_schemas().values()}
    assert len(ids) == len(json_schemas())  # unique
    jsonschema.validators.validator_for(doc).check_schema(doc)
    assert jsonschema.validators.validator_for(doc) is jsonschema.Draft202012Validator


def test_refs_resolve_under_the_id():
    doc = json.loads(json_schemas()["CustomerScore.json"])  # has $defs (its components)
    assert doc["$defs"]
    bad = {"components": [{"name": "recency", "value": 5, "points": "many"}]}
    errors = list(jsonschema.Draft202012Validator(doc).iter_errors(bad))
    assert any(list(e.path) == ["components", 0, "points"] for e in errors)  # the $ref into $defs was followed


AMOUNTS = ["12", "12.50", "0", "0.0000", "12.50000", "0007", "999999999.9999", "1000000000", "1000000000.00",
           12, 12.5, 0, 1e9, "abc", "-5", "+5", "1e3", " 12", "12.", ".5", "12,50", "0x10", "1_000", "",
           "1000000000.0001", "1000000001", "12.34567", "\u0661\u0662", -5, -0.01, 1e9 + 1, True, None, [], {}]


@pytest.mark.parametrize("amount", AMOUNTS, ids=repr)
def test_the_schema_of_an_amount_accepts_what_the_worker_accepts(amount):
    """A producer that validates against the JSON Schema gets the worker's answer: "abc" and "-5" are refused
    by both. (JSON numbers with more than 4 decimals are the exception: the description says it.)"""
    from pydantic import ValidationError

    from schemas.inputs import parse_input

    schema = json.loads(json_schemas()["PurchaseCompleted.json"])
    doc = {"type": "purchase", "event_id": "e1", "customer_id": "c1", "occurred_at": "2025-03-01T10:00:00Z",
           "amount": amount, "currency": "USD", "order_id": "o1"}
    try:
        parse_input(json.dumps(doc))
        worker = True
    except ValidationError:
        worker = False
    assert jsonschema.Draft202012Validator(schema).is_valid(doc) == worker
