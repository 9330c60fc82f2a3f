"""`tierstream demo`: everything on one machine, with a live view of what the stream decides.

It starts (each on a free loopback port, each stopped later through its own pid):
a Tansu Kafka broker and a Redis (unless KAFKA_BOOTSTRAP / REDIS_URL or the config
point at running ones), a `tierstream worker` subprocess whose clock runs fast (a
simulated day every `day_seconds`), and an in-process generator producing synthetic
customers: first `history_days` of history at once, then live as simulated time
passes. A plain aiokafka consumer reads the output topics for the view.

The generator follows the worker's clock: it starts behind it (anchored at the
worker's readiness) and catches up from the outputs' `emitted_at`, which is the
worker's clock when it scored (`LiveClock.catch_up`), so live events arrive "now".
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import shlex
import shutil
import signal
import sys
import tempfile
import time
import urllib.request
from collections import Counter, deque
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any, TextIO

import yaml
from aiokafka import AIOKafkaConsumer, TopicPartition
from pydantic import SecretStr
from rich.console import Console, Group, RenderableType
from rich.live import Live
from rich.table import Table
from rich.text import Text

from scoring.calibration import Calibration
from scoring.errors import CalibrationError
from scoring.events import MS_PER_DAY, from_ms
from streams.calibrationfile import save_calibration
from streams.kafka import client_options
from streams.local.calibration import calibrate_history, history_of
from streams.local.embedded import (
    EmbeddedProcess,
    EmbeddedStartError,
    free_port,
    port_is_listening,
    start_redis,
    start_tansu,
)
from streams.local.generator import Draft, LiveClock, drafts, to_message
from streams.local.process import ChildProcess, ProcessError
from streams.local.publish import Publisher
from streams.settings import Settings

LOOPBACK = "127.0.0.1"
READY_TIMEOUT_S = 90.0
WORKER_STOP_TIMEOUT_S = 15.0
STATS_EVERY_S = 5.0
MAX_FUTURE_DRAFTS = 3_000_000  # caps the simulated future generated up front (memory)
CHILD_ENV_PREFIXES = ("TIERSTREAM_", "KAFKA_BOOTSTRAP", "REDIS_URL")


@dataclass(frozen=True)
class DemoOptions:
    customers: int = 1000
    seed: int = 7
    duration: float | None = None  # seconds of streaming after the worker is ready; None: until stopped
    live: bool = True
    day_seconds: float = 1.5  # real seconds per simulated day
    history_days: int = 120  # simulated history produced at once before going live
    partitions: int = 4  # with an embedded broker

    @property
    def speed(self) -> float:
        return 86_400 / self.day_seconds

    def drafts(self) -> list[Draft]:
        """The whole simulated period, days counted from its start: `history_days`, then the future."""
        run_s = self.duration if self.duration is not None else 3650 * self.day_seconds
        future_days = run_s / self.day_seconds + 60  # the clock catches up a few days at the start
        per_customer_day = 0.05  # about 1 event per customer per 20 days
        future_days = min(future_days, MAX_FUTURE_DRAFTS / (per_customer_day * self.customers))
        return list(drafts(self.seed, self.customers, self.history_days + max(1.0, future_days)))


class DemoError(Exception):
    """The demo could not start or a part of it died."""


# -- services -----------------------------------------------------------------------------------


@dataclass
class Services:
    """What the demo started; `stop()` stops all of it, by pid, worker first."""

    workdir: Path
    broker: EmbeddedProcess | None = None
    redis: EmbeddedProcess | None = None
    worker: ChildProcess | None = None
    web_port: int = 0
    links: list[tuple[str, str]] = field(default_factory=list)
    calibration: Calibration | None = None  # the one computed from the generated history and given to the worker

    def pids(self) -> dict[str, int]:
        found = {"broker": self.broker, "redis": self.redis}
        pids = {name: proc.pid for name, proc in found.items() if proc is not None}
        if self.worker is not None:
            pids["worker"] = self.worker.pid
        return pids

    def ports(self) -> dict[str, int]:
        ports = {"worker": self.web_port} if self.worker is not None else {}
        for name, proc in (("broker", self.broker), ("redis", self.redis)):
            if proc is not None:
                ports[name] = proc.port
        return ports

    def stop(self, keep_files: bool = False) -> None:
        if self.worker is not None:
            self.worker.stop(WORKER_STOP_TIMEOUT_S)  # before the broker: it hangs without one
        for proc in (self.redis, self.broker):
            if proc is not None:
                proc.stop()
        if not keep_files and not os.environ.get("TIERSTREAM_KEEP_SERVICE_LOGS"):
            shutil.rmtree(self.workdir, ignore_errors=True)


def wants_embedded_kafka(settings: Settings) -> bool:
    return "kafka_bootstrap" not in settings.model_fields_set


def wants_embedded_redis(settings: Settings) -> bool:
    return "redis_url" not in settings.model_fields_set


def worker_config(settings: Settings, overrides: dict[str, Any]) -> dict[str, Any]:
    """The worker's tierstream.yaml: what the user set (env or file, secrets included) plus the demo's knobs."""
    doc: dict[str, Any] = {}
    for name in sorted(settings.model_fields_set):
        value = getattr(settings, name)
        if isinstance(value, SecretStr):
            value = value.get_secret_value()
        elif hasattr(value, "model_dump"):
            value = value.model_dump(mode="json")
        elif isinstance(value, Path):
            value = str(value)
        doc[name] = value
    return doc | overrides


def start_services(settings: Settings, opts: DemoOptions, say: Callable[[str], None],
                   plan: list[Draft] | None = None) -> tuple[Services, Settings]:
    """Broker, Redis and worker, each on a free port; returns them and the settings the worker runs with.

    `plan`: the drafts the demo will send (`opts.drafts()`); the worker is calibrated from their history."""
    services = Services(Path(tempfile.mkdtemp(prefix="tierstream-demo-")))
    try:
        return services, _start(services, settings, opts, say, opts.drafts() if plan is None else plan)
    except (EmbeddedStartError, OSError) as exc:  # no redis-server, a port race, a broker that died
        services.stop()
        raise DemoError(" ".join(str(exc).split())[:500]) from None
    except BaseException:
        services.stop()
        raise


def _start(services: Services, settings: Settings, opts: DemoOptions, say: Callable[[str], None],
           plan: list[Draft]) -> Settings:
    bootstrap, redis_url = settings.kafka_bootstrap, settings.redis_url.get_secret_value()
    if wants_embedded_kafka(settings):
        services.broker = start_tansu()
        bootstrap = services.broker.bootstrap
        say(f"broker   {bootstrap} (embedded Tansu, pid {services.broker.pid})")
    else:
        say(f"broker   {bootstrap} (external)")
    if wants_embedded_redis(settings):
        services.redis = start_redis()
        redis_url = services.redis.url
        say(f"redis    {redis_url} (embedded, pid {services.redis.pid})")
    else:
        say("redis    external (REDIS_URL / config)")
    services.web_port = free_port()
    overrides = {
        "kafka_bootstrap": bootstrap, "redis_url": redis_url, "app_id": f"{settings.app_id}-demo",
        "redis_prefix": "tierstream-demo:", "fast_join": True, "clock": "wall", "clock_speed": opts.speed,
        "review_interval_seconds": 0.5, "web_host": LOOPBACK, "web_port": services.web_port, "store": "memory",
        "data_dir": str(services.workdir / "data"), "log_level": "warning",
        "partitions": opts.partitions if services.broker is not None else settings.partitions,
    } | calibration_override(services, settings, opts, plan, say)
    config = services.workdir / "tierstream.yaml"
    config.write_text(yaml.safe_dump(worker_config(settings, overrides), sort_keys=True))
    config.chmod(0o600)
    _spawn_worker(services, config)
    say(f"worker   pid {services.worker.pid if services.worker else '?'}, a simulated day every "
        f"{opts.day_seconds:g} s; waiting for it to join...")
    return Settings(**{k: v for k, v in worker_config(settings, overrides).items() if k != "scoring"},
                    scoring=settings.scoring)


def calibration_override(services: Services, settings: Settings, opts: DemoOptions, plan: list[Draft],
                         say: Callable[[str], None]) -> dict[str, Any]:
    """The worker's `calibration_path`: a calibration of the generated history (as `tierstream calibrate`
    would make of it), unless tiering is absolute or the user gave one."""
    if settings.scoring.tiering != "calibrated":
        say("tiers    absolute cut points (tiering: absolute)")
        return {}
    if "calibration_path" in settings.model_fields_set and settings.calibration_path is not None:
        path = settings.calibration_path.resolve()  # the worker runs in the demo's directory
        say(f"tiers    calibration {path} (yours)")
        return {"calibration_path": str(path)}
    end_ms = int(time.time() * 1000)  # the history ends about now, as the generator places it
    try:
        calibration = calibrate_history(history_of(plan, opts.history_days), opts.seed,
                                        end_ms - opts.history_days * MS_PER_DAY, end_ms // MS_PER_DAY,
                                        settings.scoring)
    except CalibrationError as exc:  # no history, or nobody bought in the window
        say(f"tiers    absolute cut points until the worker recalibrates: no calibration ({exc})")
        return {}
    path = services.workdir / "calibration.json"
    save_calibration(calibration, path)
    services.calibration = calibration
    say(f"tiers    calibration {calibration.version} from the generated history: {calibration.active:,} active "
        f"of {calibration.customers:,} customers as of {calibration.as_of} "
        f"({', '.join(f'{t} >= {s:g}' for t, s in calibration.thresholds.items())})")
    return {"calibration_path": str(path)}


def _spawn_worker(services: Services, config: Path) -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith(CHILD_ENV_PREFIXES)}
    argv = [sys.executable, "-c", "from streams.cli.main import main; main()", "worker", "--config", str(config)]
    services.worker = ChildProcess.start(
        "worker", argv, services.workdir / "worker.log", cwd=services.workdir, env=env,
        new_session=True,  # Ctrl-C in the terminal reaches the demo, which stops the worker in order
        die_with_parent=True)


def log_tail(worker: ChildProcess, lines: int = 15) -> str:
    return "\n".join(worker.log_tail(20_000).splitlines()[-lines:])


async def wait_ready(services: Services, stop: asyncio.Event) -> dict[str, Any]:
    """Poll the worker's /health until it owns partitions; raise DemoError if it dies or times out."""
    url = f"http://{LOOPBACK}:{services.web_port}/health"
    found: dict[str, Any] = {}

    async def ready() -> bool:
        with contextlib.suppress(ValueError):
            doc = await asyncio.to_thread(_get_json, url)
            if doc.get("partitions"):
                found.update(doc)
        return bool(found) or stop.is_set()

    worker = services.worker
    if worker is None:
        raise DemoError("the worker was not started")
    try:
        await worker.wait_until_async(ready, READY_TIMEOUT_S, poll=0.25)
    except ProcessError:
        code = worker.returncode
        problem = f"exited ({code})" if code is not None else f"was not ready after {READY_TIMEOUT_S:.0f} s"
        raise DemoError(f"the worker {problem}:\n{log_tail(worker)}") from None
    return found


