"""A backfill through the stream (event clock) ends where `replay --exact` ends, whoever produced it.

A varied two-year history (a few hundred customers: heavy, regular and light buyers, lapsing ones,
one-offs, complainers; returns, complaints, enquiries, ~1 % redelivered copies) is produced by a
real librdkafka client (confluent-kafka) with ITS default partitioner (consistent_random: CRC32 of
the key, not murmur2), purchases to the typed `purchases` topic and every other event to the mixed
`customer-events` topic: most records land off their customer's canonical partition and are
forwarded, and the two topics interleave in no particular order. Halfway, the worker is killed with
SIGKILL and a new one takes over. The review sweep runs throughout.

The stream must end equal to `replay --exact` of the same events (`tests.kits.faults.expect`, the
replay's own functions) with the final review as of the history's last day:
- every tier change, action and alert the replay produces, with the same id and the same content
  (all but `emitted_at`), every copy of it; and no other id;
- each customer's latest score snapshot equal to the replay's last one;
- every customer's state in the table (its changelog) equal to the replay's, field by field.
With a global holdout of 30 %: held-out actions only on their own topic, never on the action topic, and
outcome windows (kept in the state through the kill) closing into the same outcomes as the replay's.
With a retention rule (400 idle days) and a few erasure requests: the same CustomerForgotten outputs, the
forgotten customers gone from the table (tombstones) and from the latest snapshots, and those who come
back started anew in both.
The history's seed is drawn per run and printed.
"""

from __future__ import annotations

import asyncio
import json
import os
import random
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from confluent_kafka import Producer

from tests.kits.faults import (
    OutputIndex,
    assert_nothing_lost,
    expect,
    moment,
    restart_worker,
    settle,
    with_closers,
)
from tests.kits.stream import PARTITIONS, StartStream, StreamGroup, eventually

pytestmark = pytest.mark.integration

START = datetime(2023, 1, 2, tzinfo=UTC)
DAYS = 730
KINDS = {  # mean days between purchases, typical amount
    "heavy": (20, 500), "regular": (45, 150), "light": (120, 60), "lapsing": (25, 250), "oneoff": (10_000, 80),
    "complainer": (40, 150),
}
MAX_PURCHASES = 16  # per customer: keeps the whole history near 2,000 events
# One-record producer batches: the test broker answers ListOffsets wrongly after multi-record batches
# (see tests/local/test_broker_conformance.py), which would make the restarted worker's changelog
# recovery miss the last batch of state updates.
# control groups: held-out actions and outcomes; retention: the history's lapsing and one-off customers are
# forgotten (and some come back), and a few ask for erasure (CustomerForgotten, tombstones, restarts)
SETTINGS = {"clock": "event", "review_interval_seconds": 0.3, "producer_max_batch_size": 1,
            "scoring": {"tiering": "absolute", "global_holdout_share": 0.3, "retention": {"forget_after_days": 400}}}
ERASE_EVERY = 23  # one customer in this many asks for erasure at a random time of the history


