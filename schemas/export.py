"""JSON Schema of every message, as checked in under `schemas/json/`."""

from __future__ import annotations

import json
from typing import Any

from schemas.asyncapi import DOC_VERSION
from schemas.inputs import INPUT_MODELS
from schemas.monitoring import WorkerHeartbeat
from schemas.outputs import OUTPUT_MODELS

DIALECT = "https://json-schema.org/draft/2020-12/schema"


def all_models() -> dict[str, type]:
    """Message name -> model, inputs then outputs."""
    inputs = {model.__name__: model for model in INPUT_MODELS.values()}
    return {**inputs, **OUTPUT_MODELS, "WorkerHeartbeat": WorkerHeartbeat}


def schema_id(name: str) -> str:
    """The `$id` of a message's JSON Schema: a URN (no web address is promised), versioned with the
    AsyncAPI document."""
    return f"urn:tierstream:schema:{name}:v{DOC_VERSION}"


def json_schema(name: str, model: type) -> dict[str, Any]:
    """A message's JSON Schema (2020-12, what pydantic writes) with its dialect and id."""
    return {"$schema": DIALECT, "$id": schema_id(name), **model.model_json_schema()}  # type: ignore[attr-defined]


def json_schemas() -> dict[str, str]:
    """File name -> JSON Schema text (stable: sorted keys, 2-space indent, trailing newline)."""
    return {
        f"{name}.json": json.dumps(json_schema(name, model), indent=2, sort_keys=True) + "\n"
        for name, model in all_models().items()
    }