def _get_json(url: str) -> dict[str, Any]:
    with urllib.request.urlopen(url, timeout=2) as response:
        doc = json.loads(response.read())
    return doc if isinstance(doc, dict) else {}


def _answers(url: str) -> bool:
    try:
        with urllib.request.urlopen(url, timeout=1) as response:
            return bool(response.status == 200)
    except (OSError, ValueError):
        return False


def find_links(services: Services) -> list[tuple[str, str]]:
    """Addresses to show. Hook: pages the worker may serve (metrics, dashboard) appear once they answer."""
    base = f"http://{LOOPBACK}:{services.web_port}"
    links = [("query API", f"{base}/customers/<id>  {base}/tiers  {base}/health")]
    for name, path in (("dashboard", "/dashboard"), ("metrics", "/metrics")):
        if _answers(base + path):
            links.append((name, base + path))
    return links


def try_lines(settings: Settings, web_url: str) -> list[str]:
    """Where the demo's Kafka is and commands to paste into another terminal while it runs."""
    cli, bootstrap, partitions = tierstream_command(), settings.kafka_bootstrap, settings.partitions
    lines = [f"kafka    {bootstrap}, {partitions} partitions (topics {settings.topics.events}, "
             f"{settings.topics.tier_changes}, ...)",
             "try, in another terminal while the demo runs:",
             f"  {cli} customer C000001 --url {web_url}",
             f"  {cli} generate --customers 50 --days 30 --end-now --seed 1 --out demo-events.jsonl",
             f"  {cli} backfill demo-events.jsonl --bootstrap {bootstrap} --partitions {partitions}"]
    subscriber = Path(__file__).resolve().parents[2] / "examples" / "subscriber.py"
    if subscriber.is_file():  # a checkout (the wheel has no examples)
        shown = os.path.relpath(subscriber)  # short from inside the checkout; absolute from anywhere else
        shown = str(subscriber) if shown.startswith("..") else shown
        lines.append(f"  {shlex.quote(sys.executable)} {shlex.quote(shown)} "
                     f"--bootstrap {bootstrap} --topic {settings.topics.tier_changes} --from-beginning")
    return lines


