"""Helpers for the streaming integration tests: real workers, an upstream producer, an output reader.

- `StreamGroup`: workers (`tierstream worker` subprocesses) sharing one YAML config,
  with unique topic names, app id and Redis prefix; started by the `start_stream`
  fixture of `conftest.py`.
- `Upstream`: a plain aiokafka producer, as an upstream system would use it: JSON bytes,
  key = customer id bytes, aiokafka's default (murmur2) partitioner.
- `OutputReader`: a plain aiokafka consumer reading the output topics from the
  beginning (as marketing automation would) until a predicate holds.
- Event builders (`purchase`, `refund`, `complaint`, `enquiry`), HTTP helpers.

Nothing here sleeps for a fixed time to "let things happen": every wait polls a
condition and the timeout is only a limit.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import json
import os
import signal
import subprocess
import sys
import time
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable, Iterable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any

import aiohttp
import yaml
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, TopicPartition
from aiokafka.structs import RecordMetadata

from streams.kafka import ensure_topics
from streams.local.embedded import free_port
from streams.local.process import ChildProcess
from streams.partitioning import canonical_partition
from streams.settings import Settings, TopicNames, load_settings

ROOT = Path(__file__).resolve().parents[2]
TIERSTREAM = Path(sys.executable).parent / "tierstream"  # the console script of the running interpreter
PARTITIONS = 4
ALL_PARTITIONS = list(range(PARTITIONS))
READY_TIMEOUT = 45.0
WAIT = 30.0  # default limit for output waits

# Workers started by this process and not yet stopped (for log tails on failure and cleanup).
RUNNING: list[Worker] = []


# ----------------------------------------------------------------------------- ids, events
# Every builder tags the event with its `type`, so it may go to its own topic or to the mixed
# `customer-events` topic. Events of one customer on different typed topics may be scored in
# any order (Kafka orders a partition, not a set of topics): sequences whose outcome depends
# on the order go to the mixed topic, as a backfill would.
DEFAULT_FORGET_DAYS = 400  # the shared default worker's retention.forget_after_days


def uid(prefix: str) -> str:
    """A customer or event id unique to this run."""
    return f"{prefix}-{uuid.uuid4().hex[:10]}"


def iso(moment: datetime) -> str:
    return moment.astimezone(UTC).isoformat()


def purchase(customer: str, amount: float | str, at: datetime, event_id: str | None = None,
             **extra: Any) -> dict[str, Any]:
    return {"type": "purchase", "event_id": event_id or uid("p"), "customer_id": customer, "occurred_at": iso(at),
            "amount": str(Decimal(str(amount))), "currency": "USD", "order_id": uid("o"), **extra}


def refund(customer: str, amount: float | str, at: datetime, event_id: str | None = None,
           **extra: Any) -> dict[str, Any]:
    return {"type": "return", "event_id": event_id or uid("r"), "customer_id": customer, "occurred_at": iso(at),
            "amount": str(Decimal(str(amount))), "currency": "USD", "order_id": uid("o"), "reason": "damaged",
            **extra}


def complaint(customer: str, severity: int, at: datetime, event_id: str | None = None,
              **extra: Any) -> dict[str, Any]:
    return {"type": "complaint", "event_id": event_id or uid("c"), "customer_id": customer, "occurred_at": iso(at),
            "severity": severity, "category": "delivery", **extra}


def enquiry(customer: str, at: datetime, event_id: str | None = None, **extra: Any) -> dict[str, Any]:
    return {"type": "enquiry", "event_id": event_id or uid("e"), "customer_id": customer, "occurred_at": iso(at),
            "topic": "stock", **extra}


def customer_on(partition: int, prefix: str, partitions: int = PARTITIONS) -> str:
    """A fresh customer id whose canonical partition is `partition`."""
    while True:
        candidate = uid(prefix)
        if canonical_partition(candidate, partitions) == partition:
            return candidate


# ----------------------------------------------------------------------------- HTTP
async def http_json(method: str, url: str, body: Any = None, headers: dict[str, str] | None = None,
                    limit: float = 10.0) -> tuple[int, Any]:
    """(status, decoded JSON body) of one request (`limit`: seconds)."""
    async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=limit)) as http, \
            http.request(method, url, json=body, headers=headers) as response:
        text = await response.text()
        try:
            return response.status, json.loads(text)
        except ValueError:
            return response.status, text


async def eventually(probe: Callable[[], Awaitable[Any]], what: str, within: float = WAIT,
                     interval: float = 0.1) -> Any:
    """Poll `probe` until it returns a truthy value; fail naming `what` (and the last value) after `within` s."""
    deadline = time.monotonic() + within
    last: Any = None
    while True:
        last = await probe()
        if last:
            return last
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {within:.0f}s waiting for {what}; last: {last!r}")
        await asyncio.sleep(interval)


async def run_cli(*args: str, cwd: Path | None = None, limit: float = 120.0) -> subprocess.CompletedProcess[str]:
    """Run `tierstream ARGS` (in a thread, so the event loop and the output reader keep going).

    REDIS_URL and KAFKA_BOOTSTRAP are dropped from the environment: the config file decides.
    """
    env = {k: v for k, v in os.environ.items() if k not in ("REDIS_URL", "KAFKA_BOOTSTRAP")}
    return await asyncio.to_thread(subprocess.run, [str(TIERSTREAM), *args], capture_output=True, text=True,
                                   timeout=limit, env=env, cwd=cwd, check=False)


# ----------------------------------------------------------------------------- workers
@dataclass(eq=False, kw_only=True)
class Worker(ChildProcess):
    """One `tierstream worker` subprocess."""

    log_path: Path
    web_port: int

    @property
    def web_url(self) -> str:
        return f"http://127.0.0.1:{self.web_port}"

    def log_tail(self, size: int = 6000) -> str:
        return super().log_tail(size)

    def stop(self, grace: float = 15.0, sig: int = signal.SIGTERM) -> int | None:
        """SIGTERM by pid, wait up to `grace` s, then SIGKILL; the exit code."""
        code = super().stop(grace, sig)
        _forget(self)
        return code

    def kill(self, wait: float = 15.0) -> int | None:
        """SIGKILL by pid (a crash) and reap."""
        code = super().kill(wait)
        _forget(self)
        return code

    async def health(self) -> dict[str, Any] | None:
        """GET /health, or None while the web server is not up."""
        try:
            status, body = await http_json("GET", f"{self.web_url}/health", limit=3)
        except (aiohttp.ClientError, TimeoutError, OSError):
            return None
        return body if status == 200 and isinstance(body, dict) else None


def _forget(worker: Worker) -> None:
    with contextlib.suppress(ValueError):
        RUNNING.remove(worker)


def spawn_worker(config_path: Path, web_port: int, log_path: Path, name: str) -> Worker:
    """Start `tierstream worker --config F --web-port P`, output to `log_path`."""
    argv = [str(TIERSTREAM), "worker", "--config", str(config_path), "--web-port", str(web_port)]
    env = {k: v for k, v in os.environ.items() if not k.startswith("TIERSTREAM_")}
    env.pop("KAFKA_BOOTSTRAP", None)
    env.pop("REDIS_URL", None)  # the YAML decides; the environment would override it
    env["PYTHONDONTWRITEBYTECODE"] = "1"
    worker = Worker.start(name, argv, log_path, cwd=config_path.parent, env=env, web_port=web_port)
    RUNNING.append(worker)
    return worker


def topic_names(tag: str) -> dict[str, str]:
    """Every topic of a worker group, unique to this run."""
    suffix = uuid.uuid4().hex[:8]
    return {name: f"{name.replace('_', '-')}-{tag}-{suffix}" for name in TopicNames.model_fields}


def write_config(path: Path, doc: dict[str, Any]) -> Settings:
    """Write the YAML config and load it exactly as the worker will."""
    path.write_text(yaml.safe_dump(doc, sort_keys=False))
    return load_settings(path)


@dataclass
class StreamGroup:
    """Workers sharing one config (one consumer group, one table, one Redis prefix)."""

    name: str
    settings: Settings
    config_path: Path
    workdir: Path
    workers: list[Worker] = field(default_factory=list)
    outputs: OutputReader = field(init=False, repr=False)  # set by the `start_stream` fixture

    @property
    def topics(self) -> TopicNames:
        return self.settings.topics

    @property
    def worker(self) -> Worker:
        """The first worker (most groups have one)."""
        return self.workers[0]

    def topic_of(self, event: dict[str, Any]) -> str:
        """The typed input topic of an event."""
        return self.topics.inputs()[event["type"]]

    @property
    def prefix(self) -> str:
        return self.settings.redis_prefix

    def output_topics(self) -> list[str]:
        t = self.topics
        return [t.tier_changes, t.actions, t.alerts, t.scores, t.dlq, t.events]

    def stop(self) -> None:
        """SIGTERM every worker first (they shut down in parallel), then wait for each."""
        for worker in self.workers:
            if worker.alive():
                worker.send(signal.SIGTERM)
        for worker in self.workers:
            worker.stop()

    async def wait_ready(self, within: float = READY_TIMEOUT) -> list[dict[str, Any]]:
        """Until every worker owns a non-empty partition set, disjoint, covering all partitions."""
        deadline = time.monotonic() + within
        healths: list[dict[str, Any] | None] = []
        while time.monotonic() < deadline:
            for w in self.workers:
                w.check_alive()
            healths = [await w.health() for w in self.workers]
            if all(h is not None for h in healths):
                owned = [sorted(h["partitions"]) for h in healths if h is not None]
                flat = [p for ps in owned for p in ps]
                if all(owned) and sorted(flat) == list(range(self.settings.partitions)):
                    return [h for h in healths if h is not None]
            await asyncio.sleep(0.1)
        logs = "\n".join(f"--- {w.name}\n{w.log_tail()}" for w in self.workers)
        raise AssertionError(f"workers of {self.name} not ready after {within}s: {healths}\n{logs}")

    def owner_of(self, customer: str, healths: list[dict[str, Any]]) -> int:
        """Index of the worker owning `customer`'s canonical partition, given their /health documents."""
        partition = canonical_partition(customer, self.settings.partitions)
        return next(i for i, h in enumerate(healths) if partition in h["partitions"])

    async def clock_now(self, worker: Worker | None = None) -> datetime:
        """The worker's (shifted) wall clock, via POST /clock {"advance_days": 0} (needs clock_control)."""
        return await self.advance_clock(0, worker)

    async def advance_clock(self, days: float, worker: Worker | None = None) -> datetime:
        status, body = await http_json("POST", f"{(worker or self.worker).web_url}/clock", {"advance_days": days})
        assert status == 200, body
        return datetime.fromisoformat(body["now"])


