"""Helpers of the fault tests (tests/streams/test_fault_*.py): histories, the replay's
expectations, output checks, process probes and the faults report.

- `history(seed, ...)`: a seeded mixed-event history (streams.generator personas), in time
  order, with a few redelivered copies, as JSON documents for the `customer-events` topic.
- `expect(events, config)`: what a clean run ends with, computed by stepping each customer's
  events in order exactly as the stream does with `clock: event` (the replay's `step`): final
  states, every output id (with its topic and customer) and the number of events applied.
- `OutputIndex`: output records of a group indexed by id, incrementally; `check_outputs`
  lists missing ids, duplicates and duplicates whose payload differs.
- `compare_states`: the table (read from its changelog with `streams.resync.read_table`)
  against the expected states: figures, tier, purchases and total_cents per customer.
- `report(row)`: appends one JSON line to $TIERSTREAM_FAULTS_REPORT
  (default tests/artifacts/faults.jsonl); `python -m tests.streams.faults_report` prints it.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import random
import time
from collections import defaultdict
from collections.abc import AsyncIterator, Awaitable, Callable, Iterable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from pydantic import TypeAdapter
from streamkit import (
    Out,
    StreamGroup,
    Worker,
    http_json,
    run_group,
    spawn_worker,
    stream_config,
)

from schemas.inputs import InputEvent
from scoring.codec import decode_state
from scoring.config import ScoringConfig
from scoring.state import NEW_STATE, CustomerState
from scoring.step import step
from streams.convert import InputMessage, to_core
from streams.embedded import free_port
from streams.generator import DEFAULT_START, generate, to_json
from streams.resync import read_table
from streams.settings import Settings, TopicNames

ROOT = Path(__file__).resolve().parents[2]
REPORT_ENV = "TIERSTREAM_FAULTS_REPORT"
DEFAULT_REPORT = ROOT / "tests" / "artifacts" / "faults.jsonl"
_INPUT: TypeAdapter[InputMessage] = TypeAdapter(InputEvent)


# ----------------------------------------------------------------------------- histories
def history(seed: int, customers: int = 2000, min_events: int = 20_000, days: float = 270,
            redeliver: float = 0.005, prefix: str | None = None,
            start: datetime = DEFAULT_START) -> list[dict[str, Any]]:
    """A seeded history of >= `min_events` typed events over `customers` customers, in time order.

    Customer ids get `prefix` (default `f{seed}-`) so several histories can share a broker;
    ~`redeliver` of the events are repeated a few positions later (an upstream redelivery).
    """
    prefix = f"f{seed}-" if prefix is None else prefix
    while True:
        docs = [json.loads(to_json(m)) for m in generate(seed, customers, days, start)]
        if len(docs) >= min_events:
            break
        days *= 1.25
    for doc in docs:
        doc["customer_id"] = prefix + doc["customer_id"]
        doc["event_id"] = prefix + doc["event_id"]
    rng = random.Random(seed)
    for index in sorted(rng.sample(range(len(docs) - 10), k=round(len(docs) * redeliver)), reverse=True):
        docs.insert(index + rng.randint(1, 8), dict(docs[index]))
    return docs


# ----------------------------------------------------------------------------- expectations
OUTPUT_KINDS = ("tier_change", "action", "alert", "score")


def kind_topics(topics: TopicNames) -> dict[str, str]:
    return {"tier_change": topics.tier_changes, "action": topics.actions, "alert": topics.alerts,
            "score": topics.scores}


@dataclass
class Expected:
    """A clean run's end: states, output ids -> (topic, customer, cause), distinct events applied."""

    states: dict[str, CustomerState]
    outputs: dict[str, tuple[str, str, str]]
    applied: int
    produced: int

    @property
    def customers(self) -> set[str]:
        return set(self.states)