def tierstream_command() -> str:
    """`tierstream` when that is the one on PATH, else the full path of this interpreter's script."""
    script = Path(sys.executable).parent / "tierstream"
    on_path = shutil.which("tierstream")
    if not script.exists() or (on_path is not None and Path(on_path).resolve() == script.resolve()):
        return "tierstream"
    return shlex.quote(str(script))


# -- what the view shows ---------------------------------------------------------------------------


@dataclass
class DemoState:
    """Everything the view shows; fed by the generator and the output consumer."""

    tier_order: tuple[str, ...]
    started: float = field(default_factory=time.monotonic)
    sim_now_ms: int = 0
    produced: int = 0
    outputs: Counter[str] = field(default_factory=Counter)
    tiers: dict[str, str] = field(default_factory=dict)
    changes: deque[dict[str, Any]] = field(default_factory=lambda: deque(maxlen=8))
    actions: Counter[tuple[str, str]] = field(default_factory=Counter)
    recent_actions: deque[dict[str, Any]] = field(default_factory=lambda: deque(maxlen=6))
    alerts: deque[dict[str, Any]] = field(default_factory=lambda: deque(maxlen=8))
    alert_counts: Counter[str] = field(default_factory=Counter)
    interval: Counter[str] = field(default_factory=Counter)  # outputs since the last summary, by kind:detail
    examples: dict[str, str] = field(default_factory=dict)  # kind -> a line of the interval, for the summary
    _rate_samples: deque[tuple[float, int]] = field(default_factory=deque)

    def __post_init__(self) -> None:
        self._rate_samples.append((self.started, 0))

    def tier_counts(self) -> dict[str, int]:
        counts = Counter(self.tiers.values())
        return {tier: counts.get(tier, 0) for tier in self.tier_order}

    def events_per_s(self, now: float, window_s: float = 5.0) -> float:
        """Events produced per second over about the last `window_s` seconds."""
        samples = self._rate_samples
        samples.append((now, self.produced))
        while len(samples) > 2 and now - samples[1][0] >= window_s:
            samples.popleft()
        span = now - samples[0][0]
        return (self.produced - samples[0][1]) / span if span > 0 else 0.0


