"""A redelivered event resends exactly what it caused, in-process (no broker): `Pipeline.on_event`.

The outbox keeps decisions, not profiles, so a score snapshot is rebuilt from the state on a
resend. Right after the cause the rebuilt snapshot is the original, byte for byte. Once later
events are in the state it would carry their figures under the old snapshot's id, so it is left
out; the cause's other outputs (tier change, actions, alerts) are resent with their ids.
"""

from __future__ import annotations

import json
from datetime import UTC, date, datetime, timedelta

from streamkit import enquiry, purchase

from scoring.config import ScoringConfig
from scoring.events import to_ms
from streams.pipeline import Decoded, Outgoing, Pipeline, Result, Source
from streams.settings import TopicNames

NOW = datetime(2026, 6, 1, 12, tzinfo=UTC)
TOPICS = TopicNames()


def feed(pipeline: Pipeline, state: bytes | None, doc: dict[str, object], offset: int) -> Result:
    return feed_at(pipeline, state, doc, offset, NOW)


def feed_at(pipeline: Pipeline, state: bytes | None, doc: dict[str, object], offset: int, now: datetime) -> Result:
    """The pipeline's step of one event from the mixed topic, with the clock at `now`."""
    src = Source(TOPICS.events, 0, offset, b"C1", json.dumps(doc).encode())
    decoded = pipeline.decode(src)
    assert isinstance(decoded, Decoded)
    result = pipeline.on_event(decoded, state, to_ms(now), src)
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


def test_a_review_caught_up_inside_an_event_step_publishes_the_figures_of_its_own_day() -> None:
    pipeline = Pipeline(ScoringConfig(), TOPICS, 1)
    start = NOW - timedelta(days=200)
    first = feed_at(pipeline, None, purchase("C1", 900, start, event_id="e1"), 0, start)
    later = NOW - timedelta(days=10)  # R boundaries passed in between with no event: reviews caught up now
    step = feed_at(pipeline, first.state, enquiry("C1", later, event_id="e2"), 1, later)
    snapshots = by_topic(step.outputs)[TOPICS.scores]
    reviews = [s for s in snapshots if str(s["cause"]).startswith("review@")]
    assert reviews and snapshots[-1]["cause"] == "e2"
    first_day = start.date()
    for snapshot in reviews:
        day = int(str(snapshot["cause"]).removeprefix("review@"))
        assert snapshot["recency_days"] == day - (first_day - date(1970, 1, 1)).days  # as of its own day
    assert len({s["score"] for s in snapshots}) == len(snapshots)  # each shows a different score
    again = feed_at(pipeline, step.state, enquiry("C1", later, event_id="e2"), 2, later)
    resent = by_topic(again.outputs)
    assert [s["cause"] for s in resent[TOPICS.scores]] == ["e2"]  # the reviews' snapshots are not rebuilt
