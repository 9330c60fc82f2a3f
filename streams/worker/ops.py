"""Ops surfaces installed on a worker's Faust app and web server.

- GET /metrics                   Prometheus text format (streams.worker.metrics)
- GET /dashboard                 live dashboard: static HTML/JS/CSS from streams/worker/static/, no build step
- GET /dashboard/static/{name}   its script and style sheet
- GET /dashboard/summary         JSON for the dashboard: tiers, last hour's transitions, top at-risk customers,
                                 the contact-plan table (plan-report's rows over this worker's outcomes)
- GET /events/stream             server-sent events `tier_change` and `alert`: this worker's recent outputs
- a timer sending a `WorkerHeartbeat` to `topics.metrics` every `heartbeat_seconds`, key = worker id
A configured `web_token` is required (`Authorization: Bearer <token>`) on /metrics and the data
endpoints (the guard in `streams.worker.views`); the static pages hold no data (the dashboard takes
the token as `#token=...`). Everything here reads the worker through a `WorkerStatus`.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import socket
import time
import uuid
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from importlib import resources
from typing import TYPE_CHECKING, Any

from aiohttp import web as aioweb
from faust.web import Request, Response, View
from prometheus_client.exposition import CONTENT_TYPE_PLAIN_0_0_4
from redis.exceptions import RedisError

from schemas.monitoring import WorkerHeartbeat
from scoring.uplift import ALL_TIERS, effects_of
from streams.offline.plan_report import row
from streams.settings import Settings
from streams.worker.metrics import FeedItem, Totals
from streams.worker.views import concentration_rows, typed_page

if TYPE_CHECKING:
    from streams.worker.status import WorkerStatus

log = logging.getLogger("tierstream.ops")

SSE_POLL_SECONDS = 0.25  # how often a stream looks for new feed items (no cost per event)
SSE_KEEPALIVE_SECONDS = 15.0
SSE_MAX_SECONDS = 120.0  # a stream ends then and the browser reconnects: bounds a worker's shutdown wait
SSE_BACKLOG = 50  # feed items sent to a new stream first
TOP_AT_RISK = 10
PROFILE_FIELDS = ("tier", "score", "at_risk", "at_risk_score", "annual_value", "segment", "updated_at",
                  "recency_days", "model_version")
STATIC_TYPES = {"index.html": "text/html", "dashboard.js": "text/javascript", "dashboard.css": "text/css"}
Handler = Callable[[View, Request], Awaitable[Any]]


def worker_id(settings: Settings) -> str:
    """host:port of this worker's web server: unique per worker, and the heartbeat's key."""
    return f"{socket.gethostname()}:{settings.web_port}"


def ready_banner(settings: Settings) -> str:
    """Lines to print once a worker serves: where the dashboard, the query API and /metrics are."""
    host = settings.web_host
    if host in ("", "0.0.0.0", "::"):  # bound to every address: this machine's loopback reaches it
        host = "127.0.0.1"
    elif ":" in host:
        host = f"[{host}]"
    base = f"http://{host}:{settings.web_port}"
    lines = [f"tierstream is ready (app {settings.app_id})",
             f"  dashboard  {base}/dashboard",
             f"  query API  {base}/customers/<id>  {base}/tiers  {base}/health",
             f"  metrics    {base}/metrics"]
    if settings.web_token is not None:
        lines += ["  a bearer token is required: open the dashboard as /dashboard#token=<token>;",
                  "  send 'Authorization: Bearer <token>' to the query API and /metrics"]
    return "\n".join(lines)


@dataclass
class Rate:
    """Messages handled per second between two heartbeats."""

    at: float
    handled: int
    per_second: float = 0.0

    def update(self, now: float, handled: int) -> float:
        """Seconds since the previous update; sets `per_second`."""
        interval = max(now - self.at, 1e-9)
        self.per_second = max(0, handled - self.handled) / interval
        self.at, self.handled = now, handled
        return interval


class Ops:
    """The ops views and the heartbeat of one worker."""

    def __init__(self, status: WorkerStatus, should_stop: Callable[[], bool]) -> None:
        self.status = status
        self.should_stop = should_stop
        self.worker_id = worker_id(status.settings)
        self.epoch = uuid.uuid4().hex[:8]  # SSE ids are epoch.seq: a restarted worker's ids never match
        self.rate = Rate(time.monotonic(), 0)
        static = resources.files("streams.worker") / "static"
        self.assets = {name: (static / name).read_bytes() for name in STATIC_TYPES}

    # -- heartbeat --------------------------------------------------------------------
    async def heartbeat(self) -> WorkerHeartbeat:
        status = self.status
        interval = self.rate.update(time.monotonic(), status.metrics.handled)
        lag = {row["partition"]: row["records"] for row in self.lag()["partitions"]}
        c, r = status.counters, status.redis.stats
        return WorkerHeartbeat(
            worker_id=self.worker_id, app_id=status.settings.app_id, emitted_at=datetime.now(UTC),
            interval_seconds=round(interval, 3), events_total=status.metrics.handled,
            events_per_second=round(self.rate.per_second, 2), partitions=status.partitions(),
            lag=dict(sorted(lag.items())), lag_total=sum(lag.values()), tiers=await self.tier_counts(),
            scored=c.scored, dead_lettered=c.dead_lettered, redis_errors=r.errors, redis_retries=r.retries,
            redis_pending_writes=r.pending, config_version=status.settings.scoring.version)

    async def send_heartbeat(self) -> None:
        try:
            beat = await self.heartbeat()
            self.record(beat)
            self.status.metrics.tier_revenue = await self.tier_revenue()
            await self.status.send_heartbeat(beat.model_dump_json(exclude_none=True).encode(), self.worker_id)
        except Exception as exc:  # a missed heartbeat must never stop scoring
            log.warning("heartbeat not sent: %s: %s", type(exc).__name__, exc)

    def record(self, beat: WorkerHeartbeat) -> None:
        """Keep the heartbeat's interval for the dashboard's charts and the tier gauge of /metrics."""
        c, metrics = self.status.counters, self.status.metrics
        metrics.tiers = beat.tiers
        totals = Totals(sum(c.tier_changes.values()), sum(c.alerts.values()), c.dead_lettered)
        metrics.history.record(beat.emitted_at.timestamp(), beat.interval_seconds, beat.events_per_second,
                               beat.lag_total, beat.tiers, totals)

    async def tier_counts(self) -> dict[str, int] | None:
        """Customers per tier from Redis; None when Redis does not answer."""
        try:
            return await asyncio.wait_for(self.status.redis.tier_counts(), timeout=2.0)
        except (RedisError, OSError, TimeoutError):
            return None

    async def value_rows(self, counts: dict[str, int] | None, order: list[str]) -> list[dict[str, Any]] | None:
        """Value concentration per tier, as /tiers has it; None when Redis does not answer."""
        revenue = await self.tier_revenue()
        if counts is None or revenue is None:
            return None
        return concentration_rows(counts, revenue, tuple(order))

    async def tier_revenue(self) -> dict[str, int] | None:
        """Revenue (cents) per tier from Redis; None when Redis does not answer."""
        try:
            return await asyncio.wait_for(self.status.redis.tier_revenue(), timeout=2.0)
        except (RedisError, OSError, TimeoutError):
            return None

    # -- dashboard data ----------------------------------------------------------------
    async def summary(self) -> dict[str, Any]:
        status = self.status
        order = list(status.settings.scoring.tier_names)
        transitions = status.metrics.feed.transitions(3600.0)
        c, r = status.counters, status.redis.stats
        return {
            "worker": {"id": self.worker_id, "app_id": status.settings.app_id, "partitions": status.partitions(),
                       "events_total": status.metrics.handled, "events_per_second": round(self.rate.per_second, 2)},
            "tiers": {"order": order, "counts": (counts := await self.tier_counts())},
            "value": await self.value_rows(counts, order),
            "transitions": {"window_seconds": 3600, "counts": [
                {"from": f, "to": t, "count": n} for (f, t), n in sorted(transitions.items())]},
            "at_risk": await self.top_at_risk(TOP_AT_RISK),
            "plan": self.plan(),
            "errors": {"dead_lettered": c.dead_lettered, "redis_errors": r.errors,
                       "redis_pending_writes": r.pending},
            "lag": self.lag(),
            "versions": {"config": status.settings.scoring.version, "model": status.model_version(),
                         "calibration": status.calibration_version()},
            "history": {"interval_seconds": status.settings.heartbeat_seconds,
                        "samples": status.metrics.history.documents()},
            "config_version": status.settings.scoring.version,
        }

    def plan(self) -> dict[str, Any]:
        """The contact-plan panel: `tierstream plan-report`'s table (the same rows, from the same core function)
        over the ContactOutcome messages this worker published since it started. The unit is the outcome
        window (a worker keeps no customer list): a customer with several windows counts several times, so
        plan-report over the outcome topic is the reference."""
        found = effects_of(dict(self.status.counters.outcomes))
        total = sum(e.treated + e.held_out for e in found if e.tier == ALL_TIERS)
        return {"unit": "outcome window", "outcomes": total, "rows": [row(e) for e in found]}

    def lag(self) -> dict[str, Any]:
        """Records not yet committed: the total and per partition (all input topics), as /metrics has it."""
        per_partition: dict[int, int] = {}
        for (_, partition), behind in self.status.lag().items():
            per_partition[partition] = per_partition.get(partition, 0) + behind
        return {"total": sum(per_partition.values()),
                "partitions": [{"partition": p, "records": n} for p, n in sorted(per_partition.items())]}

    async def top_at_risk(self, limit: int) -> list[dict[str, Any]] | None:
        """The most valuable customers at risk now, from Redis; None when Redis does not answer.

        Candidates come from the `at_risk` ZSET (customer -> value) when it has members, else from
        this worker's recent at-risk alerts; each is checked against its current Redis profile.
        """
        view, feed = self.status.redis, self.status.metrics.feed
        try:
            found = await asyncio.wait_for(view.top_at_risk(2 * limit, PROFILE_FIELDS), timeout=2.0)
            if not found:  # no at_risk index (yet): this worker's recent alerts
                recent = sorted(feed.at_risk, key=feed.at_risk.__getitem__, reverse=True)[: 3 * limit]
                found = await asyncio.wait_for(view.profiles(recent, PROFILE_FIELDS), timeout=2.0)
        except (RedisError, OSError, TimeoutError):
            return None
        rows = [_at_risk_row(customer, values) for customer, values in found]
        kept = [row for row in rows if row is not None]
        return sorted(kept, key=lambda row: row["annual_value"], reverse=True)[:limit]

    # -- server-sent events ---------------------------------------------------------------
    async def stream(self, request: Request) -> aioweb.StreamResponse:
        """Tier changes and alerts as they are sent (the last SSE_BACKLOG first, unless resuming)."""
        response = aioweb.StreamResponse(headers={
            "Content-Type": "text/event-stream", "Cache-Control": "no-cache", "X-Accel-Buffering": "no"})
        await response.prepare(request)  # type: ignore[arg-type]
        last = self._resume_from(request.headers.get("Last-Event-ID", ""))
        with contextlib.suppress(ConnectionResetError):
            await response.write(b"retry: 1000\n\n")
            await self._pump(response, last)
        return response

    def _resume_from(self, last_event_id: str) -> int:
        epoch, _, seq = last_event_id.partition(".")
        feed = self.status.metrics.feed
        if epoch == self.epoch and seq.isdigit() and int(seq) <= feed.seq:
            return int(seq)
        return max(0, feed.seq - SSE_BACKLOG)

    async def _pump(self, response: aioweb.StreamResponse, last: int) -> None:
        feed = self.status.metrics.feed
        started = quiet_since = time.monotonic()
        while not self.should_stop() and time.monotonic() - started < SSE_MAX_SECONDS:
            items = feed.after(last)
            if items:
                await response.write(b"".join(self._event(item) for item in items))
                last, quiet_since = items[-1].seq, time.monotonic()
            elif time.monotonic() - quiet_since > SSE_KEEPALIVE_SECONDS:
                await response.write(b": keepalive\n\n")
                quiet_since = time.monotonic()
            await asyncio.sleep(SSE_POLL_SECONDS)

    def _event(self, item: FeedItem) -> bytes:
        return b"id: %s.%d\nevent: %s\ndata: %s\n\n" % (self.epoch.encode(), item.seq, item.kind.encode(), item.value)


def _at_risk_row(customer: str, values: list[str | None]) -> dict[str, Any] | None:
    profile = dict(zip(PROFILE_FIELDS, values, strict=True))
    if profile["at_risk"] != "1":
        return None
    recency = profile["recency_days"]
    return {"customer_id": customer, "tier": profile["tier"], "segment": profile["segment"],
            "score": _number(profile["score"]), "at_risk_score": _number(profile["at_risk_score"]),
            # model: at_risk_score is a probability; rules: an overdue index (days since purchase vs the gap)
            "risk_basis": "model" if profile["model_version"] else "rules",
            "recency_days": int(recency) if recency and recency.isdigit() else None,
            "annual_value": _number(profile["annual_value"]), "updated_at": profile["updated_at"]}


def _number(text: str | None) -> float:
    try:
        return float(text) if text else 0.0
    except ValueError:
        return 0.0


def _text(value: bytes | str) -> str:
    return value.decode() if isinstance(value, bytes) else value


def install_ops(app: Any, status: WorkerStatus) -> Ops:
    """Register the ops pages and the heartbeat timer on the worker's Faust app."""
    ops = Ops(status, lambda: bool(app.should_stop))
    status.metrics.bind(status)
    _register_pages(app, status, ops)
    app.timer(status.settings.heartbeat_seconds, name="tierstream.heartbeat")(ops.send_heartbeat)
    return ops


