"""The event clock: each event is scored as of its own time; time passes per partition.

With `clock: event` a partition's clock is the latest event time seen on it (its
watermark): the review sweep re-scores that partition's due customers as of it, so a
customer ages when later events of *other* customers arrive on its partition, and
not when events arrive elsewhere. POST /clock (clock_control) shifts every watermark.
"""

from __future__ import annotations

import base64
import json
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta

import pytest

from scoring.events import MS_PER_DAY, to_ms
from tests.kits.stream import StartStream, StreamGroup, Upstream, customer_on, purchase, uid

pytestmark = pytest.mark.integration

T0 = datetime(2022, 1, 3, 12, 0, tzinfo=UTC)  # later than every other event time of this module but test 1's
HOME, ELSEWHERE = 1, 3                         # the partitions of the watermark tests
POISONED = 2                                   # the partition of the dead-letter test (runs last)


@pytest.fixture(scope="module")
async def stream(start_stream: StartStream) -> AsyncIterator[StreamGroup]:
    async with start_stream("time", clock="event", clock_control=True, review_interval_seconds=0.2) as group:
        yield group


def review_cause(day_offset: int) -> str:
    return f"review@{to_ms(T0) // MS_PER_DAY + day_offset}"


def day_start(day_offset: int) -> datetime:
    return datetime(T0.year, T0.month, T0.day, tzinfo=UTC) + timedelta(days=day_offset)


async def test_an_old_event_is_scored_as_of_its_own_time(stream: StreamGroup, upstream: Upstream) -> None:
    customer = uid("old")
    at = datetime(2021, 3, 1, 10, 30, tzinfo=UTC)  # years ago: a wall clock would find it out of the window
    event = purchase(customer, 1000, at)
    await upstream.send(stream.topics.purchases, event)
    snapshot = await stream.outputs.wait_score(customer, str(event["event_id"]))
    assert (snapshot["tier"], snapshot["score"]) == ("A", 61.25)
    assert (snapshot["recency_days"], snapshot["frequency"], snapshot["monetary"]) == (0, 1, 1000.0)
    assert datetime.fromisoformat(snapshot["event_time"]) == at
    assert datetime.fromisoformat(snapshot["emitted_at"]) == at  # the worker's "now" is the event time


async def test_later_events_on_a_partition_age_its_customers(stream: StreamGroup, upstream: Upstream) -> None:
    out, t = stream.outputs, stream.topics
    aging = customer_on(HOME, "aging")
    neighbour = customer_on(HOME, "nb")
    distant = customer_on(ELSEWHERE, "far")
    first = purchase(aging, 1000, T0)
    other = purchase(distant, 1000, T0)
    await upstream.send(t.purchases, first)
    await upstream.send(t.purchases, other)
    await out.wait_score(aging, str(first["event_id"]))
    await out.wait_score(distant, str(other["event_id"]))
    assert not out.alerts(aging)

    later = purchase(neighbour, 100, T0 + timedelta(days=200))  # moves partition HOME's clock 200 days on
    await upstream.send(t.purchases, later)

    alert = (await out.wait_for(lambda: out.alerts(aging, kind="at_risk"), "the at-risk alert by time"))[0]
    assert alert["cause"] == review_cause(121)  # the first day with recency > 2 x the default 60-day gap
    assert datetime.fromisoformat(alert["event_time"]) == day_start(121)
    down = (await out.wait_for(lambda: out.tiers(aging, direction="down"), "the downgrade by time"))[0]
    assert (down["cause"], down["from_tier"], down["to_tier"]) == (review_cause(31), "A", "B")  # R 5 -> 4

    # The other partition's clock did not move: its customer was not re-scored.
    assert {r["cause"] for r in out.for_customer(distant)} == {other["event_id"]}


async def test_clock_control_shifts_every_partition(stream: StreamGroup, upstream: Upstream) -> None:
    out = stream.outputs
    distant = customer_on(ELSEWHERE, "shift")
    event = purchase(distant, 1000, T0 + timedelta(hours=1))
    await upstream.send(stream.topics.purchases, event)
    await out.wait_score(distant, str(event["event_id"]))

    await stream.advance_clock(200)
    alert = (await out.wait_for(lambda: out.alerts(distant, kind="at_risk"), "the at-risk alert"))[0]
    assert alert["cause"] == review_cause(121)


async def test_a_far_future_event_is_refused_before_it_moves_any_clock(
        stream: StreamGroup, upstream: Upstream) -> None:
    """Year 9999 passes the schema; on the event clock it would be "now" and would age every customer of
    its partition to year 9999. It is refused against the wall clock (and the jump limit) first: a dead
    letter with the reason, and the partition's clock stays where it was."""
    out = stream.outputs
    poisoned, after = customer_on(POISONED, "y9999"), customer_on(POISONED, "after")
    event = purchase(poisoned, 1000, datetime(9999, 12, 30, tzinfo=UTC))
    meta = await upstream.send(stream.topics.purchases, event)
    valid = purchase(after, 1000, T0 + timedelta(days=300))
    await upstream.send(stream.topics.purchases, valid)

    letter = (await out.wait_for(lambda: out.dlq(source_topic=meta.topic, partition=meta.partition,
                                                 offset=meta.offset), "the dead letter"))[0]
    assert letter["error_type"] == "rejected"
    assert "after the wall clock" in letter["reason"]
    assert json.loads(base64.b64decode(letter["payload_b64"])) == event
    snapshot = await out.wait_score(after, str(valid["event_id"]))  # the next message was scored
    assert (snapshot["tier"], snapshot["score"]) == ("A", 61.25)
    assert not out.alerts(after)  # its partition's clock did not jump to year 9999
    assert stream.worker.alive()
