"""Two workers in one consumer group: they split the partitions, score every event once,
and answer queries for each other's customers (routed to the owner)."""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from tests.kits.stream import (
    ALL_PARTITIONS,
    StartStream,
    StreamGroup,
    Upstream,
    Worker,
    customer_on,
    eventually,
    http_json,
    purchase,
)

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

    # Snapshots are latest per customer: each customer's last one is of its last event, with all three in.
    last = {str(e["customer_id"]): str(e["event_id"]) for e in events}
    latest = lambda: {c: out.scores(c)[-1]["cause"] for c in customers if out.scores(c)}
    await out.wait_for(lambda: latest() == last, f"the latest snapshot of each of {len(customers)} customers")
    for customer in customers:
        mine = [e for e in events if e["customer_id"] == customer]
        snapshots = out.scores(customer)
        assert (snapshots[-1]["score"], snapshots[-1]["frequency"]) == (68.75, 3)
        scores = dict(zip((str(e["event_id"]) for e in mine), (43.75, 60.0, 68.75), strict=True))
        assert all(scores[r["cause"]] == r["score"] for r in snapshots)  # any earlier one shows its own step
        assert len({r["id"] for r in snapshots}) == len(snapshots)  # no snapshot id twice
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
        owner = stream.workers[index]
        for worker in stream.workers:  # the owner answers from its state; the other from the Redis view
            async def answered(worker: Worker = worker, customer: str = customer) -> tuple[int, dict[str, Any]] | None:
                status, body = await http_json("GET", f"{worker.web_url}/customers/{customer}")
                return (status, body) if status == 200 else None

            status, body = await eventually(answered, f"{customer} on {worker.name}")
            assert (body["customer_id"], body["tier"], body["score"], body["frequency"]) == (
                customer, "A", 61.25, 1), worker.name
            if worker is owner:
                assert "served_by" not in body and body["explanation"]
            else:  # never forwarded: the request (and a token) stays on the worker it was sent to
                assert (body["served_by"], body["owner_url"]) == ("redis", owner.web_url)
        unknown = customer_on(health["partitions"][0], "nobody")
        for worker in stream.workers:
            status, body = await http_json("GET", f"{worker.web_url}/customers/{unknown}")
            assert (status, body["error"], body["customer_id"]) == (404, "unknown customer", unknown), worker.name
