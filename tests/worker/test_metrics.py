"""Worker metrics: the pieces on their own, then /metrics of a running worker.

Counters are totals since the worker started and the worker is shared by this
module, so every check against it compares a scrape after producing with one before.
"""

from __future__ import annotations

import time
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta

import aiohttp
import pytest
from prometheus_client.parser import text_string_to_metric_families

from scoring.decisions import Alert, ScoreChanged, TierChange
from streams.worker.handler import Outgoing
from streams.worker.metrics import History, LatencyHistogram, OutputFeed, Totals, WorkerMetrics
from tests.kits.stream import StartStream, StreamGroup, Upstream, eventually, purchase, uid

Samples = dict[tuple[str, frozenset[tuple[str, str]]], float]


def tier_change(customer: str, from_tier: str | None, to_tier: str) -> Outgoing:
    change = TierChange(id=uid("t"), cause="e", at_ms=0, from_tier=from_tier, to_tier=to_tier, direction="up",
                        score=70.0, previous_score=None, touch_channel="email", touch_cadence_days=30,
                        touch_owner="crm")
    return Outgoing("tier-changes", customer, b'{"kind":"tier"}', decision=change)


def at_risk(customer: str, value: float) -> Outgoing:
    alert = Alert(id=uid("a"), cause="e", at_ms=0, alert_kind="at_risk", tier="A", score=60.0, at_risk_score=0.7,
                  value_at_stake=value, reason="overdue")
    return Outgoing("alerts", customer, b'{"kind":"alert"}', decision=alert)


def test_histogram_buckets_are_upper_bounds_inclusive_and_cumulative() -> None:
    h = LatencyHistogram((0.001, 0.01))
    for seconds in (0.0005, 0.001, 0.002, 0.01, 3.0):
        h.observe(seconds)
    assert h.cumulative() == [("0.001", 2.0), ("0.01", 4.0), ("+Inf", 5.0)]
    assert h.total == pytest.approx(3.0135)


def test_feed_keeps_tier_changes_and_alerts_only_in_order() -> None:
    feed = OutputFeed(size=3)
    feed.observe(Outgoing("scores", "c1", b"{}", decision=ScoreChanged(id="s", cause="e", at_ms=0)))
    feed.observe(Outgoing("dlq", None, b"{}"))
    for i in range(4):
        feed.observe(tier_change(f"c{i}", None, "A"))
    feed.observe(at_risk("c9", 500.0))

    assert [(item.seq, item.kind) for item in feed.items] == [(3, "tier_change"), (4, "tier_change"), (5, "alert")]
    assert [item.seq for item in feed.after(4)] == [5]
    assert feed.after(5) == []
    assert feed.at_risk == {"c9": 500.0}


def test_transitions_count_the_last_hour_only() -> None:
    feed = OutputFeed()
    feed.observe(tier_change("c1", None, "B"))
    feed.observe(tier_change("c2", None, "B"))
    feed.observe(tier_change("c1", "B", "A"))
    now = time.time()

    assert feed.transitions(3600, now) == {("none", "B"): 2, ("B", "A"): 1}
    assert feed.transitions(3600, now + 3600 + 120) == {}


def test_history_turns_running_totals_into_counts_per_interval_and_keeps_the_last_ones() -> None:
    history = History(size=3)
    history.record(100.0, 5.0, 2.0, 7, {"A": 1}, Totals(tier_changes=4, alerts=1, dead_lettered=0))
    history.record(105.0, 5.0, 0.0, 0, None, Totals(tier_changes=4, alerts=3, dead_lettered=2))
    docs = history.documents()
    assert [(d["tier_changes"], d["alerts"], d["dead_lettered"]) for d in docs] == [(4, 1, 0), (0, 2, 2)]
    assert docs[1] == {"at": 105.0, "seconds": 5.0, "events_per_second": 0.0, "lag": 0, "tiers": None,
                       "tier_changes": 0, "alerts": 2, "dead_lettered": 2}
    for at in (110.0, 115.0):
        history.record(at, 5.0, 1.0, 0, {"A": 2}, Totals(tier_changes=9, alerts=3, dead_lettered=2))
    assert [d["at"] for d in history.documents()] == [105.0, 110.0, 115.0]  # the oldest dropped
    assert [d["tier_changes"] for d in history.documents()] == [0, 5, 0]


def test_the_tier_gauge_shows_the_last_heartbeats_counts() -> None:
    metrics = WorkerMetrics()
    assert "tierstream_tier_customers{" not in metrics.exposition().decode()  # no heartbeat yet: no samples
    metrics.tiers = {"AAA": 2, "B": 5}
    text = metrics.exposition().decode()
    assert 'tierstream_tier_customers{tier="AAA"} 2.0' in text and 'tierstream_tier_customers{tier="B"} 5.0' in text


def test_the_revenue_gauge_shows_the_last_heartbeats_revenue_per_tier() -> None:
    metrics = WorkerMetrics()
    assert "tierstream_tier_revenue{" not in metrics.exposition().decode()
    metrics.tier_revenue = {"AAA": 123_456, "C": -250}
    text = metrics.exposition().decode()
    assert 'tierstream_tier_revenue{tier="AAA"} 1234.56' in text and 'tierstream_tier_revenue{tier="C"} -2.5' in text


