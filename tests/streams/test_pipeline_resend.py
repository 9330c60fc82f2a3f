"""A redelivered event resends exactly what it caused, in-process (no broker): `Pipeline.on_event`.

The outbox keeps decisions, not profiles, so a score snapshot is rebuilt from the state on a
resend. Right after the cause the rebuilt snapshot is the original, byte for byte. Once later
events are in the state it would carry their figures under the old snapshot's id, so it is left
out; the cause's other outputs (tier change, actions, alerts) are resent with their ids.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta

from streamkit import purchase

from scoring.config import ScoringConfig
from scoring.events import to_ms
from streams.pipeline import Decoded, Outgoing, Pipeline, Result, Source
from streams.settings import TopicNames

NOW = datetime(2026, 6, 1, 12, tzinfo=UTC)
TOPICS = TopicNames()


def feed(pipeline: Pipeline, state: bytes | None, doc: dict[str, object], offset: int) -> Result:
    src = Source(TOPICS.purchases, 0, offset, b"C1", json.dumps(doc).encode())
    decoded = pipeline.decode(src)
    assert isinstance(decoded, Decoded)
    result = pipeline.on_event(decoded, state, to_ms(NOW), src)
    assert isinstance(result, Result)
    return result


def by_topic(outputs: list[Outgoing]) -> dict[str, list[dict[str, object]]]:
    found: dict[str, list[dict[str, object]]] = {}
    for out in outputs:
        doc = json.loads(out.value)
        doc.pop("emitted_at")  # the wall-clock emit time is the only field a resend may change
        found.setdefault(out.topic, []).append(doc)
    return found


def test_resend_right_after_the_cause_repeats_every_output_with_the_same_ids_and_figures() -> None:
    pipeline = Pipeline(ScoringConfig(), TOPICS, 1)
    first = purchase("C1", 900, NOW - timedelta(days=1), event_id="e1")
    original = feed(pipeline, None, first, 0)
    again = feed(pipeline, original.state, first, 1)
    assert again.state is None  # a duplicate changes nothing
    assert TOPICS.scores in by_topic(original.outputs)
    assert by_topic(again.outputs) == by_topic(original.outputs)


def test_resend_after_later_events_leaves_out_the_stale_snapshot_only() -> None:
    pipeline = Pipeline(ScoringConfig(), TOPICS, 1)
    first = purchase("C1", 900, NOW - timedelta(days=2), event_id="e1")
    original = feed(pipeline, None, first, 0)
    later = feed(pipeline, original.state, purchase("C1", 5000, NOW - timedelta(days=1), event_id="e2"), 1)
    again = feed(pipeline, later.state, first, 2)
    want = {topic: docs for topic, docs in by_topic(original.outputs).items() if topic != TOPICS.scores}
    assert want  # e1 made the customer's first tier change: something besides the snapshot to resend
    assert by_topic(again.outputs) == want
