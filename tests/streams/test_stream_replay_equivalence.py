"""A backfill through the stream (event clock) ends where `tierstream replay --exact` ends.

A varied two-year history (a few hundred customers: heavy, regular and light buyers,
lapsing ones, one-offs, complainers; returns, complaints, enquiries, a few
redelivered events) is written as JSONL of typed events, produced in file order to
the mixed `customer-events` topic keyed by customer id, and scored by a worker
with `clock: event`. Then every customer's state in the worker's table (read from
its changelog) is compared with the replay of the same file:

- with the replay functions (`group_rows`, then `step` event by event as
  `profiles_exact` does), followed by the one review the worker's sweep does at
  the end: as of its partition's clock, for the customers due by then;
- with the `tierstream replay FILE --as-of DAY --exact` CSV, evaluating the
  worker's states as of the same day.
"""

from __future__ import annotations

import csv
import json
import random
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from streamkit import PARTITIONS, StartStream, StreamGroup, Upstream, customer_on, eventually, run_cli

from scoring.codec import decode_state
from scoring.events import MS_PER_DAY
from scoring.state import NEW_STATE, CustomerState
from scoring.step import evaluate, step
from streams.clock import Clock
from streams.history import CsvLayout, read_history
from streams.partitioning import canonical_partition
from streams.replay import ReplayStats, group_rows
from streams.resync import read_table

pytestmark = pytest.mark.integration

START = datetime(2023, 1, 2, tzinfo=UTC)
DAYS = 730
KINDS = {  # mean days between purchases, typical amount
    "heavy": (20, 500), "regular": (45, 150), "light": (120, 60), "lapsing": (25, 250), "oneoff": (10_000, 80),
    "complainer": (40, 150),
}
MAX_PURCHASES = 16  # per customer: keeps the whole history near 2,000 events


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
    last = START + timedelta(days=DAYS)
    events = [e for e in events if START <= e["occurred_at"] < last]
    for p in range(PARTITIONS):  # every partition's clock reaches the last day, as the replay's does
        closer = customer_on(p, f"rp{seed}-close")
        events.append({"type": "purchase", "event_id": f"p-{closer}", "customer_id": closer,
                       "occurred_at": last - timedelta(minutes=10 + p), "amount": "42.00", "currency": "USD",
                       "order_id": f"o-{closer}"})
    events.sort(key=lambda e: e["occurred_at"])
    for index in sorted(rng.sample(range(len(events) - 10), k=len(events) // 100), reverse=True):
        events.insert(index + rng.randint(1, 8), dict(events[index]))  # a redelivery, shortly after
    return [{**e, "occurred_at": e["occurred_at"].isoformat()} for e in events]


@pytest.fixture(scope="module")
async def stream(start_stream: StartStream) -> AsyncIterator[StreamGroup]:
    async with start_stream("replay", clock="event", review_interval_seconds=1.0) as group:
        yield group


def expected_states(path: Path, as_of_day: int, stream: StreamGroup) -> dict[str, CustomerState]:
    """The replay's states: every event stepped at its own time, then the worker's last sweep review."""
    config = stream.settings.scoring
    by_customer = group_rows(read_history(path, CsvLayout()), as_of_day, ReplayStats(), False, lambda _: None)
    clock = Clock("event")  # the worker's clock: each partition's time is its latest event's
    for customer, events in by_customer.items():
        for event in events:
            clock.event_now_ms(event.at_ms, canonical_partition(customer, stream.settings.partitions))
    states = {}
    for customer, events in by_customer.items():
        state = NEW_STATE
        for event in events:  # as `profiles_exact`, without its final as-of step
            state = step(state, event, event.at_ms, customer, config).state
        swept = clock.sweep_now_ms(canonical_partition(customer, stream.settings.partitions))
        if swept is not None and state.review_day is not None and state.review_day <= swept // MS_PER_DAY:
            state = step(state, None, swept, customer, config).state  # the sweep re-scores due customers
        states[customer] = state
    return states


async def test_backfill_through_the_stream_equals_replay(stream: StreamGroup, upstream: Upstream,
                                                         tmp_path: Path) -> None:
    history = generate_history(customers=200, seed=11)
    path = tmp_path / "history.jsonl"
    path.write_text("".join(json.dumps(e) + "\n" for e in history))
    as_of = max(datetime.fromisoformat(e["occurred_at"]) for e in history).date()
    as_of_day = (as_of - datetime(1970, 1, 1, tzinfo=UTC).date()).days

    await upstream.send_all(stream.topics.events, history)  # in file order, keyed by customer id
    expected = expected_states(path, as_of_day, stream)
    assert len(expected) == 204  # 200 customers and the four closing ones
    distinct = len({e["event_id"] for e in history})  # the redelivered copies are not scored again

    async def all_scored() -> bool:  # cheap to poll; reading the changelog is not
        health = await stream.worker.health()
        return health is not None and health["events_scored"] >= distinct

    await eventually(all_scored, f"the worker to score {distinct} events", within=120, interval=0.5)

    mismatches: list[str] = []

    async def equal() -> bool:
        table, _ = await read_table(stream.settings, idle_timeout=1.0)
        states = {c: decode_state(raw) for c, raw in table.items()}
        mismatches[:] = [c for c in expected if c not in states or states[c].figures != expected[c].figures
                         or states[c].tier != expected[c].tier]
        return not mismatches and set(states) == set(expected)

    try:
        await eventually(equal, "the worker's table to equal the replay", within=90, interval=1.0)
    except AssertionError:
        table, _ = await read_table(stream.settings, idle_timeout=1.0)
        examples = [(c, table.get(c) and decode_state(table[c]).tier, expected[c].tier) for c in mismatches[:5]]
        raise AssertionError(f"{len(mismatches)} of {len(expected)} customers differ, e.g. {examples}; "
                             f"worker health: {await stream.worker.health()}") from None

    # The same comparison against the command line's CSV, as of the last event's day.
    out = tmp_path / "replay.csv"
    done = await run_cli("replay", str(path), "--as-of", as_of.isoformat(), "--exact", "--out", str(out))
    assert done.returncode == 0, done.stderr
    rows = {r["customer_id"]: r for r in csv.DictReader(out.open())}
    assert set(rows) == set(expected)
    table, _ = await read_table(stream.settings, idle_timeout=1.0)
    config = stream.settings.scoring
    tiers: dict[str, int] = {}
    for customer, row in rows.items():
        ev = evaluate(decode_state(table[customer]), as_of_day, config)
        s = ev.score
        worker_row = {"tier": ev.tier, "score": str(s.composite), "frequency": str(s.frequency),
                      "monetary": f"{s.monetary:.2f}", "returns_amount": f"{s.returns_amount:.2f}",
                      "complaints": str(s.complaints), "segment": ev.segment, "at_risk": str(int(ev.risk.is_at_risk))}
        assert worker_row == {k: row[k] for k in worker_row}, customer
        tiers[ev.tier] = tiers.get(ev.tier, 0) + 1
    assert len(tiers) == 4, tiers  # the history exercises every tier