def on_output(state: DemoState, kind: str, doc: dict[str, Any]) -> str | None:
    """Record one output message; returns its one-line rendering (None for score snapshots)."""
    if kind == "tier_change" and doc.get("type") == "PotentialChanged":  # shares the tier-changes topic
        kind = "potential_change"
    state.outputs[kind] += 1
    line = _record(state, kind, doc)
    if line is not None:
        detail = doc.get("direction") if kind == "tier_change" else doc.get("kind") if kind == "alert" else ""
        state.interval[f"{kind}:{detail}"] += 1
        if not (kind == "tier_change" and detail == "new" and kind in state.examples):  # a move says more
            state.examples[kind] = line
    return line


def _record(state: DemoState, kind: str, doc: dict[str, Any]) -> str | None:
    who = doc.get("customer_id", "?")
    if kind == "potential_change":
        return (f"potential {who}  {doc.get('from_cell') or 'new'} -> {doc.get('to_cell')}  "
                f"potential {doc.get('potential')}: propose {doc.get('proposition')}")
    if kind == "tier_change":
        state.tiers[who] = doc.get("to_tier", "?")
        state.changes.appendleft(doc)
        why = f"  ({doc['cause_text']})" if doc.get("cause_text") else ""
        return f"tier     {who}  {doc.get('from_tier') or 'new'} -> {doc.get('to_tier')}  score {doc.get('score')}{why}"
    if kind == "alert":
        state.alerts.appendleft(doc)
        state.alert_counts[doc.get("kind", "?")] += 1
        return f"alert    {doc.get('kind')} {who} tier {doc.get('tier')}: {doc.get('reason')}"
    if kind == "action":
        state.actions[(doc.get("action_type", "?"), doc.get("roi_decision", "?"))] += 1
        state.recent_actions.appendleft(doc)
        return (f"action   {doc.get('action_type')} {who} via {doc.get('channel')} "
                f"({doc.get('roi_decision')}, {doc.get('priority')})")
    return None


