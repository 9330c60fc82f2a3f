"""Worker metrics: what the agent observes, and the Prometheus view of a worker.

The agent's per-message cost is a few integer operations: observations go into
plain counters and a fixed-bucket histogram (no locks: the agent, the timers and
the web server share one event loop). Everything else - the pipeline's counters,
Redis write stats, consumer lag, table size - is read when /metrics is scraped,
by collectors on the worker's own `CollectorRegistry` (never the global one).
"""

from __future__ import annotations

import time
from bisect import bisect_left
from collections import deque
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from prometheus_client import CollectorRegistry, ProcessCollector, generate_latest
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, HistogramMetricFamily, Metric
from prometheus_client.registry import Collector

from scoring.decisions import Alert, TierChange

if TYPE_CHECKING:
    from streams.app import Tierstream
    from streams.pipeline import Outgoing

# Seconds; one message is ~0.1-1 ms when healthy, seconds when Redis or the broker stall.
LATENCY_BUCKETS = (0.0002, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 10.0)
FEED_SIZE = 200  # recent tier changes and alerts kept for the dashboard's live feed
AT_RISK_CANDIDATES = 1000  # at-risk alerts remembered (highest value kept) when Redis has no at_risk index
TABLE_SIZE_TTL = 30.0  # seconds a RocksDB table size is reused (counting keys there is a scan)


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
        self.items.append(FeedItem(self.seq, decision.kind, out.value, now))
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


class WorkerMetrics:
    """Receives what the agent observes; exported on /metrics and the monitoring topic."""

    def __init__(self) -> None:
        self.handled = 0  # messages handled since start (input events and review ticks)
        self.latency: dict[str, LatencyHistogram] = {}
        self.sweeps: dict[int, int] = {}
        self.due: dict[int, int] = {}
        self.feed = OutputFeed()
        self.registry = CollectorRegistry(auto_describe=False)
        self.registry.register(_AgentCollector(self))

    def observe_event(self, topic: str, seconds: float) -> None:
        """One message from `topic` handled in `seconds` (decode to effects done)."""
        self.handled += 1
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

    def bind(self, ts: Tierstream) -> None:
        """Export the worker's state too (pipeline counters, Redis, lag, table) and process stats."""
        self.registry.register(TierstreamCollector(ts))
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
            "tierstream_event_processing_seconds", "Seconds from taking a message to its effects done.",
            labels=["topic"])
        for topic, h in sorted(m.latency.items()):
            latency.add_metric([topic], h.cumulative(), h.total)
        yield latency
        yield _counter("tierstream_review_sweeps", "Re-scoring sweeps run.", ["partition"],
                       {(str(p),): n for p, n in m.sweeps.items()})
        yield _counter("tierstream_review_due", "Customers found due by re-scoring sweeps.", ["partition"],
                       {(str(p),): n for p, n in m.due.items()})


class TierstreamCollector(Collector):
    """Reads the worker's state at scrape time: no cost per event."""

    def __init__(self, ts: Tierstream) -> None:
        self.ts = ts
        self.sources = frozenset([*ts.settings.topics.inputs().values(), ts.settings.topics.events,
                                  ts.settings.topics.reviews])
        self._table_size: tuple[float, int] | None = None

    def collect(self) -> Iterable[Metric]:
        yield from self._pipeline()
        yield from self._redis()
        yield from self._worker()

    def _pipeline(self) -> Iterator[Metric]:
        c, topics = self.ts.pipeline.counters, self.ts.settings.topics
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
        yield _counter("tierstream_outputs", "Output messages made (tier changes, actions, alerts, scores).", [],
                       {(): c.outputs})

    def _redis(self) -> Iterator[Metric]:
        s = self.ts.redis.stats
        yield _counter("tierstream_redis_writes", "Customer profiles written to Redis.", [], {(): s.writes})
        yield _counter("tierstream_redis_write_errors", "Failed Redis pipeline writes.", [], {(): s.errors})
        yield _counter("tierstream_redis_write_retries", "Redis write retries after a failure.", [], {(): s.retries})
        yield _gauge("tierstream_redis_pending_writes", "Profiles waiting to be written to Redis.", [],
                     {(): s.pending})

    def _worker(self) -> Iterator[Metric]:
        ts = self.ts
        lag = consumer_lag(ts, self.sources)
        yield _gauge("tierstream_consumer_lag", "Messages not yet committed (highwater - committed offset).",
                     ["topic", "partition"], {(t, str(p)): n for (t, p), n in lag.items()})
        yield _gauge("tierstream_active_partitions", "Partitions this worker owns.", [],
                     {(): len(ts.active_partitions())})
        yield _gauge("tierstream_table_customers", "Customers in the table (with standbys when replicated).", [],
                     {(): self._table_customers()})
        yield _gauge("tierstream_customers_with_deadline", "Customers waiting for a time-driven re-score.", [],
                     {(): ts.deadlines.size()})

    def _table_customers(self) -> int:
        if self.ts.settings.store == "memory":
            return len(self.ts.table.data)
        now = time.monotonic()
        if self._table_size is None or now - self._table_size[0] > TABLE_SIZE_TTL:
            self._table_size = (now, len(self.ts.table.data))
        return self._table_size[1]


def consumer_lag(ts: Tierstream, topics: Iterable[str]) -> dict[tuple[str, int], int]:
    """(topic, partition) -> messages not yet committed, for the worker's assigned `topics`.

    Lag is highwater minus the committed offset, as Kafka tools count it (before the first
    commit: minus the next offset Faust reads). The highwater is the one the broker gave in
    the latest fetch response (kept by aiokafka), not a ListOffsets request: no extra round
    trip, and right on brokers whose ListOffsets answer is off for multi-record batches. A
    partition is absent until it has been fetched once; all are absent during a rebalance.
    """
    wanted = set(topics)
    consumer: Any = getattr(ts.app, "_consumer", None)  # the property would create one
    if consumer is None:
        return {}
    try:
        assigned = [tp for tp in consumer.assignment() if tp.topic in wanted]
    except Exception:  # not started, or stopping: no lag to report
        return {}
    lag: dict[tuple[str, int], int] = {}
    for tp in assigned:
        try:
            highwater = consumer.highwater(tp)
        except (AssertionError, KeyError):  # revoked between the two calls
            continue
        position = _committed(consumer, tp)
        if highwater is not None and position is not None:
            lag[tp.topic, tp.partition] = max(0, int(highwater) - position)
    return lag


def _committed(consumer: Any, tp: Any) -> int | None:
    # Faust's bookkeeping: the next offset to commit; else the last offset read into the stream's buffer.
    committed = consumer._committed_offset.get(tp)
    if committed is not None:
        return int(committed)
    read = consumer._read_offset.get(tp)
    return None if read is None else int(read) + 1


def _counter(name: str, doc: str, labels: list[str], values: Mapping[Any, int]) -> CounterMetricFamily:
    family = CounterMetricFamily(name, doc, labels=labels)
    for key, value in sorted(values.items()):
        family.add_metric(list(key), value)
    return family


def _gauge(name: str, doc: str, labels: list[str], values: Mapping[Any, int]) -> GaugeMetricFamily:
    family = GaugeMetricFamily(name, doc, labels=labels)
    for key, value in sorted(values.items()):
        family.add_metric(list(key), value)
    return family
