"""Ops surfaces installed on a worker's Faust app and web server.

- GET /metrics                   Prometheus text format (streams.metrics)
- GET /dashboard                 live dashboard: static HTML/JS/CSS from streams/static/, no build step
- GET /dashboard/static/{name}   its script and style sheet
- GET /dashboard/summary         JSON for the dashboard: tiers, last hour's transitions, top at-risk customers
- GET /events/stream             server-sent events `tier_change` and `alert`: this worker's recent outputs
- a timer sending a `WorkerHeartbeat` to `topics.metrics` every `heartbeat_seconds`, key = worker id
A configured `web_token` is required (`Authorization: Bearer <token>`) on /metrics and the data
endpoints; the static pages hold no data (the dashboard takes the token as `#token=...`).
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
from typing import TYPE_CHECKING, Any, cast

from aiohttp import web as aioweb
from faust.web import Request, Response, View
from prometheus_client.exposition import CONTENT_TYPE_PLAIN_0_0_4
from redis.exceptions import RedisError

from schemas.monitoring import WorkerHeartbeat
from streams.metrics import FeedItem, consumer_lag
from streams.settings import Settings
from streams.web import denied

if TYPE_CHECKING:
    from streams.app import Tierstream

log = logging.getLogger("tierstream.ops")

SSE_POLL_SECONDS = 0.25  # how often a stream looks for new feed items (no cost per event)
SSE_KEEPALIVE_SECONDS = 15.0
SSE_MAX_SECONDS = 120.0  # a stream ends then and the browser reconnects: bounds a worker's shutdown wait
SSE_BACKLOG = 50  # feed items sent to a new stream first
TOP_AT_RISK = 10
PROFILE_FIELDS = ("tier", "score", "at_risk", "at_risk_score", "annual_value", "segment", "updated_at")
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

    def __init__(self, ts: Tierstream) -> None:
        self.ts = ts
        self.worker_id = worker_id(ts.settings)
        self.epoch = uuid.uuid4().hex[:8]  # SSE ids are epoch.seq: a restarted worker's ids never match
        self.rate = Rate(time.monotonic(), 0)
        self.assets = {name: (resources.files("streams") / "static" / name).read_bytes() for name in STATIC_TYPES}

    # -- heartbeat --------------------------------------------------------------------
    async def heartbeat(self) -> WorkerHeartbeat:
        ts = self.ts
        interval = self.rate.update(time.monotonic(), ts.metrics.handled)
        lag: dict[int, int] = {}
        for (_, partition), behind in consumer_lag(ts, self.sources()).items():
            lag[partition] = lag.get(partition, 0) + behind
        c, r = ts.pipeline.counters, ts.redis.stats
        return WorkerHeartbeat(
            worker_id=self.worker_id, app_id=ts.settings.app_id, emitted_at=datetime.now(UTC),
            interval_seconds=round(interval, 3), events_total=ts.metrics.handled,
            events_per_second=round(self.rate.per_second, 2), partitions=ts.active_partitions(),
            lag=dict(sorted(lag.items())), lag_total=sum(lag.values()), tiers=await self.tier_counts(),
            scored=c.scored, dead_lettered=c.dead_lettered, redis_errors=r.errors, redis_retries=r.retries,
            redis_pending_writes=r.pending, config_version=ts.settings.scoring.version)

    async def send_heartbeat(self) -> None:
        try:
            beat = await self.heartbeat()
            topic = self.ts.settings.topics.metrics
            await self.ts.out[topic].send(key=self.worker_id, value=beat.model_dump_json(exclude_none=True).encode(),
                                          force=True)
        except Exception as exc:  # a missed heartbeat must never stop scoring
            log.warning("heartbeat not sent: %s: %s", type(exc).__name__, exc)

    def sources(self) -> list[str]:
        t = self.ts.settings.topics
        return [*t.inputs().values(), t.events, t.reviews]

    async def tier_counts(self) -> dict[str, int] | None:
        """Customers per tier from Redis; None when Redis does not answer."""
        try:
            return await asyncio.wait_for(self.ts.redis.tier_counts(), timeout=2.0)
        except (RedisError, OSError, TimeoutError):
            return None

    # -- dashboard data ----------------------------------------------------------------
    async def summary(self) -> dict[str, Any]:
        ts = self.ts
        order = list(ts.settings.scoring.tier_names)
        transitions = ts.metrics.feed.transitions(3600.0)
        c, r = ts.pipeline.counters, ts.redis.stats
        return {
            "worker": {"id": self.worker_id, "app_id": ts.settings.app_id, "partitions": ts.active_partitions(),
                       "events_total": ts.metrics.handled, "events_per_second": round(self.rate.per_second, 2)},
            "tiers": {"order": order, "counts": await self.tier_counts()},
            "transitions": {"window_seconds": 3600, "counts": [
                {"from": f, "to": t, "count": n} for (f, t), n in sorted(transitions.items())]},
            "at_risk": await self.top_at_risk(TOP_AT_RISK),
            "errors": {"dead_lettered": c.dead_lettered, "redis_errors": r.errors,
                       "redis_pending_writes": r.pending},
            "config_version": ts.settings.scoring.version,
        }

    async def top_at_risk(self, limit: int) -> list[dict[str, Any]] | None:
        """The most valuable customers at risk now, from Redis; None when Redis does not answer.

        Candidates come from the `at_risk` ZSET (customer -> value) when it has members, else from
        this worker's recent at-risk alerts; each is checked against its current Redis profile.
        """
        view, feed = self.ts.redis, self.ts.metrics.feed
        try:
            ranked = cast(list[bytes], await view.client.zrevrange(view.key("at_risk"), 0, 2 * limit - 1))
            candidates = [_text(c) for c in ranked] or sorted(feed.at_risk, key=feed.at_risk.__getitem__,
                                                               reverse=True)[: 3 * limit]
            pipe = view.client.pipeline(transaction=False)
            for customer in candidates:
                pipe.hmget(view.key("customer", customer), *PROFILE_FIELDS)
            profiles = await asyncio.wait_for(pipe.execute(), timeout=2.0) if candidates else []
        except (RedisError, OSError, TimeoutError):
            return None
        rows = [_at_risk_row(customer, values) for customer, values in zip(candidates, profiles, strict=True)]
        found = [row for row in rows if row is not None]
        return sorted(found, key=lambda row: row["annual_value"], reverse=True)[:limit]

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
        feed = self.ts.metrics.feed
        if epoch == self.epoch and seq.isdigit() and int(seq) <= feed.seq:
            return int(seq)
        return max(0, feed.seq - SSE_BACKLOG)

    async def _pump(self, response: aioweb.StreamResponse, last: int) -> None:
        feed, app = self.ts.metrics.feed, self.ts.app
        started = quiet_since = time.monotonic()
        while not app.should_stop and time.monotonic() - started < SSE_MAX_SECONDS:
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


def _at_risk_row(customer: str, values: list[bytes | str | None]) -> dict[str, Any] | None:
    profile = dict(zip(PROFILE_FIELDS, (None if v is None else _text(v) for v in values), strict=True))
    if profile["at_risk"] != "1":
        return None
    return {"customer_id": customer, "tier": profile["tier"], "segment": profile["segment"],
            "score": _number(profile["score"]), "at_risk_score": _number(profile["at_risk_score"]),
            "annual_value": _number(profile["annual_value"]), "updated_at": profile["updated_at"]}


def _number(text: str | None) -> float:
    try:
        return float(text) if text else 0.0
    except ValueError:
        return 0.0


def _text(value: bytes | str) -> str:
    return value.decode() if isinstance(value, bytes) else value


def install_ops(ts: Tierstream) -> Ops:
    """Register the ops pages and the heartbeat timer on the worker's app."""
    ops = Ops(ts)
    ts.metrics.bind(ts)
    _register_pages(ts, ops)
    ts.app.timer(ts.settings.heartbeat_seconds, name="tierstream.heartbeat")(ops.send_heartbeat)
    return ops