def interval_summary(state: DemoState, seconds: float) -> list[str]:
    """What the outputs did since the last summary, with one example line per kind; resets the interval."""
    counts, examples = state.interval, state.examples

    def part(kind: str, label: str) -> str:
        found = {key.split(":", 1)[1]: n for key, n in counts.items() if key.startswith(kind + ":")}
        details = ", ".join(f"{detail} {n:,}" for detail, n in sorted(found.items()) if detail)
        return f"{label} {sum(found.values()):,}" + (f" ({details})" if details else "")

    lines = [f"last {seconds:.0f} s: {part('tier_change', 'tier changes')}, {part('alert', 'alerts')}, "
             f"{part('action', 'actions')}"]
    lines += [examples[kind] for kind in ("tier_change", "alert", "action") if kind in examples]
    state.interval, state.examples = Counter(), {}
    return lines


def stats_line(state: DemoState, now: float) -> str:
    tiers = "  ".join(f"{t} {n}" for t, n in state.tier_counts().items())
    day = from_ms(state.sim_now_ms).date().isoformat() if state.sim_now_ms else "-"
    return (f"stats    simulated {day}  events {state.produced:,} ({state.events_per_s(now):,.0f}/s)  "
            f"outputs {sum(state.outputs.values()):,}  tiers: {tiers}  "
            f"at-risk alerts {state.alert_counts.get('at_risk', 0)}")


def render(state: DemoState, links: list[tuple[str, str]], now: float) -> RenderableType:
    """The live view: header, tiers, recent changes, alerts, actions, addresses."""
    day = from_ms(state.sim_now_ms).strftime("%Y-%m-%d %H:%M") if state.sim_now_ms else "-"
    head = Text.assemble(("tierstream demo", "bold"), f"   simulated {day}   events {state.produced:,} "
                         f"({state.events_per_s(now):,.0f}/s)   outputs {sum(state.outputs.values()):,}   "
                         f"running {now - state.started:,.0f} s   Ctrl-C stops everything")
    top = Table.grid(padding=(0, 3))
    top.add_row(_tier_table(state), _changes_table(state))
    bottom = Table.grid(padding=(0, 3))
    bottom.add_row(_alerts_table(state), _actions_table(state))
    where = Table.grid(padding=(0, 2))
    for name, url in links:
        where.add_row(Text(name, style="dim"), url)
    return Group(head, top, bottom, where)


def _tier_table(state: DemoState) -> Table:
    table = Table("tier", "customers", "", title="tiers", title_justify="left")
    counts = state.tier_counts()
    total = max(1, sum(counts.values()))
    for tier, n in counts.items():
        table.add_row(tier, f"{n:,}", "#" * round(30 * n / total))
    return table


def _changes_table(state: DemoState) -> Table:
    table = Table("customer", "from", "to", "score", "why", title="recent tier changes", title_justify="left")
    for d in state.changes:
        table.add_row(d.get("customer_id"), d.get("from_tier") or "new", d.get("to_tier"), str(d.get("score")),
                      str(d.get("cause_text") or d.get("cause", ""))[:28])
    return table


def _alerts_table(state: DemoState) -> Table:
    title = f"at-risk alerts ({state.alert_counts.get('at_risk', 0)}), complaints from top tiers " \
            f"({state.alert_counts.get('top_tier_complaint', 0)})"
    table = Table("customer", "kind", "tier", "at stake", "reason", title=title, title_justify="left")
    for d in state.alerts:
        table.add_row(d.get("customer_id"), d.get("kind"), d.get("tier"), f"{d.get('value_at_stake', 0):,.0f}",
                      str(d.get("reason", ""))[:50])
    return table