def expect(events: Iterable[dict[str, Any]], config: ScoringConfig, topics: TopicNames) -> Expected:
    """Step every customer's events in order at their own time, as the stream does with `clock: event`.

    This is `streams.replay.profiles_exact` without its final as-of review (the worker's sweep is
    kept out of the fault tests, see their docstrings): each event's `step` catches up on the review
    days before it, so time-driven outputs are included with the ids the stream gives them.
    """
    by_kind = kind_topics(topics)
    by_customer: dict[str, list[InputMessage]] = defaultdict(list)
    produced = 0
    for doc in events:
        produced += 1
        message = _INPUT.validate_python(doc)
        by_customer[message.customer_id].append(message)
    states: dict[str, CustomerState] = {}
    outputs: dict[str, tuple[str, str, str]] = {}
    applied = 0
    for customer, messages in by_customer.items():
        state = NEW_STATE
        for message in messages:
            core = to_core(message)
            result = step(state, core, core.at_ms, customer, config)
            assert result.outcome in ("applied", "duplicate"), (customer, result.outcome, result.reason)
            applied += result.outcome == "applied"
            if not result.resent:
                for decision in result.decisions:
                    outputs[decision.id] = (by_kind[decision.kind], customer, decision.cause)
            state = result.state
        states[customer] = state
    return Expected(states, outputs, applied, produced)


# ----------------------------------------------------------------------------- outputs
@dataclass
class OutputIndex:
    """The output records of a group, by id (scores, tier changes, actions, alerts), read incrementally."""

    group: StreamGroup
    by_id: dict[str, list[Out]] = field(default_factory=lambda: defaultdict(list))
    dlq: list[Out] = field(default_factory=list)
    _cursor: int = 0

    def update(self) -> OutputIndex:
        records = self.group.outputs.records
        wanted = set(kind_topics(self.group.topics).values())
        for record in records[self._cursor:]:
            if record.topic in wanted:
                self.by_id[record.value["id"]].append(record)
            elif record.topic == self.group.topics.dlq:
                self.dlq.append(record)
        self._cursor = len(records)
        return self

    def missing(self, expected: Expected) -> list[str]:
        self.update()
        return [i for i in expected.outputs if i not in self.by_id]


@dataclass
class OutputCheck:
    expected: int
    found: int
    missing: list[str]
    unexpected: list[str]
    duplicates: int  # extra copies of an id (records - distinct ids)
    differing: list[tuple[str, dict[str, Any], dict[str, Any]]]  # (id, first, other) differing beyond emitted_at

    def problems(self) -> str:
        lines = []
        if self.missing:
            lines.append(f"{len(self.missing)} of {self.expected} expected output ids missing, e.g. {self.missing[:5]}")
        if self.unexpected:
            lines.append(f"{len(self.unexpected)} output ids a clean run does not produce, e.g. {self.unexpected[:5]}")
        for oid, first, other in self.differing[:3]:
            diff = {k: (first.get(k), other.get(k)) for k in sorted(set(first) | set(other))
                    if first.get(k) != other.get(k)}
            lines.append(f"id {oid} repeated with another payload: {diff}")
        if self.differing:
            lines.append(f"{len(self.differing)} ids repeated with another payload in all")
        return "\n".join(lines)


def _payload(record: Out) -> dict[str, Any]:
    return {k: v for k, v in record.value.items() if k != "emitted_at"}


def check_outputs(index: OutputIndex, expected: Expected) -> OutputCheck:
    """Every expected id present on its topic; extra copies only as exact repeats."""
    index.update()
    mine = {oid: recs for oid, recs in index.by_id.items() if recs[0].value.get("customer_id") in expected.states}
    missing = [oid for oid, (topic, _, _) in expected.outputs.items()
               if oid not in mine or all(r.topic != topic for r in mine[oid])]
    unexpected = [oid for oid in mine if oid not in expected.outputs]
    duplicates, differing = 0, []
    for oid, recs in mine.items():
        duplicates += len(recs) - 1
        first = _payload(recs[0])
        for other in recs[1:]:
            if _payload(other) != first:
                differing.append((oid, first, _payload(other)))
    return OutputCheck(len(expected.outputs), sum(1 for oid in expected.outputs if oid in mine), missing,
                       unexpected, duplicates, differing)


