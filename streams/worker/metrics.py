"""Worker metrics: what the agent observes, and the Prometheus view of a worker.

The agent's per-message cost is a few integer operations: observations go into
plain counters and a fixed-bucket histogram (no locks: the agent, the timers and
the web server share one event loop). Everything else - the handler's counters,
Redis write stats, consumer lag, table size - is read when /metrics is scraped,
by collectors on the worker's own `CollectorRegistry` (never the global one).
"""

from __future__ import annotations

import time
from bisect import bisect_left
from collections import deque
from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Protocol

from prometheus_client import CollectorRegistry, ProcessCollector, generate_latest
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, HistogramMetricFamily, Metric
from prometheus_client.registry import Collector

from scoring.decisions import Alert, TierChange

if TYPE_CHECKING:
    from streams.serving.redis_view import RedisView
    from streams.settings import Settings
    from streams.worker.handler import Counters, Outgoing


class ScrapedStatus(Protocol):
    """What /metrics reads of a worker at scrape time (`streams.worker.status.WorkerStatus` has it all)."""

    @property
    def settings(self) -> Settings: ...
    @property
    def counters(self) -> Counters: ...
    @property
    def redis(self) -> RedisView: ...
    @property
    def lag(self) -> Callable[[], dict[tuple[str, int], int]]: ...
    @property
    def partitions(self) -> Callable[[], list[int]]: ...
    @property
    def table_customers(self) -> Callable[[], int]: ...
    @property
    def deadlines(self) -> Callable[[], int]: ...
    @property
    def unwritten(self) -> Callable[[], int]: ...
    @property
    def calibration_version(self) -> Callable[[], str | None]: ...


# Seconds; one message is ~0.1-1 ms when healthy, seconds when Redis or the broker stall.
LATENCY_BUCKETS = (0.0002, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 10.0)
FEED_SIZE = 200  # recent tier changes and alerts kept for the dashboard's live feed
AT_RISK_CANDIDATES = 1000  # at-risk alerts remembered (highest value kept) when Redis has no at_risk index
HISTORY_SIZE = 360  # heartbeat intervals kept for the dashboard's charts (30 minutes at the default 5 s)


class LatencyHistogram:
    """Fixed buckets (upper bounds in seconds, inclusive) and the sum of observations."""

    __slots__ = ("bounds", "counts", "total")

    def __init__(self, bounds: tuple[float, ...] = LATENCY_BUCKETS) -> None:
        self.bounds = bounds
        self.counts = [0] * (len(bounds) + 1)  # the last one is +Inf
        self.total = 0.0

    def observe(self, seconds: float) -> None:
        self.counts[bisect_left(self.bounds, seconds)] += 1
        self.total += seconds

    def cumulative(self) -> list[tuple[str, float]]:
        """Prometheus buckets: (le, observations <= le), ending with +Inf."""
        running, out = 0, []
        for bound, count in zip([*map(str, self.bounds), "+Inf"], self.counts, strict=True):
            running += count
            out.append((bound, float(running)))
        return out


@dataclass(frozen=True, slots=True)
class FeedItem:
    """One output for the live feed: `kind` is tier_change or alert; `value` the message JSON."""

    seq: int
    kind: str
    value: bytes
    at: float  # epoch seconds when the worker sent it


