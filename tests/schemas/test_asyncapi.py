"""docs/asyncapi.yaml: in sync with the models, a valid AsyncAPI 2.6 document, and true to real messages."""

from __future__ import annotations

import io
import json
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import jsonschema
import pytest
import yaml

from schemas.asyncapi import asyncapi_document, asyncapi_yaml
from schemas.inputs import INPUT_MODELS, ErasureRequested
from schemas.monitoring import WorkerHeartbeat
from schemas.outputs import OUTPUT_MODELS
from scoring.config import ScoringConfig
from scoring.events import MS_PER_DAY, to_ms
from streams.local.generator import DEFAULT_START, generate, to_json
from streams.offline.history import CsvLayout, read_history
from streams.offline.replay import run_replay
from streams.settings import TopicNames
from streams.worker.handler import Handler, Record
from streams.worker.states import StateCache
from streams.worker.store import DictStore

ROOT = Path(__file__).resolve().parents[2]
CHECKED_IN = ROOT / "docs" / "asyncapi.yaml"
# The official AsyncAPI 2.6.0 JSON Schema, from the npm package @asyncapi/specs 6.11.1 (Apache-2.0).
SPEC = Path(__file__).with_name("asyncapi-2.6.0.schema.json")
DEFAULT_TOPICS = TopicNames().model_dump()


@pytest.fixture(scope="module")
def doc() -> dict[str, Any]:
    return dict(yaml.safe_load(CHECKED_IN.read_text()))


def test_checked_in_file_is_in_sync_with_the_models() -> None:
    assert CHECKED_IN.read_text() == asyncapi_yaml(DEFAULT_TOPICS), "regenerate: ./dev schemas"


def test_is_a_valid_asyncapi_2_6_document(doc: dict[str, Any]) -> None:
    spec = json.loads(SPEC.read_text())
    errors = [f"{list(e.path)}: {e.message[:200]}" for e in jsonschema.Draft7Validator(spec).iter_errors(doc)]
    assert errors == []


def test_every_topic_is_a_channel(doc: dict[str, Any]) -> None:
    names = TopicNames().model_dump()
    assert set(doc["channels"]) == set(names.values())  # the monitoring topic too
    for key, name in names.items():
        channel = doc["channels"][name]
        assert channel["bindings"]["kafka"]["topic"] == name
        consumed = name in TopicNames().inputs().values() or key == "events"
        assert ("publish" if consumed else "subscribe") in channel


def test_topic_names_follow_the_config() -> None:
    renamed = {**TopicNames().model_dump(), "purchases": "shop-orders"}
    assert "shop-orders" in asyncapi_document(renamed)["channels"]


def _refs(node: Any) -> list[str]:
    if isinstance(node, dict):
        found = [node["$ref"]] if isinstance(node.get("$ref"), str) else []
        return found + [r for v in node.values() for r in _refs(v)]
    if isinstance(node, list):
        return [r for v in node for r in _refs(v)]
    return []


def test_every_ref_resolves(doc: dict[str, Any]) -> None:
    for ref in _refs(doc):
        assert ref.startswith("#/")
        node: Any = doc
        for part in ref[2:].split("/"):
            node = node[part]
        assert isinstance(node, dict)


def test_every_message_model_is_documented(doc: dict[str, Any]) -> None:
    messages = doc["components"]["messages"]
    assert set(messages) == {m.__name__ for m in INPUT_MODELS.values()} | set(OUTPUT_MODELS) | {"WorkerHeartbeat"}
    for name, message in messages.items():
        assert message["payload"] == {"$ref": f"#/components/schemas/{name}"}
        assert message["bindings"]["kafka"]["key"]["type"] == "string"
    assert "worker_id" in messages["WorkerHeartbeat"]["bindings"]["kafka"]["key"]["description"]


def test_the_metrics_channel_carries_heartbeats(doc: dict[str, Any]) -> None:
    channel = doc["channels"][TopicNames().metrics]
    assert channel["subscribe"]["message"] == {"$ref": "#/components/messages/WorkerHeartbeat"}
    beat = WorkerHeartbeat(
        worker_id="w1:6066", app_id="tierstream", emitted_at=datetime(2024, 5, 1, tzinfo=UTC), interval_seconds=5.0,
        events_total=10, events_per_second=2.0, partitions=[0, 1], lag={0: 3, 1: 0}, lag_total=3,
        tiers={"AAA": 1, "C": 4}, scored=9, dead_lettered=1, redis_errors=0, redis_retries=0,
        redis_pending_writes=0, config_version="rules-1")
    validator(doc, "WorkerHeartbeat").validate(json.loads(beat.model_dump_json()))
    with pytest.raises(jsonschema.ValidationError):
        validator(doc, "WorkerHeartbeat").validate({**json.loads(beat.model_dump_json()), "lag_total": -1})


def validator(doc: dict[str, Any], name: str) -> jsonschema.Draft202012Validator:
    return jsonschema.Draft202012Validator({"$ref": f"#/components/schemas/{name}", "components": doc["components"]})


def test_real_input_messages_match_their_payload_schemas(doc: dict[str, Any]) -> None:
    seen = set()
    validators = {m.__name__: validator(doc, m.__name__) for m in INPUT_MODELS.values()}
    erasure = ErasureRequested(event_id="er-1", customer_id="C1", requested_at=DEFAULT_START)  # not generated
    for message in [*generate(3, 60, 120), erasure]:
        name = type(message).__name__
        validators[name].validate(json.loads(to_json(message)))
        seen.add(name)
    assert seen == {m.__name__ for m in INPUT_MODELS.values()}
    with pytest.raises(jsonschema.ValidationError):
        validator(doc, "PurchaseCompleted").validate({"type": "purchase", "event_id": "x"})


def test_real_output_messages_match_their_payload_schemas(doc: dict[str, Any], tmp_path: Path) -> None:
    history = tmp_path / "events.jsonl"
    messages = list(generate(3, 150, 300))
    erase = ErasureRequested(event_id="er-1", customer_id=messages[0].customer_id,
                             requested_at=DEFAULT_START + timedelta(days=200))  # a CustomerForgotten
    history.write_text("".join(to_json(m) + "\n" for m in [*messages, erase]))
    decisions = io.StringIO()
    as_of = to_ms(DEFAULT_START) // MS_PER_DAY + 330
    config = ScoringConfig(global_holdout_share=0.3)  # control groups: held-out actions and outcomes too
    run_replay(read_history(history, CsvLayout()), as_of, config, io.StringIO(), exact=True,
               decisions_out=decisions)
    checked: dict[str, int] = {}
    validators = {name: validator(doc, name) for name in OUTPUT_MODELS}
    for line in decisions.getvalue().splitlines():
        message = json.loads(line)
        name = message["type"]  # the tag is part of every output schema
        if checked.get(name, 0) < 100:
            validators[name].validate(message)
            checked[name] = checked.get(name, 0) + 1
    assert set(checked) == set(OUTPUT_MODELS) - {"DeadLetter"}
    handler = Handler(ScoringConfig(), TopicNames(), 4, StateCache(DictStore()))
    letter = handler.dead_letter(Record("purchases", 1, 7, b"C1", b"{"), "bad", "decode")
    validator(doc, "DeadLetter").validate(json.loads(letter.value))
