"""JSON Schema of every message, as checked in under `schemas/json/`."""

from __future__ import annotations

import json

from schemas.inputs import INPUT_MODELS
from schemas.monitoring import WorkerHeartbeat
from schemas.outputs import OUTPUT_MODELS


def all_models() -> dict[str, type]:
    """Message name -> model, inputs then outputs."""
    inputs = {model.__name__: model for model in INPUT_MODELS.values()}
    return {**inputs, **OUTPUT_MODELS, "WorkerHeartbeat": WorkerHeartbeat}


def json_schemas() -> dict[str, str]:
    """File name -> JSON Schema text (stable: sorted keys, 2-space indent, trailing newline)."""
    return {
        f"{name}.json": json.dumps(model.model_json_schema(), indent=2, sort_keys=True) + "\n"  # type: ignore[attr-defined]
        for name, model in all_models().items()
    }