# ----------------------------------------------------------------------------- producing
class Upstream:
    """A plain producer of input events, as an upstream system would send them."""

    def __init__(self, bootstrap: str) -> None:
        self.bootstrap = bootstrap
        self.producer = AIOKafkaProducer(bootstrap_servers=bootstrap, linger_ms=2, acks="all")

    async def start(self) -> None:
        await self.producer.start()

    async def stop(self) -> None:
        await self.producer.stop()

    async def send(self, topic: str, value: dict[str, Any] | bytes | None, *, key: str | bytes | None = "",
                   partition: int | None = None) -> RecordMetadata:
        """Send one record and wait for the broker's ack.

        `key=""` (the default) means the event's own customer id; `key=None` sends no key.
        """
        if key == "" and isinstance(value, dict):
            key = str(value["customer_id"])
        key_bytes = key.encode() if isinstance(key, str) and key else (key if isinstance(key, bytes) else None)
        raw = json.dumps(value).encode() if isinstance(value, dict) else value
        return await self.producer.send_and_wait(topic, raw, key=key_bytes, partition=partition)

    async def send_all(self, topic: str, values: Iterable[dict[str, Any]]) -> list[RecordMetadata]:
        """Send many keyed events in order (batched) and wait for every ack."""
        futures = [await self.producer.send(topic, json.dumps(v).encode(), key=str(v["customer_id"]).encode())
                   for v in values]
        return list(await asyncio.gather(*futures))


