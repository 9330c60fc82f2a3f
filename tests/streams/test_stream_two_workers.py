"""Two workers in one consumer group: they split the partitions, score every event once,
and answer queries for each other's customers (routed to the owner)."""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from streamkit import ALL_PARTITIONS, StartStream, StreamGroup, Upstream, customer_on, http_json, purchase

pytestmark = pytest.mark.integration
PER_PARTITION = 8
AMOUNTS = (100, 200, 700)  # every purchase changes the score: 43.75, 60, 68.75


@pytest.fixture(scope="module")
async def stream(start_stream: StartStream) -> AsyncIterator[StreamGroup]:
    async with start_stream("two", workers=2) as group:
        yield group


async def healths(stream: StreamGroup) -> list[dict[str, Any]]:
    found = [await w.health() for w in stream.workers]
    assert all(h is not None for h in found), [w.log_tail() for w in stream.workers]
    return [h for h in found if h is not None]


async def test_the_workers_split_the_partitions(stream: StreamGroup) -> None:
    owned = [set(h["partitions"]) for h in await healths(stream)]
    assert all(owned)
    assert owned[0].isdisjoint(owned[1])
    assert owned[0] | owned[1] == set(ALL_PARTITIONS)


async def test_every_event_is_scored_once(stream: StreamGroup, upstream: Upstream) -> None:
    out = stream.outputs
    before = [h["events_scored"] for h in await healths(stream)]
    at = datetime.now(UTC) - timedelta(days=1)
    customers = [customer_on(p, f"two{p}") for p in ALL_PARTITIONS for _ in range(PER_PARTITION)]
    events = [purchase(c, amount, at + timedelta(minutes=i)) for c in customers for i, amount in enumerate(AMOUNTS)]
    await upstream.send_all(stream.topics.purchases, events)

    causes = {str(e["event_id"]) for e in events}
    scored = lambda: {r["cause"] for r in out.of(stream.topics.scores) if r["cause"] in causes}
    await out.wait_for(lambda: scored() == causes, f"a score snapshot for each of {len(causes)} events")

    # One snapshot id per event. (At-least-once: a redelivery after a rebalance would resend the
    # same id, never a second outcome; with a stable group there is no resend at all.)
    snapshots = [r for r in out.of(stream.topics.scores) if r["cause"] in causes]
    assert len({r["id"] for r in snapshots}) == len(events)
    for customer in customers:
        mine = [e for e in events if e["customer_id"] == customer]
        assert sorted({(r["cause"], r["score"]) for r in out.scores(customer)}) == sorted(
            (e["event_id"], s) for e, s in zip(mine, (43.75, 60.0, 68.75), strict=True))
        moves = {(r["id"], r["from_tier"], r["to_tier"]) for r in out.tiers(customer)}
        assert len(moves) == 2
        assert {(f, t) for _, f, t in moves} == {(None, "B"), ("B", "A")}

    after = [h["events_scored"] for h in await healths(stream)]
    deltas = [a - b for a, b in zip(after, before, strict=True)]
    assert sum(deltas) == len(events)
    assert all(d > 0 for d in deltas)  # both workers did their share


async def test_a_query_on_either_worker_is_answered_by_the_owner(stream: StreamGroup, upstream: Upstream) -> None:
    out = stream.outputs
    owners = await healths(stream)
    at = datetime.now(UTC) - timedelta(days=1)
    for index, health in enumerate(owners):
        customer = customer_on(health["partitions"][0], f"owned-by-{index}")
        event = purchase(customer, 1000, at)
        await upstream.send(stream.topics.purchases, event)
        await out.wait_score(customer, str(event["event_id"]))
        assert stream.owner_of(customer, owners) == index
        for worker in stream.workers:  # the owner answers; the other routes the request to it
            status, body = await http_json("GET", f"{worker.web_url}/customers/{customer}")
            assert status == 200, (worker.name, body)
            assert (body["customer_id"], body["tier"], body["score"], body["frequency"]) == (
                customer, "A", 61.25, 1)
        unknown = customer_on(health["partitions"][0], "nobody")
        for worker in stream.workers:
            status, body = await http_json("GET", f"{worker.web_url}/customers/{unknown}")
            assert (status, body) == (404, {"error": "unknown customer", "customer_id": unknown}), worker.name