def _register_pages(ts: Tierstream, ops: Ops) -> None:
    app = ts.app

    def guarded(path: str, handler: Handler) -> None:
        async def view(web: View, request: Request) -> Any:
            return denied(ts, web, request) or await handler(web, request)

        view.__name__ = f"ops_{path.strip('/').replace('/', '_')}"  # Faust names views after functions
        app.page(path)(view)

    async def metrics(web: View, request: Request) -> Response:
        return aioweb.Response(body=ts.metrics.exposition(),  # type: ignore[return-value]
                               headers={"Content-Type": CONTENT_TYPE_PLAIN_0_0_4})

    async def summary(web: View, request: Request) -> Response:
        return web.json(await ops.summary())

    async def events(web: View, request: Request) -> aioweb.StreamResponse:
        return await ops.stream(request)

    guarded("/metrics", metrics)
    guarded("/dashboard/summary", summary)
    guarded("/events/stream", events)

    @app.page("/dashboard")
    async def ops_dashboard(web: View, request: Request) -> Response:
        return _asset(ops, "index.html")

    @app.page("/dashboard/static/{name}")
    async def ops_dashboard_static(web: View, request: Request, name: str) -> Response:
        if name not in ops.assets:
            return web.json({"error": "not found"}, status=404)
        return _asset(ops, name)


def _asset(ops: Ops, name: str) -> Response:
    return aioweb.Response(body=ops.assets[name], content_type=STATIC_TYPES[name],  # type: ignore[return-value]
                           charset="utf-8", headers={"Cache-Control": "no-cache"})
