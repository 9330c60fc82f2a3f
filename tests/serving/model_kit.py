"""A value model and a scored population for the serving tests (no fit: the CDNOW model of the scoring tests)."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from pathlib import Path

from schemas.inputs import PurchaseCompleted
from scoring.config import ScoringConfig
from scoring.events import to_ms
from scoring.valuemodel.model import ValueModel
from streams.modelfile import load_model
from streams.settings import TopicNames
from streams.worker.handler import Flush, Handler, Record
from streams.worker.states import StateCache
from streams.worker.store import DictStore
from tests.scoring.test_valuemodel import MODEL_V2

START = datetime(1997, 3, 1, 12, tzinfo=UTC)  # before the model's as-of day (1997-12-31)
WALL = START + timedelta(days=120)


def model_file(directory: Path) -> Path:
    path = directory / "model.json"
    path.write_text(json.dumps(MODEL_V2))
    return path


def scored(model: ValueModel | None, customers: int = 6) -> tuple[Handler, Flush]:
    """Customers with one to three purchases, stepped by the worker's handler; its first flush."""
    topics = TopicNames()
    handler = Handler(ScoringConfig(), topics, 1, StateCache(DictStore()), model=model)
    recs = []
    for c in range(customers):
        for n in range(1 + c % 3):
            message = PurchaseCompleted(
                event_id=f"e{c}-{n}", customer_id=f"C{c}", occurred_at=START + timedelta(days=30 * n + c),
                amount=Decimal(15 + 40 * c * (n + 1)), currency="USD", order_id=f"o{c}-{n}")
            recs.append(Record(topics.events, 0, len(recs), message.customer_id.encode(),
                               message.model_dump_json().encode()))
    handler.on_batch((topics.events, 0), recs, to_ms(WALL))
    return handler, handler.take_flush()


def cdnow_model(directory: Path) -> ValueModel:
    return load_model(model_file(directory))
