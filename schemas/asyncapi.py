"""The AsyncAPI 2.6 document of every topic tierstream reads or writes (`docs/asyncapi.yaml`).

Generated from the message models, so it cannot drift from them: a test checks
that the checked-in file equals `asyncapi_yaml()`. Regenerate with
`python -m schemas.asyncapi > docs/asyncapi.yaml`.

AsyncAPI 2.x is written from the application's side: `publish` on a channel
means others publish there and tierstream consumes; `subscribe` means others
subscribe to what tierstream publishes.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import yaml
from pydantic.json_schema import JsonSchemaMode

from schemas.base import Message
from schemas.inputs import INPUT_MODELS
from schemas.monitoring import WorkerHeartbeat
from schemas.outputs import OUTPUT_MODELS

ASYNCAPI_VERSION = "2.6.0"
DOC_VERSION = "1"  # bump when a message or topic changes incompatibly
KAFKA_BINDING = "0.4.0"
REF = "#/components/schemas/{model}"
KEY = {
    "type": "string",
    "description": "Customer id (UTF-8). Partition: murmur2(key) % partitions, "
    "the Java client's and aiokafka's default partitioner.",
}
WORKER_KEY = {"type": "string", "description": "worker_id (UTF-8): host:port of the worker's web server."}
MONITORING: dict[str, type[Message]] = {"WorkerHeartbeat": WorkerHeartbeat}  # about the workers, keyed by worker id

DESCRIPTION = """\
Real-time customer value scoring. Producers send purchases, returns, complaints and
enquiries (and erasure requests) keyed by customer id; tierstream publishes tier changes,
contact-plan actions, alerts and profile snapshots, keyed by customer id.

Delivery is at-least-once. Every output carries a deterministic `id` (the same cause
gives the same id, also after a crash and redelivery): subscribers deduplicate on `id`.
Inputs that cannot be scored go to the dead-letter topic with their original bytes;
nothing is dropped silently. All times are ISO 8601 with a UTC offset; money is a
decimal in `currency` (inputs) or a number in the base currency (outputs).

