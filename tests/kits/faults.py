"""Helpers of the fault tests (tests/worker/test_fault_*.py): histories, the replay's
expectations, output checks, process probes and the faults report.

- `history(seed, ...)`: a seeded mixed-event history (streams.local.generator personas), in time
  order, with a few redelivered copies, as JSON documents for the `customer-events` topic.
- `with_closers(events, partitions, prefix)`: the history plus one purchase per partition the day after
  its end, so every partition's event clock (and the review sweep) reaches its last day.
- `expect(events, config, topics, as_of_day)`: what a clean run ends with, computed as
  `replay --exact` does (each customer's events in event order, each as of its own time, then the
  final review the sweep does): final states, every tier change, action and alert with its content,
  the last score snapshot per customer, and the number of events applied.
- `OutputIndex`: output records of a group, incrementally; `check_outputs` lists missing and
  unexpected ids, outputs whose content differs from the replay's (every copy of an id is
  compared), and customers whose latest snapshot is not the replay's last one.
- `compare_states`: the table (read from its changelog with `streams.serving.resync.read_table`)
  against the expected states, field by field.
- `report(row)`: appends one JSON line to $TIERSTREAM_FAULTS_REPORT
  (default tests/artifacts/faults.jsonl); `python -m tests.kits.faults_report` prints it.
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
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from pydantic import TypeAdapter

from schemas.inputs import InputEvent
from scoring.codec import decode_state
from scoring.config import ScoringConfig
from scoring.state import NEW_STATE, CustomerState
from scoring.step import due_reviews, step
from streams.convert import InputMessage, to_core
from streams.local.embedded import free_port
from streams.local.generator import DEFAULT_START, generate, to_json
from streams.offline.replay import event_order, step_messages
from streams.partitioning import canonical_partition
from streams.serving.resync import read_table
from streams.settings import Settings, TopicNames
from streams.worker.handler import route
from tests.kits.stream import (
    Out,
    StreamGroup,
    Worker,
    http_json,
    run_group,
    spawn_worker,
    stream_config,
)

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
OUTPUT_KINDS = ("tier_change", "potential_change", "action", "alert", "outcome", "forgotten")  # never coalesced
CLOSER = "closer-"


def kind_topics(topics: TopicNames) -> dict[str, str]:
    return {"tier_change": topics.tier_changes, "potential_change": topics.tier_changes,
            "forgotten": topics.tier_changes, "action": topics.actions,
            "alert": topics.alerts, "score": topics.scores, "held_out": topics.holdouts, "outcome": topics.outcomes}


def moment(event: dict[str, Any]) -> datetime:
    """An input's time: its `occurred_at` (an erasure request's `requested_at`)."""
    return datetime.fromisoformat(str(event.get("occurred_at") or event["requested_at"]))


def with_closers(events: list[dict[str, Any]], partitions: int, prefix: str) -> list[dict[str, Any]]:
    """The history and, the day after its last event, one purchase on every partition: each partition's
    event clock then reaches that day, so the workers' review sweep ends where `replay --as-of <last day>`
    does. The closing customers' ids start with `prefix + CLOSER` (left out of comparisons)."""
    last = max(moment(e) for e in events)
    at = datetime(last.year, last.month, last.day, 12, tzinfo=UTC) + timedelta(days=1)
    closers = []
    for partition in range(partitions):
        i = 0
        while canonical_partition(customer := f"{prefix}{CLOSER}{partition}-{i}", partitions) != partition:
            i += 1
        closers.append({"type": "purchase", "event_id": f"{customer}-p", "customer_id": customer,
                        "occurred_at": at.isoformat(), "amount": "1.00", "currency": "USD",
                        "order_id": f"{customer}-o"})
    return [*events, *closers]


def last_day(events: list[dict[str, Any]]) -> int:
    """The epoch day of the last event before the closers (the final review day of `expect`)."""
    moments = [moment(e) for e in events if CLOSER not in e["customer_id"]]
    return (max(moments).date() - datetime(1970, 1, 1).date()).days


def strip(doc: dict[str, Any]) -> dict[str, Any]:
    """An output's content as compared: all but `emitted_at` (when it was sent)."""
    return {k: v for k, v in doc.items() if k != "emitted_at"}


