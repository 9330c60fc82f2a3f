"""Mis-keyed events are still scored: one hop through `customer-events` to the canonical partition.

The canonical partition of a customer is murmur2(customer id) % partitions, what
aiokafka's and the Java client's default partitioner choose for the key. Events
without a key, with another customer's key, or sent to an explicit other partition
land elsewhere; the worker forwards them, keyed by the customer, to its partition.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from streams.partitioning import canonical_partition
from tests.kits.stream import (
    PARTITIONS,
    Out,
    StreamGroup,
    Upstream,
    enquiry,
    eventually,
    http_json,
    purchase,
    uid,
)

pytestmark = pytest.mark.integration


@pytest.fixture(scope="module")
def stream(default_stream: StreamGroup) -> StreamGroup:
    return default_stream  # the shared worker with the default settings


def yesterday(minutes: int = 0) -> datetime:
    return datetime.now(UTC) - timedelta(days=1) + timedelta(minutes=minutes)


def other_key(home: int) -> str:
    """Another customer's id, placed on a partition other than `home`."""
    while True:
        key = uid("someone-else")
        if canonical_partition(key, PARTITIONS) != home:
            return key


async def test_mis_keyed_events_are_forwarded_and_scored(stream: StreamGroup, upstream: Upstream) -> None:
    out, t = stream.outputs, stream.topics
    customer = uid("mis")
    home = canonical_partition(customer, PARTITIONS)
    away = (home + 1) % PARTITIONS
    events = [purchase(customer, 100 * (i + 1), yesterday(i)) for i in range(6)]
    metas = [
        await upstream.send(t.purchases, events[0]),                              # keyed right
        await upstream.send(t.purchases, events[1], key=None, partition=away),    # no key, elsewhere
        await upstream.send(t.purchases, events[2], key=other_key(home)),         # another customer's key
        await upstream.send(t.purchases, events[3], partition=away),              # right key, wrong partition
        await upstream.send(t.events, events[4], key=None, partition=away),       # mixed topic, elsewhere
        await upstream.send(t.purchases, events[5], key=None),                    # no key: any partition
    ]
    assert metas[0].partition == home
    assert all(m.partition != home for m in metas[1:5])
    misplaced = {e["event_id"] for e, m in zip(events, metas, strict=True) if m.partition != home}

    async def scored() -> dict[str, object] | None:
        status, profile = await http_json("GET", f"{stream.worker.web_url}/customers/{customer}")
        return profile if status == 200 and profile["frequency"] == 6 else None

    profile = await eventually(scored, "all six purchases in the customer's state")
    assert profile["monetary"] == 2100.0

    sent_to_mixed = (metas[4].partition, metas[4].offset)  # our own record there is not a forwarded copy

    def copies() -> list[Out]:
        return [r for r in out.of(t.events, customer) if (r.partition, r.offset) != sent_to_mixed]

    forwarded = await out.wait_for(lambda: len(copies()) >= len(misplaced) and copies(), "the forwarded copies")
    assert sorted(r["event_id"] for r in forwarded) == sorted(misplaced)  # exactly one hop each
    assert {(r.partition, r.key) for r in forwarded} == {(home, customer)}
    # Every output about the customer is keyed by it and lives on its canonical partition.
    assert {(r.partition, r.key) for r in out.for_customer(customer)} == {(home, customer)}


async def test_an_enquiry_sent_to_the_wrong_partition_counts_once(stream: StreamGroup, upstream: Upstream) -> None:
    out, t = stream.outputs, stream.topics
    customer = uid("hop")
    home = canonical_partition(customer, PARTITIONS)
    first = purchase(customer, 1000, yesterday())
    question = enquiry(customer, yesterday(1))
    await upstream.send(t.purchases, first)
    await out.wait_score(customer, str(first["event_id"]))
    for _ in range(2):  # the same enquiry twice, both times on a wrong partition
        await upstream.send(t.enquiries, question, partition=(home + 2) % PARTITIONS)
    copies = await out.wait_for(
        lambda: len(c := [r for r in out.of(t.events, customer) if r["event_id"] == question["event_id"]]) >= 2
        and c, "both copies forwarded")
    assert [(r.partition, r.key) for r in copies] == [(home, customer)] * 2
    snapshot = await out.wait_score(customer, str(question["event_id"]))
    assert snapshot["score"] == 62.25  # 61.25 + 1, once
    barrier = purchase(customer, "0.01", yesterday(2))  # after both copies on the customer's partition
    await upstream.send(t.purchases, barrier)
    await out.wait_score(customer, str(barrier["event_id"]))
    assert len(out.scores(customer, cause=question["event_id"])) == 1  # the second copy sent nothing
    status, profile = await http_json("GET", f"{stream.worker.web_url}/customers/{customer}")
    assert (status, profile["frequency"], profile["complaints"]) == (200, 2, 0)