def _actions_table(state: DemoState) -> Table:
    table = Table("action", "decision", "count", title="contact-plan actions", title_justify="left")
    for (action, decision), n in state.actions.most_common(8):
        table.add_row(action, decision, f"{n:,}")
    return table


# -- the running demo ------------------------------------------------------------------------------


class Demo:
    """The async part: generator, output consumer, view, and the stop signal."""

    def __init__(self, settings: Settings, services: Services, opts: DemoOptions, out: TextIO,
                 plan: list[Draft] | None = None) -> None:
        self.settings, self.services, self.opts, self.out = settings, services, opts, out
        self.plan = plan
        self.state = DemoState(settings.scoring.tier_names)
        self.stop = asyncio.Event()
        self.clock: LiveClock | None = None
        self.failure: str | None = None
        t = settings.topics
        self.kinds = {t.tier_changes: "tier_change", t.alerts: "alert", t.actions: "action", t.scores: "score"}

    def say(self, line: str) -> None:
        print(line, file=self.out, flush=True)

    async def run(self) -> None:
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGINT, signal.SIGTERM):
            loop.add_signal_handler(sig, self.stop.set)
        try:
            health = await wait_ready(self.services, self.stop)
            if self.stop.is_set():
                return
            self.say(f"worker   ready, calibration in force: {health.get('calibration_version') or 'none'}")
            self.services.links = await asyncio.to_thread(find_links, self.services)
            for name, url in self.services.links:
                self.say(f"{name}: {url}")
            for line in try_lines(self.settings, f"http://{LOOPBACK}:{self.services.web_port}"):
                self.say(line)
            await self._stream()
        finally:
            for sig in (signal.SIGINT, signal.SIGTERM):
                loop.remove_signal_handler(sig)

    async def _stream(self) -> None:
        ready = time.time()
        self.clock = LiveClock(int(ready * 1000), ready, self.opts.speed)  # behind the worker's: safe
        consumer = await self._consumer()
        publisher = Publisher(self.settings, "mixed")
        await publisher.start()
        tasks = [asyncio.create_task(c) for c in (self._produce(publisher), self._consume(consumer),
                                                  self._watch_worker(), self._show())]
        if self.opts.duration is not None:
            tasks.append(asyncio.create_task(self._stop_after(self.opts.duration)))
        try:
            await self.stop.wait()
        finally:
            for task in tasks:
                task.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)
            with contextlib.suppress(Exception):
                await asyncio.wait_for(publisher.stop(), 10)
            with contextlib.suppress(Exception):
                await asyncio.wait_for(consumer.stop(), 10)

    async def _stop_after(self, seconds: float) -> None:
        await asyncio.sleep(seconds)
        self.stop.set()

    async def _watch_worker(self) -> None:
        while True:
            worker = self.services.worker
            if worker is not None and not worker.alive():
                self.failure = f"the worker exited ({worker.returncode}):\n{log_tail(worker)}"
                self.stop.set()
                return
            await asyncio.sleep(0.5)

    # generator -----------------------------------------------------------------------
    def timeline(self) -> tuple[int, list[Draft]]:
        """Start (epoch ms) and drafts: `history_days` before the worker's now, then the simulated future."""
        assert self.clock is not None
        start_ms = self.clock.virtual_ms(time.time()) - self.opts.history_days * MS_PER_DAY
        return start_ms, self.plan if self.plan is not None else self.opts.drafts()

    async def _produce(self, publisher: Publisher) -> None:
        assert self.clock is not None
        start_ms, stream = await asyncio.to_thread(self.timeline)
        for draft in stream:
            at_ms = start_ms + draft.at_ms
            while (wait := self.clock.real_s(at_ms) - time.time()) > 0.005:
                await publisher.flush()
                await asyncio.sleep(min(wait, 0.2))  # the clock may jump forward meanwhile
            await publisher.send(to_message(draft, self.opts.seed, start_ms))
            self.state.produced += 1
            if self.state.produced % 200 == 0:
                await asyncio.sleep(0)  # let the consumer and the view run during the history burst
        await publisher.flush()
        self.say("generator: end of the simulated period")

    # outputs -------------------------------------------------------------------------
    async def _consumer(self) -> AIOKafkaConsumer:
        consumer = AIOKafkaConsumer(**client_options(self.settings), group_id=None, enable_auto_commit=False)
        await consumer.start()
        await consumer.topics()  # loads the metadata of every topic
        parts = [TopicPartition(topic, p) for topic in self.kinds
                 for p in sorted(consumer.partitions_for_topic(topic) or range(self.settings.partitions))]
        consumer.assign(parts)
        if self.services.broker is not None:
            await consumer.seek_to_beginning(*parts)  # our own fresh broker: everything is ours
        else:
            await consumer.seek_to_end(*parts)  # a shared Kafka: only what happens from now on
        for tp in parts:
            await consumer.position(tp)
        return consumer

    async def _consume(self, consumer: AIOKafkaConsumer) -> None:
        assert self.clock is not None
        while True:
            batches = await consumer.getmany(timeout_ms=200, max_records=2000)
            received = time.time()
            for tp, records in batches.items():
                kind = self.kinds[tp.topic]
                for record in records:
                    self._on_record(kind, record.value, received)

    def _on_record(self, kind: str, value: bytes | None, received: float) -> None:
        assert self.clock is not None
        try:
            doc = json.loads(value or b"")
            emitted = int(datetime.fromisoformat(doc["emitted_at"]).timestamp() * 1000)
        except (ValueError, KeyError, TypeError):
            return
        self.clock.catch_up(emitted, received)  # the worker's clock read at most `received`
        on_output(self.state, kind, doc)

    # view --------------------------------------------------------------------------------
    async def _show(self) -> None:
        assert self.clock is not None
        if not self.opts.live:  # a log: a summary every STATS_EVERY_S, not a line per output
            while True:
                await asyncio.sleep(STATS_EVERY_S)
                self.state.sim_now_ms = self.clock.virtual_ms(time.time())
                self.say(stats_line(self.state, time.monotonic()))
                for line in interval_summary(self.state, STATS_EVERY_S):
                    self.say("  " + line if line.startswith("last ") else line)
        console = Console(file=self.out)

        def frame() -> RenderableType:
            assert self.clock is not None
            self.state.sim_now_ms = self.clock.virtual_ms(time.time())
            return render(self.state, self.services.links, time.monotonic())

        with Live(console=console, get_renderable=frame, refresh_per_second=4, redirect_stderr=False):
            await asyncio.Event().wait()  # until cancelled