def _register_pages(app: Any, status: WorkerStatus, ops: Ops) -> None:
    def page(path: str, handler: Handler) -> None:
        async def view(web: View, request: Request) -> Any:
            return await handler(web, request)

        view.__name__ = f"ops_{path.strip('/').replace('/', '_')}"  # Faust names views after functions
        app.page(path)(view)

    async def metrics(web: View, request: Request) -> Response:
        return aioweb.Response(body=status.metrics.exposition(),  # type: ignore[return-value]
                               headers={"Content-Type": CONTENT_TYPE_PLAIN_0_0_4})

    async def summary(web: View, request: Request) -> Response:
        return web.json(await ops.summary())

    async def events(web: View, request: Request) -> aioweb.StreamResponse:
        return await ops.stream(request)

    page("/metrics", metrics)
    page("/dashboard/summary", summary)
    page("/events/stream", events)

    @typed_page(app, "/dashboard")
    async def ops_dashboard(web: View, request: Request) -> Response:
        return _asset(ops, "index.html")

    @typed_page(app, "/dashboard/static/{name}")
    async def ops_dashboard_static(web: View, request: Request, name: str) -> Response:
        if name not in ops.assets:
            return web.json({"error": "not found"}, status=404)
        return _asset(ops, name)


def _asset(ops: Ops, name: str) -> Response:
    return aioweb.Response(body=ops.assets[name], content_type=STATIC_TYPES[name],  # type: ignore[return-value]
                           charset="utf-8", headers={"Cache-Control": "no-cache"})