@dataclass
class Expected:
    """A clean run's end (`replay --exact` of the same events, in-process): final states, every tier
    change, action and alert (id -> content), the last score snapshot per customer, events applied."""

    states: dict[str, CustomerState]
    outputs: dict[str, dict[str, Any]]
    topics: dict[str, str]  # output id -> its topic
    last_snapshot: dict[str, dict[str, Any]]
    applied: int
    produced: int
    as_of_day: int | None
    config: ScoringConfig  # the rules (and calibration) the replay scored with
    everyone: set[str] = field(default_factory=set)  # every customer with an event, forgotten ones too

    @property
    def customers(self) -> set[str]:
        return set(self.states)


def expect(events: Iterable[dict[str, Any]], config: ScoringConfig, topics: TopicNames,
           as_of_day: int | None = None) -> Expected:
    """Step every customer's events in event order at their own time, as the stream does with `clock: event`
    (`streams.offline.replay.profiles_exact`), then, with `as_of_day`, the review as of that day's end that
    the workers' sweep does. Customers whose ids hold `CLOSER` are left out."""
    by_kind = kind_topics(topics)
    by_customer: dict[str, list[InputMessage]] = defaultdict(list)
    produced = 0
    for doc in events:
        produced += 1
        message = _INPUT.validate_python(doc)
        if CLOSER not in message.customer_id:
            by_customer[message.customer_id].append(message)
    states: dict[str, CustomerState] = {}
    outputs: dict[str, dict[str, Any]] = {}
    out_topics: dict[str, str] = {}
    last: dict[str, dict[str, Any]] = {}
    applied = 0
    for customer, messages in by_customer.items():
        state: CustomerState | None = NEW_STATE
        results = []
        held = 0  # events the customer's state holds (since its last forget: retention, an erasure request)
        for core in sorted((to_core(m) for m in messages), key=event_order):
            result = step(state or NEW_STATE, core, core.at_ms, customer, config)
            assert result.outcome in ("applied", "duplicate", "forgotten"), (customer, result.outcome, result.reason)
            held = 0 if any(d.kind == "forgotten" for d in result.decisions) and not result.resent else held
            held += result.outcome == "applied"
            results.append(result)
            state = result.state
        if as_of_day is not None and state is not None:  # the sweep's reviews up to that day, each as of its due day
            for result in due_reviews(state, as_of_day, customer, config):
                results.append(result)
                state = result.state
        for result in results:
            if result.resent:  # a redelivery: the stream sends nothing for it
                continue
            for decision, message in zip(result.decisions, step_messages(customer, result, config, None),
                                         strict=True):
                doc = strip(message.model_dump(mode="json"))
                if decision.kind == "score":
                    last[customer] = doc
                else:
                    outputs[decision.id] = doc
                    out_topics[decision.id] = by_kind[route(decision)]  # held out: its own topic
        if state is None or state is NEW_STATE:  # forgotten at the end: no state, no latest snapshot
            last.pop(customer, None)
            continue
        states[customer] = state
        applied += held
    return Expected(states, outputs, out_topics, last, applied, produced, as_of_day, config, set(by_customer))