def generate_history(customers: int, seed: int) -> list[dict[str, Any]]:
    """Typed events sorted by time, with ~1% redelivered copies a few lines later."""
    rng = random.Random(seed)
    events: list[dict[str, Any]] = []
    names = list(KINDS)
    for i in range(customers):
        customer = f"rp{seed}-{i:04d}"
        kind = names[i % len(names)]
        gap, size = KINDS[kind]
        t = rng.uniform(0, DAYS * 0.6)
        end = t + rng.uniform(60, 300) if kind == "lapsing" else DAYS
        for n in range(MAX_PURCHASES):
            if t >= min(end, DAYS):
                break
            at = START + timedelta(days=t)
            amount = round(rng.lognormvariate(0, 0.5) * size, 2)
            order = f"o-{customer}-{n}"
            events.append({"type": "purchase", "event_id": f"p-{customer}-{n}", "customer_id": customer,
                           "occurred_at": at, "amount": f"{amount:.2f}", "currency": "USD", "order_id": order})
            if rng.random() < (0.25 if kind == "complainer" else 0.06):
                events.append({"type": "return", "event_id": f"r-{customer}-{n}", "customer_id": customer,
                               "occurred_at": at + timedelta(days=rng.uniform(1, 20)),
                               "amount": f"{amount * rng.choice([0.3, 0.5, 1.0]):.2f}", "currency": "USD",
                               "order_id": order, "reason": "damaged"})
            if rng.random() < (0.3 if kind == "complainer" else 0.04):
                events.append({"type": "complaint", "event_id": f"c-{customer}-{n}", "customer_id": customer,
                               "occurred_at": at + timedelta(days=rng.uniform(0, 10)),
                               "severity": rng.randint(1, 5), "category": "delivery"})
            if rng.random() < 0.1:
                events.append({"type": "enquiry", "event_id": f"e-{customer}-{n}", "customer_id": customer,
                               "occurred_at": at + timedelta(days=rng.uniform(-5, 5)), "topic": "stock"})
            t += rng.expovariate(1 / gap)
        if i % ERASE_EVERY == 3:
            events.append({"type": "erasure", "event_id": f"x-{customer}", "customer_id": customer,
                           "occurred_at": START + timedelta(days=rng.uniform(0, DAYS))})  # renamed below
    last = START + timedelta(days=DAYS)
    events = [e for e in events if START <= e["occurred_at"] < last]
    events.sort(key=lambda e: e["occurred_at"])
    for index in sorted(rng.sample(range(len(events) - 10), k=len(events) // 100), reverse=True):
        events.insert(index + rng.randint(1, 8), dict(events[index]))  # a redelivery, shortly after
    return [{**e, "occurred_at": e["occurred_at"].isoformat()} if e["type"] != "erasure" else
            {k: v for k, v in e.items() if k != "occurred_at"} | {"requested_at": e["occurred_at"].isoformat()}
            for e in events]


def produce(bootstrap: str, events: list[dict[str, Any]], purchases: str, mixed: str) -> None:
    """librdkafka with its defaults (partitioner consistent_random), as most non-Java producers run."""
    producer = Producer({"bootstrap.servers": bootstrap, "linger.ms": 5})
    for event in events:
        topic = purchases if event["type"] == "purchase" else mixed
        producer.produce(topic, json.dumps(event).encode(), key=str(event["customer_id"]).encode())
        producer.poll(0)
    assert producer.flush(60) == 0


@pytest.fixture(scope="module")
async def stream(start_stream: StartStream) -> AsyncIterator[StreamGroup]:
    async with start_stream("replay", **SETTINGS) as group:
        yield group


async def test_a_librdkafka_backfill_with_a_kill_equals_replay_exact(stream: StreamGroup, kafka_bootstrap: str,
                                                                     tmp_path: Path) -> None:
    seed = int(os.environ.get("TEST_SEED") or random.randrange(1_000_000))  # set: rerun a seed
    print(f"history seed {seed}", flush=True)
    events = with_closers(generate_history(customers=160, seed=seed), PARTITIONS, f"rp{seed}-")
    last_day = max(moment(e) for e in events[:-PARTITIONS]).date()
    as_of_day = (last_day - datetime(1970, 1, 1, tzinfo=UTC).date()).days
    expected = expect(events, stream.settings.scoring, stream.topics, as_of_day)
    index = OutputIndex(stream)
    half = len(events) // 2
    topics = stream.topics

    await asyncio.to_thread(produce, kafka_bootstrap, events[:half], topics.purchases, topics.events)

    async def some_scored() -> bool:
        health = await stream.worker.health()
        return health is not None and health["events_scored"] > half // 3

    await eventually(some_scored, "a third of the first half scored", within=120, interval=0.2)
    victim = stream.worker
    victim.kill()  # SIGKILL: no flush, no commit, no leave-group
    restart_worker(stream, victim)
    await stream.wait_ready(within=120)
    await asyncio.to_thread(produce, kafka_bootstrap, events[half:], topics.purchases, topics.events)

    states, check = await settle(stream, index, expected)
    print(f"{check.found} of {len(expected.outputs)} outputs, {check.duplicates} repeats, "
          f"{len(index.dlq)} dead letters", flush=True)
    assert_nothing_lost(states, check, expected, index)
    forwarded = [r for r in stream.outputs.of(topics.events) if str(r.value.get("event_id", "")).startswith("p-")]
    held = stream.outputs.of(topics.holdouts)
    assert held and all(r.value["roi_decision"] == "held_out" for r in held)
    assert stream.outputs.of(topics.outcomes), "no outcome window closed: the test tests no outcome"
    assert not stream.outputs.of(topics.actions, roi_decision="held_out"), "a held-out action was sent"
    assert forwarded, "the librdkafka partitioner put no purchase off its partition: the test tests nothing"
    forgotten = {r.value["reason"] for r in stream.outputs.of(topics.tier_changes, type="CustomerForgotten")}
    assert forgotten == {"inactive", "erasure"}, f"the test tests no forget of each kind: {forgotten}"