# ----------------------------------------------------------------------------- consuming
@dataclass(frozen=True)
class Out:
    """One record read from an output topic."""

    topic: str
    partition: int
    offset: int
    key: str | None
    raw: bytes
    value: dict[str, Any]

    def __getitem__(self, name: str) -> Any:
        return self.value[name]

    def get(self, name: str, default: Any = None) -> Any:
        return self.value.get(name, default)


class OutputReader:
    """Reads output topics from the beginning, in the background, without a consumer group.

    `unread`: topics (TopicNames field names) not to read, e.g. a dead-letter topic a test floods."""

    def __init__(self, bootstrap: str, topics: TopicNames, partitions: int = PARTITIONS,
                 unread: Iterable[str] = ()) -> None:
        self.topics, self.partitions = topics, partitions
        fields = ("tier_changes", "actions", "holdouts", "outcomes", "alerts", "scores", "dlq", "events")
        self.names = [getattr(topics, name) for name in fields if name not in set(unread)]
        self.consumer = AIOKafkaConsumer(bootstrap_servers=bootstrap, enable_auto_commit=False,
                                         auto_offset_reset="earliest", group_id=None)
        self.records: list[Out] = []
        self._next: dict[TopicPartition, int] = {}  # next offset expected per partition
        self.rereads = 0  # fetches that skipped records and were read again
        self._changed = asyncio.Event()
        self._task: asyncio.Task[None] | None = None
        self._error: BaseException | None = None

    async def start(self) -> None:
        await self.consumer.start()
        tps = [TopicPartition(name, p) for name in self.names for p in range(self.partitions)]
        self.consumer.assign(tps)
        await self.consumer.seek_to_beginning(*tps)
        self._task = asyncio.create_task(self._run())

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
        await self.consumer.stop()

    def _refetch_stalled(self, progress: dict[TopicPartition, float], now: float) -> None:
        """A partition whose last fetch reported records beyond those read, with no progress for 2 s: the
        test broker's fetch can stop short of the highwater without a gap to show it; read it again."""
        for tp in self.consumer.assignment():
            highwater, next_offset = self.consumer.highwater(tp), self._next.get(tp, 0)
            if highwater is None or highwater <= next_offset:
                progress[tp] = now
            elif now - progress.setdefault(tp, now) > 2.0:
                self.consumer.seek(tp, next_offset)
                self.rereads += 1
                progress[tp] = now

    async def _run(self) -> None:
        progress: dict[TopicPartition, float] = {}
        checked = time.monotonic()
        try:
            while True:
                batch = await self.consumer.getmany(timeout_ms=100)
                if (now := time.monotonic()) - checked > 1.0:
                    self._refetch_stalled(progress, now)
                    checked = now
                for tp, recs in batch.items():
                    if recs:
                        progress[tp] = time.monotonic()
                    for r in recs:
                        if r.offset != self._next.get(tp, 0):
                            # the test broker's fetch sometimes skips records (the worker guards against it
                            # too): read from the first one not read yet
                            self.consumer.seek(tp, self._next.get(tp, 0))
                            self.rereads += 1
                            break
                        self._next[tp] = r.offset + 1
                        try:
                            value = json.loads(r.value) if r.value else {}
                        except ValueError:  # not ours (e.g. raw bytes on the mixed input topic)
                            value = {}
                        if not isinstance(value, dict):
                            value = {}
                        key = r.key.decode("utf-8", "replace") if r.key is not None else None
                        self.records.append(Out(tp.topic, tp.partition, r.offset, key, r.value or b"", value))
                if batch:
                    self._changed.set()
        except asyncio.CancelledError:
            raise
        except BaseException as exc:  # surface reader failures in wait_for
            self._error = exc
            self._changed.set()

    # -- queries
    def of(self, topic: str, customer: str | None = None, **match: Any) -> list[Out]:
        """Records of `topic` (optionally one customer's), whose values contain every `match` item."""
        return [r for r in self.records if r.topic == topic
                and (customer is None or r.value.get("customer_id") == customer)
                and all(r.value.get(k) == v for k, v in match.items())]

    def tiers(self, customer: str, **match: Any) -> list[Out]:
        """The customer's TierChanged records (PotentialChanged and CustomerForgotten share their topic)."""
        return [r for r in self.of(self.topics.tier_changes, customer, **match)
                if r.get("type") not in ("PotentialChanged", "CustomerForgotten")]

    def forgotten(self, customer: str, **match: Any) -> list[Out]:
        """The customer's CustomerForgotten records."""
        return self.of(self.topics.tier_changes, customer, type="CustomerForgotten", **match)

    def actions(self, customer: str, **match: Any) -> list[Out]:
        return self.of(self.topics.actions, customer, **match)

    def alerts(self, customer: str, **match: Any) -> list[Out]:
        return self.of(self.topics.alerts, customer, **match)

    def scores(self, customer: str, **match: Any) -> list[Out]:
        return self.of(self.topics.scores, customer, **match)

    def dlq(self, **match: Any) -> list[Out]:
        return self.of(self.topics.dlq, None, **match)

    def for_customer(self, customer: str) -> list[Out]:
        """Every output (not the events topic) about `customer`."""
        outs = {self.topics.tier_changes, self.topics.actions, self.topics.alerts, self.topics.scores}
        return [r for r in self.records if r.topic in outs and r.value.get("customer_id") == customer]

    async def wait_for(self, predicate: Callable[[], Any], what: str, within: float = WAIT) -> Any:
        """Until `predicate()` is truthy (re-checked as records arrive); its value. Fails after `within` s."""
        deadline = time.monotonic() + within
        while True:
            if self._error is not None:
                raise AssertionError(f"output reader failed: {self._error!r}")
            result = predicate()
            if result:
                return result
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                raise AssertionError(f"timed out after {within:.0f}s waiting for {what}; "
                                     f"{len(self.records)} records read")
            self._changed.clear()
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._changed.wait(), timeout=min(remaining, 0.5))

    async def wait_score(self, customer: str, cause: str, within: float = WAIT) -> Out:
        """The CustomerScore snapshot caused by `cause` (the event id)."""
        found = await self.wait_for(lambda: self.scores(customer, cause=cause),
                                    f"a score snapshot of {customer} caused by {cause}", within)
        return found[-1]  # type: ignore[no-any-return]