# ----------------------------------------------------------------------------- outputs
@dataclass
class OutputIndex:
    """The output records of a group, by id (scores, tier changes, actions, alerts), read incrementally."""

    group: StreamGroup
    by_id: dict[str, list[Out]] = field(default_factory=lambda: defaultdict(list))
    snapshots: dict[str, Out] = field(default_factory=dict)  # customer -> its latest snapshot read
    snapshot_causes: dict[str, list[str]] = field(default_factory=lambda: defaultdict(list))  # in read order
    dlq: list[Out] = field(default_factory=list)
    _cursor: int = 0

    def update(self) -> OutputIndex:
        records = self.group.outputs.records
        topics = self.group.topics
        wanted = {topics.tier_changes, topics.actions, topics.alerts, topics.holdouts, topics.outcomes}
        for record in records[self._cursor:]:
            if record.topic in wanted:
                self.by_id[record.value["id"]].append(record)
            elif record.topic == topics.scores and not record.raw:  # a tombstone: the customer was forgotten
                self.snapshots.pop(record.key or "", None)
                self.snapshot_causes[record.key or ""].append(f"tombstone@{record.partition}:{record.offset}")
            elif record.topic == topics.scores:
                self.snapshots[record.value["customer_id"]] = record
                self.snapshot_causes[record.value["customer_id"]].append(
                    f"{record.value.get('cause')}@{record.partition}:{record.offset}")
            elif record.topic == topics.dlq:
                self.dlq.append(record)
        self._cursor = len(records)
        return self

    def missing(self, expected: Expected) -> list[str]:
        """Expected tier changes, actions and alerts not read yet, and customers whose latest snapshot is
        not (yet) the expected last one (as `snapshot:<customer>`)."""
        self.update()
        gone = [i for i in expected.outputs if i not in self.by_id]
        gone += [f"snapshot:{c}" for c, doc in expected.last_snapshot.items()
                 if (latest := self.latest_snapshot(c)) is None or strip(latest.value) != doc]
        return gone

    def latest_snapshot(self, customer: str) -> Out | None:
        """The customer's snapshot read last (one partition: the latest sent)."""
        return self.snapshots.get(customer)


@dataclass
class OutputCheck:
    expected: int
    found: int
    missing: list[str]
    unexpected: list[str]
    duplicates: int  # extra copies of an id (records - distinct ids)
    differing: list[tuple[str, dict[str, Any], dict[str, Any]]]  # (id, first, other) differing beyond emitted_at
    unexpected_docs: list[tuple[str, dict[str, Any]]] = field(default_factory=list)  # what the unexpected ones say

    def problems(self) -> str:
        lines = []
        if self.missing:
            lines.append(f"{len(self.missing)} of {self.expected} expected outputs missing, e.g. {self.missing[:5]}")
        if self.unexpected:
            lines.append(f"{len(self.unexpected)} output ids a clean run does not produce, e.g. {self.unexpected[:5]}")
            lines += [f"  {oid}: {doc}" for oid, doc in self.unexpected_docs[:3]]
        for oid, first, other in self.differing[:3]:
            diff = {k: (first.get(k), other.get(k)) for k in sorted(set(first) | set(other))
                    if first.get(k) != other.get(k)}
            lines.append(f"{oid} differs from the replay: {diff}")
        if self.differing:
            lines.append(f"{len(self.differing)} outputs differ from the replay in all")
        return "\n".join(lines)


def check_outputs(index: OutputIndex, expected: Expected) -> OutputCheck:
    """Every expected tier change, action and alert present on its topic with the replay's content, extra
    copies only as exact repeats, no other id; each customer's latest snapshot is the replay's last one."""
    index.update()
    mine = {oid: recs for oid, recs in index.by_id.items()
            if recs[0].value.get("customer_id") in (expected.everyone or expected.states)}
    missing = [oid for oid, topic in expected.topics.items()
               if oid not in mine or all(r.topic != topic for r in mine[oid])]
    unexpected = [oid for oid in mine if oid not in expected.outputs]
    duplicates, differing = 0, []
    for oid, recs in mine.items():
        duplicates += len(recs) - 1
        want = expected.outputs.get(oid) or strip(recs[0].value)
        for record in recs:
            if strip(record.value) != want:
                differing.append((oid, want, strip(record.value)))
    snapshots_found = 0  # customers whose latest snapshot is the replay's last one
    for customer, want in expected.last_snapshot.items():
        latest = index.latest_snapshot(customer)
        got = {} if latest is None else strip(latest.value)
        if got != want:
            missing.append(f"snapshot:{customer}")
            differing.append((f"snapshot:{customer}", want, got))
        else:
            snapshots_found += 1
    found = sum(1 for oid in expected.outputs if oid in mine) + snapshots_found  # counted as `expected` is
    return OutputCheck(len(expected.outputs) + len(expected.last_snapshot), found, missing, unexpected, duplicates,
                       differing, [(oid, {"topic": mine[oid][0].topic, **mine[oid][0].value}) for oid in unexpected])


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
                by_topic[expected.topics.get(oid, "scores (latest per customer)")] += 1
            sample = [(oid, expected.outputs[oid].get("customer_id"), expected.outputs[oid].get("cause"))
                      if oid in expected.outputs else oid for oid in missing[:5]]
            customers = {s[1] for s in sample if isinstance(s, tuple)}
            seen: dict[str, Any] = {c: _story(index, expected, c) for c in customers}
            for oid in missing[:3]:
                if oid.startswith("snapshot:"):
                    customer = oid.split(":", 1)[1]
                    latest = index.latest_snapshot(customer)
                    want = expected.last_snapshot[customer]
                    got = {} if latest is None else strip(latest.value)
                    seen[oid] = {k: (want.get(k), got.get(k)) for k in sorted(set(want) | set(got))
                                 if want.get(k) != got.get(k)} | {"snapshots read": index.snapshot_causes[customer]}
            raise AssertionError(f"after {now - started:.0f}s ({now - progress_at:.0f}s without progress) "
                                 f"{len(missing)} of {len(expected.outputs)} expected outputs are missing: "
                                 f"{dict(by_topic)}, e.g. {sample}; the stream's causes of those customers: {seen}")
        await asyncio.sleep(0.5)
        missing = index.missing(expected)