def run_demo(settings: Settings, opts: DemoOptions, out: TextIO = sys.stdout) -> int:
    """Start everything, stream until the duration ends or SIGINT/SIGTERM, stop everything. 0 or 1."""
    def say(line: str) -> None:
        print(line, file=out, flush=True)

    previous = signal.signal(signal.SIGTERM, _raise_interrupt)  # stop cleanly while starting, too
    services: Services | None = None
    failure: str | None = None
    try:
        plan = opts.drafts()
        services, worker_settings = start_services(settings, opts, say, plan)
        demo = Demo(worker_settings, services, opts, out, plan)
        asyncio.run(demo.run())
        failure = demo.failure
    except DemoError as exc:
        failure = str(exc)
    except KeyboardInterrupt:
        say("interrupted while starting")
    finally:
        if services is not None:
            say(f"stopping: {', '.join(reversed(list(services.pids())))}...")
            services.stop(keep_files=failure is not None)
            _report_stopped(services, say)
        signal.signal(signal.SIGTERM, previous)
    if failure:
        print(f"tierstream: demo failed: {failure}", file=sys.stderr)
        return 1
    return 0


def _raise_interrupt(signum: int, frame: object) -> None:
    raise KeyboardInterrupt


def _report_stopped(services: Services, say: Callable[[str], None]) -> None:
    pids = ", ".join(f"{name} {pid}" for name, pid in services.pids().items())
    busy = [f"{name} {port}" for name, port in services.ports().items() if port_is_listening(port)]
    if busy:
        say(f"stopped pids {pids}; still listening: {', '.join(busy)}")
    else:
        ports = ", ".join(f"{name} {port}" for name, port in services.ports().items())
        say(f"stopped pids {pids}; nothing listening on ports {ports}")