async def wait_outputs(index: OutputIndex, expected: Expected, stall: float = 120.0, within: float = 900.0) -> None:
    """Until every expected output id has been read.

    Fails (naming what is missing) when no missing output arrived for `stall` seconds, or after
    `within` seconds in all: limits on waiting only, generous because the machine may be shared.
    """
    started = time.monotonic()
    missing = index.missing(expected)
    progress_at, best = started, len(missing)
    while missing:
        now = time.monotonic()
        if len(missing) < best:
            progress_at, best = now, len(missing)
        if now - progress_at > stall or now - started > within:
            by_topic: dict[str, int] = defaultdict(int)
            for oid in missing:
                by_topic[expected.outputs[oid][0]] += 1
            sample = [(oid, *expected.outputs[oid]) for oid in missing[:5]]
            raise AssertionError(f"after {now - started:.0f}s ({now - progress_at:.0f}s without progress) "
                                 f"{len(missing)} of {len(expected.outputs)} expected outputs are missing: "
                                 f"{dict(by_topic)}, e.g. {sample}")
        await asyncio.sleep(0.5)
        missing = index.missing(expected)


async def wait_progress(probe: Callable[[], Awaitable[int]], target: int, what: str, stall: float = 120.0,
                        interval: float = 0.1) -> int:
    """Until `probe()` (a counter) reaches `target`; fails when it stops growing for `stall` seconds."""
    value = await probe()
    progress_at, best = time.monotonic(), value
    while value < target:
        if value > best:
            progress_at, best = time.monotonic(), value
        if time.monotonic() - progress_at > stall:
            raise AssertionError(f"{what}: stuck at {value} of {target} for {stall:.0f}s")
        await asyncio.sleep(interval)
        value = await probe()
    return value


# ----------------------------------------------------------------------------- states
@dataclass
class StateCheck:
    customers: int
    missing: list[str]
    differing: list[str]
    applied: int  # events in the table's states (purchases + returns + complaints + enquiries)

    @property
    def ok(self) -> bool:
        return not self.missing and not self.differing

    def problems(self, table: dict[str, CustomerState], expected: Expected) -> str:
        examples = []
        for c in self.differing[:5]:
            got, want = table[c], expected.states[c]
            examples.append(f"{c}: tier {got.tier}/{want.tier}, purchases {got.purchases}/{want.purchases}, "
                            f"total_cents {got.total_cents}/{want.total_cents}")
        return (f"{len(self.missing)} customers missing from the table (e.g. {self.missing[:5]}), "
                f"{len(self.differing)} differ from the replay (got/expected): {examples}")


def events_in(state: CustomerState) -> int:
    """Events recorded in a state's day buckets (each applied event id is kept there once)."""
    return sum(len(bucket[7]) for bucket in state.buckets.values()) + len(state.old_ids)


def compare_states(table: dict[str, CustomerState], expected: Expected) -> StateCheck:
    missing = [c for c in expected.states if c not in table]
    differing = []
    applied = 0
    for customer, want in expected.states.items():
        got = table.get(customer)
        if got is None:
            continue
        applied += events_in(got)
        if (got.figures != want.figures or got.tier != want.tier or got.purchases != want.purchases
                or got.total_cents != want.total_cents):
            differing.append(customer)
    return StateCheck(len(expected.states), missing, differing, applied)


async def table_states(settings: Settings, customers: set[str] | None = None) -> dict[str, CustomerState]:
    """The customers table as its changelog holds it (latest value per customer), decoded."""
    raw, _ = await read_table(settings, idle_timeout=2.0)
    return {c: decode_state(v) for c, v in raw.items() if customers is None or c in customers}


async def wait_states(settings: Settings, expected: Expected, within: float = 120.0) -> StateCheck:
    """Until the changelog's states equal the expected ones; the last check (fails with details)."""
    deadline = time.monotonic() + within
    while True:
        table = await table_states(settings, expected.customers)
        check = compare_states(table, expected)
        if check.ok:
            return check
        if time.monotonic() > deadline:
            raise AssertionError(f"after {within:.0f}s the table still differs: {check.problems(table, expected)}")
        await asyncio.sleep(2.0)