def _warnings(group: StreamGroup, most: int = 12) -> dict[str, list[str]]:
    """Each worker's latest log lines above INFO (a failure message's clue to what the worker saw)."""
    out = {}
    for w in group.workers:
        try:
            lines = Path(w.log_path).read_text(errors="replace").splitlines()
        except OSError:
            continue
        out[w.name] = [line[:400] for line in lines if " WARNING " in line or " ERROR " in line][-most:]
    return out


def _story(index: OutputIndex, expected: Expected, customer: str) -> dict[str, list[str]]:
    """A customer's tier changes, actions and alerts as the stream sent them and as the replay expects them."""
    def line(doc: dict[str, Any]) -> str:
        return f"{doc.get('cause')}:{doc.get('to_tier') or doc.get('action_type') or doc.get('alert_kind')}"
    sent = sorted((str(r.value.get("event_time")), line(r.value)) for recs in index.by_id.values() for r in recs
                  if r.value.get("customer_id") == customer)
    return {"stream": [text for _, text in sent],
            "replay": [line(doc) for doc in expected.outputs.values() if doc.get("customer_id") == customer]}


def _state_story(got: CustomerState | None, want: CustomerState | None) -> dict[str, Any]:
    """The fields in which a table's state differs from the replay's (events as id counts)."""
    if got is None or want is None:
        return {"table": got is not None, "replay": want is not None}
    return {name: (getattr(got, name), getattr(want, name)) for name in got._fields
            if name not in ("buckets", "outbox", "old_ids") and getattr(got, name) != getattr(want, name)} | {
        "events": (events_in(got), events_in(want)),
        "days": (sorted(got.buckets)[-3:], sorted(want.buckets)[-3:])}


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
                            f"total_e4 {got.total_e4}/{want.total_e4}")
        return (f"{len(self.missing)} customers missing from the table (e.g. {self.missing[:5]}), "
                f"{len(self.differing)} differ from the replay (got/expected): {examples}")


def events_in(state: CustomerState) -> int:
    """Events a state remembers (each applied event id is kept once: exactly, or in a filter)."""
    return len(state.seen) + sum(f.events for f in state.filters)


def compare_states(table: dict[str, CustomerState], expected: Expected) -> StateCheck:
    """Whole states: the table's equals the replay's (every field), once both have had the same final review
    (the table's states are written without the reviews that changed nothing but their clock)."""
    missing = [c for c in expected.states if c not in table]
    differing = []
    applied = 0
    for customer, want in expected.states.items():
        got = table.get(customer)
        if got is None:
            continue
        applied += events_in(got)
        if expected.as_of_day is not None and got.scored_day != want.scored_day:
            # reviews that changed nothing but the clock are kept in memory, not written: the stored review
            # day re-runs them (the worker's rule), so they are re-run here
            for result in due_reviews(got, expected.as_of_day, customer, expected.config):
                got = result.state
        if got is None or got._replace(outbox=()) != want._replace(outbox=()):
            differing.append(customer)
    differing += [c for c in table if c in expected.everyone and c not in expected.states]  # not forgotten
    return StateCheck(len(expected.states), missing, differing, applied)


