"""Query API on the worker's web server, and the guard in front of every route.

- GET /customers/{id}  profile with the score explanation; a customer owned by another worker is
                       answered from the Redis view (`"served_by": "redis"`, with the owner's URL),
                       never by forwarding the request (and its token) to another address
- GET /tiers           customers per tier, and value concentration: each tier's share of the customers,
                       of the revenue (the window's net spend, `window_days`: 365, the last 12 months)
                       and their ratio, the lift (from the Redis serving view: all workers' customers)
- GET /health          status ok or degraded, with the reasons; `?ready=1` answers 503 when not ok
- POST /clock          {"advance_days": n}: shift the clock (only with clock_control, for tests and demos)

A configured `web_token` is required as `Authorization: Bearer <token>` (scheme matched case-insensitively)
on every route, Faust's own included, except /health and the dashboard's static files; an aiohttp
middleware enforces it, so a route added later is guarded too.
"""

from __future__ import annotations

import hmac
import json
from collections.abc import Awaitable, Callable
from typing import Any, TypeVar, cast

from aiohttp import web as aioweb
from faust.web import Request, Response, View
from redis.exceptions import RedisError

from scoring.concentration import value_concentration
from scoring.events import MS_PER_DAY, from_ms
from streams.settings import Settings
from streams.worker.status import WorkerStatus

_F = TypeVar("_F", bound=Callable[..., Any])


def authorized(settings: Settings, header: str) -> bool:
    """Whether an Authorization header carries the configured bearer token (always, with no token)."""
    token = settings.web_token
    if token is None:
        return True
    scheme, _, given = header.strip().partition(" ")
    expected = token.get_secret_value().encode()
    return scheme.lower() == "bearer" and hmac.compare_digest(given.strip().encode(), expected)


def is_open(path: str) -> bool:
    return path in {"/health", "/dashboard"} or path.startswith("/dashboard/static/")


def token_middleware(settings: Settings) -> Callable[..., Awaitable[aioweb.StreamResponse]]:
    """aiohttp middleware: 401 on every route but the open ones unless the bearer token is given."""

    @aioweb.middleware
    async def guard(request: aioweb.Request, handler: Callable[..., Awaitable[aioweb.StreamResponse]]
                    ) -> aioweb.StreamResponse:
        if settings.web_token is not None and not is_open(request.path) and not authorized(
                settings, request.headers.get("Authorization", "")):
            return aioweb.json_response({"error": "unauthorized"}, status=401,
                                        headers={"WWW-Authenticate": "Bearer"})
        return await handler(request)

    return guard


def register_views(app: Any, status: WorkerStatus) -> None:
    """The query API's pages on the worker's Faust app."""

    @typed_page(app, "/customers/{customer_id}")
    async def customer(web: View, request: Request, customer_id: str) -> Response:
        if status.owns(customer_id):
            doc = status.lookup_document(customer_id)
            if doc is None:
                return web.json({"error": "unknown customer", "customer_id": customer_id}, status=404)
            return web.json(doc)
        doc, code = await _from_redis(status, customer_id)
        return web.json(doc, status=code)

    @typed_page(app, "/tiers")
    async def tiers(web: View, request: Request) -> Response:
        try:
            counts = await status.redis.tier_counts()
            revenue = await status.redis.tier_revenue()
        except (RedisError, OSError) as exc:
            return web.json({"error": f"serving view unavailable: {type(exc).__name__}"}, status=503)
        return web.json({"tiers": counts, "total": sum(counts.values()),
                         "value": concentration_rows(counts, revenue, status.redis.tiers)})

    @typed_page(app, "/health")
    async def health(web: View, request: Request) -> Response:
        doc = await health_document(status)
        strict = request.query.get("ready") in ("1", "true")
        return web.json(doc, status=503 if strict and doc["status"] != "ok" else 200)

    @typed_page(app, "/clock")
    class Clock(View):  # a class: a function page answers GET only (POST got 405)
        async def post(self, request: Request) -> Response:
            if not status.settings.clock_control:
                return self.json({"error": "clock control is disabled"}, status=403)
            try:
                days = float(json.loads(await request.text())["advance_days"])
            except (ValueError, KeyError, TypeError):
                return self.json({"error": 'body must be {"advance_days": <number>}'}, status=400)
            status.advance_clock(int(days * MS_PER_DAY))
            return self.json({"now": from_ms(status.wall_ms()).isoformat()})


async def _from_redis(status: WorkerStatus, customer_id: str) -> tuple[dict[str, Any], int]:
    owner = status.owner_url(customer_id)
    try:
        stored = await status.redis.get(customer_id)
    except (RedisError, OSError) as exc:
        return {"error": f"customer is on another worker and the serving view is unavailable: "
                         f"{type(exc).__name__}", "customer_id": customer_id, "owner_url": owner}, 503
    if stored is None:
        return {"error": "unknown customer", "customer_id": customer_id, "owner_url": owner}, 404
    return {"customer_id": customer_id, "served_by": "redis", "owner_url": owner, **_typed(stored)}, 200


def _typed(stored: dict[str, str]) -> dict[str, Any]:
    """The Redis hash's text values as JSON values (numbers, booleans, the components list)."""
    out: dict[str, Any] = {}
    for name, text in stored.items():
        if text == "":
            out[name] = None
        elif name == "components":
            out[name] = json.loads(text)
        elif name == "at_risk":
            out[name] = text == "1"
        else:
            try:
                number = float(text)
                out[name] = int(number) if number.is_integer() and "." not in text else number
            except ValueError:
                out[name] = text
    return out


def concentration_rows(counts: dict[str, int], revenue_cents: dict[str, int],
                       tiers: tuple[str, ...]) -> list[dict[str, Any]]:
    """/tiers' value concentration: per tier, customers and revenue with their shares and the lift."""
    return [{"tier": r.tier, "customers": r.customers, "customer_share": round(r.customer_share, 4),
             "revenue": r.revenue / 100,
             "revenue_share": None if r.revenue_share is None else round(r.revenue_share, 4),
             "lift": None if r.lift is None else round(r.lift, 2)}
            for r in value_concentration(counts, revenue_cents, tiers)]


async def health_document(status: WorkerStatus) -> dict[str, Any]:
    """Status ok, or degraded with the reasons; what a probe or an operator needs, never secrets."""
    redis_ok = await status.redis_ok()
    partitions = status.partitions()
    reasons = []
    if not redis_ok:
        reasons.append("redis unreachable: the serving view and frequency caps are not updated")
    if not partitions:
        reasons.append("no partitions assigned (starting, rebalancing, or more workers than partitions)")
    if status.redis.stats.pending > 100_000:
        reasons.append(f"{status.redis.stats.pending:,} Redis profile writes pending")
    c = status.counters
    return {
        "status": "degraded" if reasons else "ok", "reasons": reasons, "app_id": status.settings.app_id,
        "partitions": partitions, "redis": "ok" if redis_ok else "unreachable",
        "redis_pending_writes": status.redis.stats.pending, "clock": status.settings.clock,
        "customers_with_deadline": status.deadlines(), "events_scored": c.scored,
        "dead_lettered": c.dead_lettered, "reviewed": c.reviewed, "duplicates": c.duplicates,
        "forwarded": c.forwarded, "unwritten_customers": status.unwritten(),
        "config_version": status.settings.scoring.version, "model_version": status.model_version(),
        "calibration_version": status.calibration_version(),
        "event_clock": status.event_clock(),
    }


def typed_page(app: Any, path: str) -> Callable[[_F], _F]:
    """`app.page(path)` with its type: the view keeps its signature."""
    return cast("Callable[[_F], _F]", app.page(path))