@pytest.fixture(scope="module")
async def stream(start_stream: StartStream) -> AsyncIterator[StreamGroup]:
    async with start_stream("metrics") as group:
        yield group


async def scrape(group: StreamGroup) -> tuple[str, Samples]:
    """(content type, sample name and labels -> value) of GET /metrics."""
    async with aiohttp.ClientSession() as http, http.get(f"{group.worker.web_url}/metrics") as response:
        assert response.status == 200
        text = await response.text()
        content_type = response.headers["Content-Type"]
    samples = {(s.name, frozenset(s.labels.items())): s.value
               for family in text_string_to_metric_families(text) for s in family.samples}
    return content_type, samples


def value(samples: Samples, name: str, **labels: str) -> float:
    return samples.get((name, frozenset(labels.items())), 0.0)


def yesterday(minutes: int = 0) -> datetime:
    return datetime.now(UTC) - timedelta(days=1) + timedelta(minutes=minutes)


@pytest.mark.integration
async def test_counters_latency_and_tier_changes_follow_the_events(stream: StreamGroup, upstream: Upstream) -> None:
    t, out = stream.topics, stream.outputs
    _, before = await scrape(stream)
    customer = uid("met")
    for i in range(4):  # scores 61.25, 68.75, 77.5, 85: new in A, then up to AAA
        await upstream.send(t.purchases, purchase(customer, 1000, yesterday(i)))
    await upstream.send(t.purchases, b"{not json", key=customer.encode())
    await out.wait_for(lambda: out.tiers(customer, to_tier="AAA"), "the upgrade to AAA")

    async def counted() -> Samples | None:
        _, now = await scrape(stream)
        done = value(now, "tierstream_dead_lettered_total") > value(before, "tierstream_dead_lettered_total")
        return now if done and value(now, "tierstream_redis_writes_total") > 0 else None

    after = await eventually(counted, "the dead letter and the Redis writes counted")

    def grew(name: str, **labels: str) -> float:
        return value(after, name, **labels) - value(before, name, **labels)

    assert grew("tierstream_events_total", topic=t.purchases, type="purchase") == 5
    assert grew("tierstream_event_outcomes_total", outcome="scored") == 4
    assert grew("tierstream_dead_lettered_total") == 1
    assert grew("tierstream_tier_changes_total", from_tier="none", to_tier="A") == 1
    assert grew("tierstream_tier_changes_total", from_tier="A", to_tier="AAA") == 1
    batches = grew("tierstream_batch_processing_seconds_count", topic=t.purchases)
    assert 1 <= batches <= 5  # one observation per fetched batch of the partition
    assert grew("tierstream_batch_processing_seconds_bucket", topic=t.purchases, le="+Inf") == batches
    assert value(after, "tierstream_batch_processing_seconds_sum", topic=t.purchases) > 0
    assert grew("tierstream_records_handled_total") >= 5
    assert value(after, "tierstream_table_customers") >= 1
    assert value(after, "tierstream_active_partitions") == stream.settings.partitions
    assert value(after, "tierstream_redis_write_errors_total") == 0
    assert ("tierstream_redis_pending_writes", frozenset()) in after


@pytest.mark.integration
async def test_lag_sweeps_and_format(stream: StreamGroup) -> None:
    async def lag_reported() -> Samples | None:
        _, now = await scrape(stream)
        lags = [labels for (name, labels) in now if name == "tierstream_consumer_lag"]
        sweeps = [v for (name, _), v in now.items() if name == "tierstream_review_sweeps_total"]
        return now if lags and sum(sweeps) > 0 else None

    samples = await eventually(lag_reported, "a consumer lag sample and a review sweep")
    content_type, _ = await scrape(stream)

    assert content_type.startswith("text/plain; version=0.0.4")
    lags = {dict(labels)["topic"]: v for (name, labels), v in samples.items() if name == "tierstream_consumer_lag"}
    assert set(lags) <= {*stream.topics.inputs().values(), stream.topics.events}
    assert all(v >= 0 for v in lags.values())
    sweeps = [v for (name, _), v in samples.items() if name == "tierstream_review_sweeps_total"]
    assert sweeps and sum(sweeps) > 0
    assert any(name == "process_resident_memory_bytes" for name, _ in samples)

    # Every input partition is listed, those that never held a record too (lag 0, not left out).
    inputs = {*stream.topics.inputs().values(), stream.topics.events}
    every = {(topic, str(p)) for topic in inputs for p in range(stream.settings.partitions)}

    async def all_listed() -> set[tuple[str, str]] | None:
        _, now = await scrape(stream)
        listed = {(dict(labels)["topic"], dict(labels)["partition"]) for (name, labels) in now
                  if name == "tierstream_consumer_lag"}
        return listed if listed == every else None

    await eventually(all_listed, f"a lag sample for each of the {len(every)} input partitions")