async def table_states(settings: Settings, customers: set[str] | None = None) -> dict[str, CustomerState]:
    """The customers table as its changelog holds it (latest value per customer), decoded."""
    raw, _ = await read_table(settings, idle_timeout=2.0, gapless=True)
    return {c: decode_state(v) for c, v in raw.items() if customers is None or c in customers}


async def wait_states(settings: Settings, expected: Expected, within: float = 120.0) -> StateCheck:
    """Until the changelog's states equal the expected ones; the last check (fails with details)."""
    deadline = time.monotonic() + within
    while True:
        table = await table_states(settings, expected.everyone or expected.customers)
        check = compare_states(table, expected)
        if check.ok:
            return check
        if time.monotonic() > deadline:
            raise AssertionError(f"after {within:.0f}s the table still differs: {check.problems(table, expected)}")
        await asyncio.sleep(2.0)


async def settle(group: StreamGroup, index: OutputIndex, expected: Expected) -> tuple[StateCheck, OutputCheck]:
    """Wait until every expected output is read and the table equals the replay; both checks."""
    try:
        await wait_outputs(index, expected)
    except AssertionError as exc:
        healths = [await w.health() for w in group.workers]
        missing = index.missing(expected)
        customers = {m.split(":", 1)[1] if m.startswith("snapshot:") else expected.outputs[m].get("customer_id")
                     for m in missing[:3]}
        table = await table_states(group.settings, {str(c) for c in customers})
        states = {c: _state_story(table.get(str(c)), expected.states.get(str(c))) for c in customers}
        for c in customers:  # what each worker holds in memory for them (the owner answers from its table)
            for w in group.workers:
                with contextlib.suppress(Exception):
                    _, doc = await http_json("GET", f"{w.web_url}/customers/{c}", limit=3)
                    if isinstance(doc, dict):
                        keys = ("served_by", "frequency", "recency_days", "next_review_at", "tier")
                        states[c][f"{w.name} serves"] = {k: doc.get(k) for k in keys}
        mixed = {c: [(r.partition, r.offset, r.get("event_id"), r.get("occurred_at"))
                     for r in group.outputs.of(group.topics.events, str(c))] for c in customers}
        raise AssertionError(f"{exc}\nworkers' /health: {healths}\ntheir states (table, replay): {states}\n"
                             f"their records on the mixed events topic (partition, offset, id, time): {mixed}\n"
                             f"the workers' latest warnings: {_warnings(group)}\n"
                             f"fetches the output reader read again: {group.outputs.rereads}") from None
    states = await wait_states(group.settings, expected)
    return states, check_outputs(index, expected)


def assert_nothing_lost(states: StateCheck, check: OutputCheck, expected: Expected, index: OutputIndex) -> None:
    """Every event in the states once, every expected output present (each customer's latest snapshot
    included), repeats only exact, no dead letter."""
    assert states.applied == expected.applied, (
        f"{states.applied} events recorded in the states, {expected.applied} distinct events produced")
    assert not states.missing and not states.differing, (states.missing[:5], states.differing[:5])
    assert not index.dlq, [r.value["reason"] for r in index.dlq[:3]]
    assert not check.missing and not check.unexpected and not check.differing, check.problems()


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
    """One row of the faults report, written once the test is over with its result (pass/fail): see
    `write_reports`, called by the plugin's `pytest_runtest_makereport`. Returns the row."""
    row = {"at": datetime.now(UTC).isoformat(timespec="seconds"), "test": test, "fault": fault,
           "faults_injected": faults_injected, "events_produced": events_produced, "scored": scored,
           "dead_lettered": dead_lettered, "outputs_expected": outputs_expected, "outputs_found": outputs_found,
           "duplicates": duplicates, "recovery_s": None if recovery_s is None else round(recovery_s, 2), **extra}
    _PENDING.append(row)
    return row


_PENDING: list[dict[str, Any]] = []


def write_reports(result: str) -> None:
    """Append the rows the test reported to the faults report (JSON lines), with its result."""
    if not _PENDING:
        return
    path = report_path()
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("a") as handle:
        for row in _PENDING:
            handle.write(json.dumps({"result": result, **row}) + "\n")
    _PENDING.clear()