class OutputFeed:
    """Recent TierChanged and CustomerAlert outputs of this worker, and the last hour's transitions."""

    def __init__(self, size: int = FEED_SIZE) -> None:
        self.items: deque[FeedItem] = deque(maxlen=size)
        self.seq = 0
        self._minutes: deque[tuple[int, dict[tuple[str, str], int]]] = deque(maxlen=61)
        self.at_risk: dict[str, float] = {}  # customer -> value at stake of its latest at-risk alert

    def observe(self, out: Outgoing) -> None:
        """Keep `out` if it is a tier change or an alert (anything else costs one check)."""
        decision = out.decision
        if not isinstance(decision, (TierChange, Alert)):
            return
        now = time.time()
        self.seq += 1
        self.items.append(FeedItem(self.seq, decision.kind, out.value or b"", now))
        if isinstance(decision, TierChange):
            self._count(decision.from_tier or "none", decision.to_tier, now)
        elif decision.alert_kind == "at_risk" and out.key is not None:
            self._remember_at_risk(out.key, decision.value_at_stake)

    def after(self, seq: int) -> list[FeedItem]:
        """Items with a sequence number above `seq`, oldest first."""
        if not self.items or self.items[-1].seq <= seq:
            return []
        return [item for item in self.items if item.seq > seq]

    def transitions(self, window_seconds: float = 3600.0, now: float | None = None) -> dict[tuple[str, str], int]:
        """(from tier or "none", to tier) -> tier changes sent in the last `window_seconds` (minute grain)."""
        first = int(((now if now is not None else time.time()) - window_seconds) // 60)
        total: dict[tuple[str, str], int] = {}
        for minute, counts in self._minutes:
            if minute > first:
                for pair, n in counts.items():
                    total[pair] = total.get(pair, 0) + n
        return total

    def _count(self, from_tier: str, to_tier: str, now: float) -> None:
        minute = int(now // 60)
        if not self._minutes or self._minutes[-1][0] != minute:
            self._minutes.append((minute, {}))
        counts = self._minutes[-1][1]
        counts[from_tier, to_tier] = counts.get((from_tier, to_tier), 0) + 1

    def _remember_at_risk(self, customer: str, value: float) -> None:
        self.at_risk.pop(customer, None)
        self.at_risk[customer] = value
        if len(self.at_risk) > AT_RISK_CANDIDATES:  # drop the least valuable half at once: amortised O(1)
            keep = sorted(self.at_risk.items(), key=lambda kv: kv[1], reverse=True)[: AT_RISK_CANDIDATES // 2]
            self.at_risk = dict(keep)


@dataclass(frozen=True, slots=True)
class Totals:
    """Running totals of a worker's outputs since it started (what the charts show per interval)."""

    tier_changes: int = 0
    alerts: int = 0
    dead_lettered: int = 0


@dataclass(frozen=True, slots=True)
class Sample:
    """One heartbeat interval: rates and levels at its end, and what happened during it."""

    at: float  # epoch seconds at the end of the interval
    seconds: float  # length of the interval
    events_per_second: float
    lag: int  # records not yet committed, all partitions
    tiers: dict[str, int] | None  # customers per tier in the serving view; None when Redis did not answer
    happened: Totals  # tier changes, alerts and dead letters during the interval

    def document(self) -> dict[str, Any]:
        return {"at": round(self.at, 3), "seconds": round(self.seconds, 3),
                "events_per_second": self.events_per_second, "lag": self.lag, "tiers": self.tiers,
                "tier_changes": self.happened.tier_changes, "alerts": self.happened.alerts,
                "dead_lettered": self.happened.dead_lettered}


class History:
    """The last `size` heartbeat intervals of one worker, oldest first (the dashboard's charts)."""

    def __init__(self, size: int = HISTORY_SIZE) -> None:
        self.samples: deque[Sample] = deque(maxlen=size)
        self._totals = Totals()

    def record(self, at: float, seconds: float, events_per_second: float, lag: int,
               tiers: dict[str, int] | None, totals: Totals) -> Sample:
        """Add the interval ending at `at`; `totals` are running totals, turned into the interval's counts."""
        last = self._totals
        happened = Totals(max(0, totals.tier_changes - last.tier_changes), max(0, totals.alerts - last.alerts),
                          max(0, totals.dead_lettered - last.dead_lettered))
        self._totals = totals
        sample = Sample(at, seconds, events_per_second, lag, tiers, happened)
        self.samples.append(sample)
        return sample

    def documents(self) -> list[dict[str, Any]]:
        return [sample.document() for sample in self.samples]


class WorkerMetrics:
    """Receives what the agent observes; exported on /metrics and the monitoring topic."""

    def __init__(self) -> None:
        self.handled = 0  # input records handled since start
        self.batches = 0
        self.latency: dict[str, LatencyHistogram] = {}
        self.sweeps: dict[int, int] = {}
        self.due: dict[int, int] = {}
        self.feed = OutputFeed()
        self.history = History()
        self.tiers: dict[str, int] | None = None  # customers per tier at the last heartbeat (serving view)
        self.tier_revenue: dict[str, int] | None = None  # cents per tier at the last heartbeat (serving view)
        self.registry = CollectorRegistry(auto_describe=False)
        self.registry.register(_AgentCollector(self))

    def observe_batch(self, topic: str, records: int, seconds: float) -> None:
        """A batch of `records` from `topic` handled in `seconds` (decode to effects done)."""
        self.handled += records
        self.batches += 1
        histogram = self.latency.get(topic)
        if histogram is None:
            histogram = self.latency[topic] = LatencyHistogram()
        histogram.observe(seconds)

    def observe_sweep(self, partition: int, due: int) -> None:
        """A re-scoring sweep of `partition` found `due` customers due."""
        self.sweeps[partition] = self.sweeps.get(partition, 0) + 1
        self.due[partition] = self.due.get(partition, 0) + due

    def observe_output(self, out: Outgoing) -> None:
        """An output the worker is sending (tier changes and alerts feed the dashboard)."""
        self.feed.observe(out)

    def bind(self, status: ScrapedStatus) -> None:
        """Export the worker's state too (handler counters, Redis, lag, table) and process stats."""
        self.registry.register(StatusCollector(status))
        ProcessCollector(registry=self.registry)

    def exposition(self) -> bytes:
        """Everything in the Prometheus text format (version 0.0.4)."""
        return generate_latest(self.registry)


class _AgentCollector(Collector):
    def __init__(self, metrics: WorkerMetrics) -> None:
        self.metrics = metrics

    def collect(self) -> Iterable[Metric]:
        m = self.metrics
        latency = HistogramMetricFamily(
            "tierstream_batch_processing_seconds",
            "Seconds from taking a fetched batch of one input partition to its effects done.", labels=["topic"])
        for topic, h in sorted(m.latency.items()):
            latency.add_metric([topic], h.cumulative(), h.total)
        yield latency
        yield _counter("tierstream_records_handled", "Input records handled.", [], {(): m.handled})
        yield _counter("tierstream_review_sweeps", "Re-scoring sweeps run.", ["partition"],
                       {(str(p),): n for p, n in m.sweeps.items()})
        yield _counter("tierstream_review_due", "Customers found due by re-scoring sweeps.", ["partition"],
                       {(str(p),): n for p, n in m.due.items()})
        yield _gauge("tierstream_tier_customers", "Customers per tier in the Redis serving view (all workers), "
                     "as of this worker's last heartbeat.", ["tier"],
                     {(tier,): n for tier, n in (m.tiers or {}).items()})
        yield _gauge("tierstream_tier_revenue", "Revenue per tier (its customers' net spend in the window, 365 days "
                     "by default: the last 12 months) in the Redis serving view, base currency, as of this "
                     "worker's last heartbeat; with tierstream_tier_customers it gives each tier's lift.", ["tier"],
                     {(tier,): cents / 100 for tier, cents in (m.tier_revenue or {}).items()})


class StatusCollector(Collector):
    """Reads the worker's status at scrape time: no cost per event."""

    def __init__(self, status: ScrapedStatus) -> None:
        self.status = status

    def collect(self) -> Iterable[Metric]:
        yield from self._handler()
        yield from self._redis()
        yield from self._worker()

    def _handler(self) -> Iterator[Metric]:
        c, topics = self.status.counters, self.status.settings.topics
        types = {name: kind for kind, name in topics.inputs().items()} | {topics.events: "mixed"}
        yield _counter("tierstream_events", "Input events taken, by topic and event type (mixed: any type).",
                       ["topic", "type"], {(t, types.get(t, "other")): n for t, n in c.by_topic.items()})
        yield _counter("tierstream_event_outcomes", "What became of input events and review re-scores.",
                       ["outcome"], {("scored",): c.scored, ("duplicate",): c.duplicates,
                                     ("forwarded",): c.forwarded, ("reviewed",): c.reviewed})
        yield _counter("tierstream_dead_lettered", "Inputs sent to the dead-letter topic.", [], {(): c.dead_lettered})
        yield _counter("tierstream_tier_changes", "Tier changes by from (none: first assignment) and to tier.",
                       ["from_tier", "to_tier"], c.tier_changes)
        yield _counter("tierstream_actions", "Contact-plan actions by type and ROI decision.",
                       ["action_type", "roi_decision"], c.actions)
        yield _counter("tierstream_actions_capped", "Actions turned to skipped by a frequency cap.", [],
                       {(): c.capped})
        yield _counter("tierstream_alerts", "Customer alerts by kind.", ["kind"],
                       {(k,): n for k, n in c.alerts.items()})
        yield _counter("tierstream_customers_forgotten", "Customers forgotten, by reason (inactive, erasure).",
                       ["reason"], {(k,): n for k, n in c.forgotten.items()})
        yield _counter("tierstream_outputs", "Tier changes, actions and alerts sent.", [], {(): c.outputs})
        yield _counter("tierstream_score_snapshots", "Score snapshots sent (latest per customer per flush).", [],
                       {(): c.snapshots})
        yield _counter("tierstream_states_written", "Customer states written to the table (at flushes).", [],
                       {(): c.states_written})

    def _redis(self) -> Iterator[Metric]:
        s = self.status.redis.stats
        yield _counter("tierstream_redis_writes", "Customer profiles written to Redis.", [], {(): s.writes})
        yield _counter("tierstream_redis_write_errors", "Failed Redis pipeline writes.", [], {(): s.errors})
        yield _counter("tierstream_redis_write_retries", "Redis write retries after a failure.", [], {(): s.retries})
        yield _gauge("tierstream_redis_pending_writes", "Profiles waiting to be written to Redis.", [],
                     {(): s.pending})

    def _worker(self) -> Iterator[Metric]:
        status = self.status
        lag = status.lag()
        yield _gauge("tierstream_consumer_lag", "Records not yet committed (highwater - committed offset).",
                     ["topic", "partition"], {(t, str(p)): n for (t, p), n in lag.items()})
        yield _gauge("tierstream_active_partitions", "Partitions this worker owns.", [],
                     {(): len(status.partitions())})
        yield _gauge("tierstream_table_customers", "Customers in the table (with standbys when replicated).", [],
                     {(): status.table_customers()})
        yield _gauge("tierstream_customers_with_deadline", "Customers waiting for a time-driven re-score.", [],
                     {(): status.deadlines()})
        yield _gauge("tierstream_unwritten_customers", "Customers stepped since the last flush.", [],
                     {(): status.unwritten()})
        yield _gauge("tierstream_calibration", "1, labelled with the version of the calibration in force (none: "
                     "absolute tiering, or calibrated tiering before a calibration), as stamped on outputs.",
                     ["version"], {(status.calibration_version() or "none",): 1})


def _counter(name: str, doc: str, labels: list[str], values: Mapping[Any, int]) -> CounterMetricFamily:
    family = CounterMetricFamily(name, doc, labels=labels)
    for key, value in sorted(values.items()):
        family.add_metric(list(key), value)
    return family


def _gauge(name: str, doc: str, labels: list[str], values: Mapping[Any, float]) -> GaugeMetricFamily:
    family = GaugeMetricFamily(name, doc, labels=labels)
    for key, value in sorted(values.items()):
        family.add_metric(list(key), value)
    return family