StartStream = Callable[..., contextlib.AbstractAsyncContextManager[StreamGroup]]
"""Type of the `start_stream` fixture: `async with start_stream(name, workers=1, **settings) as group`."""


def decode_b64(text: str | None) -> bytes | None:
    return None if text is None else base64.b64decode(text)


def days_ago(now: datetime, days: float) -> datetime:
    return now - timedelta(days=days)


def stream_config(name: str, bootstrap: str, redis_url: str, prefix: str, workdir: Path,
                  **settings: Any) -> dict[str, Any]:
    """The YAML document of a worker group: unique topics, app id, Redis prefix; fast test timings."""
    suffix = uuid.uuid4().hex[:8]
    doc: dict[str, Any] = {
        "app_id": f"ts-{name}-{suffix}", "kafka_bootstrap": bootstrap, "redis_url": redis_url,
        "redis_prefix": f"{prefix}{name}-{suffix}:", "partitions": PARTITIONS, "fast_join": True,
        "commit_interval_seconds": 0.5, "review_interval_seconds": 0.2, "redis_flush_seconds": 0.02,
        "flush_interval_seconds": 0.1,
        "log_level": "info", "data_dir": str(workdir / "data"), "topics": topic_names(name)}
    doc.update(settings)
    # The tests reason with the absolute thresholds (AAA >= 80, ...) unless they ask for calibrated tiering.
    doc["scoring"] = {"tiering": "absolute", **(doc.get("scoring") or {})}
    return doc


@contextlib.asynccontextmanager
async def run_group(name: str, doc: dict[str, Any], workdir: Path, bootstrap: str,
                    workers: int = 1, unread: Iterable[str] = (),
                    prepare: Callable[[Settings, Path], Awaitable[None]] | None = None) -> AsyncIterator[StreamGroup]:
    """Write the config, create every topic before anyone touches it, run `prepare(settings, config path)`
    (e.g. `tierstream bootstrap`) when given, start the workers and an OutputReader (not reading the `unread`
    topics), wait until they own all partitions; stop everything on exit."""
    config_path = workdir / "tierstream.yaml"
    loaded = write_config(config_path, doc)
    await ensure_topics(loaded)
    if prepare is not None:
        await prepare(loaded, config_path)
    group = StreamGroup(name, loaded, config_path, workdir)
    reader = OutputReader(bootstrap, loaded.topics, loaded.partitions, unread)
    try:
        for i in range(workers):
            wname = f"{name}-w{i + 1}"
            group.workers.append(spawn_worker(config_path, free_port(), workdir / f"{wname}.log", wname))
        await reader.start()
        group.outputs = reader
        await group.wait_ready()
        yield group
    finally:
        await reader.stop()
        group.stop()