Input topics and the mixed `customer-events` topic are co-partitioned (the same
partition count, `partitions` in tierstream.yaml). See docs/delivery.md.
"""

# channel key in TopicNames -> (direction, message names, description)
CHANNELS: dict[str, tuple[str, tuple[str, ...], str]] = {
    "purchases": ("in", ("PurchaseCompleted",), "Completed orders."),
    "returns": ("in", ("OrderReturned",), "Goods returned and refunded."),
    "complaints": ("in", ("ComplaintFiled",), "Complaints, severity 1-5."),
    "enquiries": ("in", ("EnquiryReceived",), "Questions and requests for information."),
    "events": (
        "in",
        ("PurchaseCompleted", "OrderReturned", "ComplaintFiled", "EnquiryReceived", "ErasureRequested"),
        "Mixed input topic: any input type, tagged by `type`. Keeps one customer's order across "
        "types (backfills); the worker also forwards mis-partitioned events here. The only topic for "
        "erasure requests.",
    ),
    "tier_changes": (
        "out",
        ("TierChanged", "PotentialChanged", "CustomerForgotten"),
        "A customer entered another tier (or got a first tier), or the low value, high potential cell, or was "
        "forgotten (retention or an erasure request).",
    ),
    "actions": (
        "out",
        ("ContactActionRequested",),
        "Contact-plan actions after the ROI guard; act on approved and downgraded.",
    ),
    "holdouts": (
        "out",
        ("ContactActionRequested",),
        "Held-out contact-plan actions (roi_decision held_out): the customer is in the rule's control group. "
        "Recorded to measure the rule; never sent to the action topic, not to be acted on.",
    ),
    "outcomes": (
        "out",
        ("ContactOutcome",),
        "What followed each measured decision (treated or held out) over the rule's outcome window.",
    ),
    "alerts": (
        "out",
        ("CustomerAlert",),
        "At-risk customers, complaints from top-tier customers, top-tier customers sliding to disappointed.",
    ),
    "scores": (
        "out",
        ("CustomerScore",),
        "Latest profile of a customer whenever it changes: keyed by "
        "customer, so the latest record per key is the current profile; a tombstone (null value) when the "
        "customer is forgotten.",
    ),
    "dlq": ("out", ("DeadLetter",), "Inputs that could not be scored, with their original bytes and why."),
    "metrics": (
        "out",
        ("WorkerHeartbeat",),
        "Every worker's heartbeat every `heartbeat_seconds`: rate, lag, partitions, tiers, errors. "
        "Keyed by worker id, so the latest record per key is a worker's latest report.",
    ),
}


def _schemas() -> tuple[dict[str, Any], dict[str, dict[str, Any]]]:
    """Message name -> payload schema ref, and every schema under components."""
    components: dict[str, dict[str, Any]] = {}
    models: dict[str, tuple[type[Message], JsonSchemaMode]] = {
        m.__name__: (m, "validation") for m in INPUT_MODELS.values()
    }
    outputs = {**OUTPUT_MODELS, **MONITORING}
    models |= {name: (m, "serialization") for name, m in outputs.items()}  # what subscribers receive
    for name, (model, mode) in models.items():
        schema = model.model_json_schema(ref_template=REF, mode=mode)
        components.update(schema.pop("$defs", {}))
        components[name] = schema
    return {name: {"$ref": REF.format(model=name)} for name in models}, dict(sorted(components.items()))


def _message(name: str, payload_ref: dict[str, Any], schema: dict[str, Any]) -> dict[str, Any]:
    summary = (schema.get("description") or name).split("\n")[0]
    return {
        "name": name,
        "title": name,
        "summary": summary,
        "contentType": "application/json",
        "payload": payload_ref,
        "bindings": {"kafka": {"key": WORKER_KEY if name in MONITORING else KEY, "bindingVersion": KAFKA_BINDING}},
    }


def _channel(topic: str, direction: str, names: tuple[str, ...], description: str) -> dict[str, Any]:
    refs = [{"$ref": f"#/components/messages/{n}"} for n in names]
    message = refs[0] if len(refs) == 1 else {"oneOf": refs}
    verb = "publish" if direction == "in" else "subscribe"
    operation_id = f"{'send' if direction == 'in' else 'receive'}_{topic.replace('-', '_')}"
    summary = "tierstream consumes this topic." if direction == "in" else "tierstream publishes this topic."
    return {
        "description": description,
        "bindings": {"kafka": {"topic": topic, "bindingVersion": KAFKA_BINDING}},
        verb: {
            "operationId": operation_id,
            "summary": summary,
            "message": message,
            "bindings": {"kafka": {"bindingVersion": KAFKA_BINDING}},
        },
    }


def asyncapi_document(topics: Mapping[str, str], version: str = DOC_VERSION) -> dict[str, Any]:
    """The AsyncAPI document as a mapping. `topics`: TopicNames fields -> topic names (the shell's settings
    own the names; schemas/ imports nothing of the shell)."""
    names = dict(topics)
    refs, schemas = _schemas()
    messages = {name: _message(name, ref, schemas[name]) for name, ref in refs.items()}
    channels = {names[key]: _channel(names[key], *spec) for key, spec in CHANNELS.items()}
    return {
        "asyncapi": ASYNCAPI_VERSION,
        "id": "urn:tierstream",
        "info": {
            "title": "tierstream",
            "version": version,
            "description": DESCRIPTION,
            "license": {"name": "Apache-2.0"},
        },
        "defaultContentType": "application/json",
        "servers": {
            "kafka": {
                "url": "{bootstrap}",
                "protocol": "kafka",
                "description": "The Kafka cluster (tierstream.yaml: kafka_bootstrap).",
                "variables": {"bootstrap": {"default": "127.0.0.1:9092"}},
            }
        },
        "channels": channels,
        "components": {"messages": messages, "schemas": schemas},
    }


class _Dumper(yaml.SafeDumper):
    """Multi-line strings as literal blocks, so descriptions read as written."""


def _str(dumper: yaml.SafeDumper, text: str) -> yaml.ScalarNode:
    style = "|" if "\n" in text else None
    return dumper.represent_scalar("tag:yaml.org,2002:str", text, style=style)


_Dumper.add_representer(str, _str)


def asyncapi_yaml(topics: Mapping[str, str]) -> str:
    """The document as YAML text (key order as built, 2-space indent)."""
    header = (
        "# Generated from schemas/ by schemas/asyncapi.py; do not edit.\n"
        "# Regenerate: tierstream schemas export (./dev schemas)\n"
    )
    body = yaml.dump(asyncapi_document(topics), Dumper=_Dumper, sort_keys=False, allow_unicode=True, width=100)
    return header + body