async def settle(group: StreamGroup, index: OutputIndex, expected: Expected) -> tuple[StateCheck, OutputCheck]:
    """Wait until every expected output is read and the table equals the replay; both checks."""
    await wait_outputs(index, expected)
    states = await wait_states(group.settings, expected)
    return states, check_outputs(index, expected)


def assert_nothing_lost(states: StateCheck, check: OutputCheck, expected: Expected, index: OutputIndex) -> None:
    """Every event in the states once, every expected output present, repeats only exact, no dead letter."""
    assert states.applied == expected.applied, (
        f"{states.applied} events recorded in the states, {expected.applied} distinct events produced")
    assert not check.missing and not check.unexpected and not check.differing, check.problems()
    assert not index.dlq, [r.value["reason"] for r in index.dlq[:3]]


# ----------------------------------------------------------------------------- processes
@contextlib.asynccontextmanager
async def start_group(name: str, bootstrap: str, redis_url: str, prefix: str, workdir: Path, *, workers: int = 1,
                      **settings: Any) -> AsyncIterator[StreamGroup]:
    """Like the `start_stream` fixture, for a group whose Redis is not the session's (`redis_url`).

    (`start_stream` takes `redis_url` from the session and cannot be given another one.)
    """
    doc = stream_config(name, bootstrap, redis_url, prefix, workdir, **settings)
    async with run_group(name, doc, workdir, bootstrap, workers) as group:
        yield group



def restart_worker(group: StreamGroup, old: Worker) -> Worker:
    """A new worker process in place of `old` (same config, new web port)."""
    index = group.workers.index(old)
    name = f"{old.name}r"
    worker = spawn_worker(group.config_path, free_port(), group.workdir / f"{name}.log", name)
    group.workers[index] = worker
    return worker


def rss_kib(pid: int) -> int:
    """VmRSS of a process in KiB (from /proc/<pid>/status)."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1])
    raise AssertionError(f"no VmRSS for pid {pid}")


async def scored_total(group: StreamGroup) -> int:
    """Events scored by the group's live workers since they started (from /health)."""
    total = 0
    for worker in group.workers:
        if worker.alive():
            health = await worker.health()
            total += health["events_scored"] if health else 0
    return total


async def metrics_lag(worker: Worker, headers: dict[str, str] | None = None) -> int | None:
    """Sum of the worker's `tierstream_consumer_lag` gauge; None when /metrics did not answer."""
    try:
        status, body = await http_json("GET", f"{worker.web_url}/metrics", headers=headers, limit=5)
    except (OSError, TimeoutError):
        return None
    if status != 200 or not isinstance(body, str):
        return None
    lines = [ln for ln in body.splitlines() if ln.startswith("tierstream_consumer_lag{")]
    if not lines:
        return None
    return sum(int(float(ln.rsplit(" ", 1)[1])) for ln in lines)


# ----------------------------------------------------------------------------- report
def report_path() -> Path:
    return Path(os.environ.get(REPORT_ENV) or DEFAULT_REPORT)


def report(test: str, fault: str, *, faults_injected: int, events_produced: int, scored: int,
           dead_lettered: int, outputs_expected: int, outputs_found: int, duplicates: int,
           recovery_s: float | None, **extra: Any) -> dict[str, Any]:
    """Append one row to the faults report (JSON lines) and return it."""
    row = {"at": datetime.now(UTC).isoformat(timespec="seconds"), "test": test, "fault": fault,
           "faults_injected": faults_injected, "events_produced": events_produced, "scored": scored,
           "dead_lettered": dead_lettered, "outputs_expected": outputs_expected, "outputs_found": outputs_found,
           "duplicates": duplicates, "recovery_s": None if recovery_s is None else round(recovery_s, 2), **extra}
    path = report_path()
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("a") as handle:
        handle.write(json.dumps(row) + "\n")
    return row
