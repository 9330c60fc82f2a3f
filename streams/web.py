"""Query API on the worker's Faust web server.

- GET /customers/{id}  profile with the score explanation (routed to the worker owning the key); 404 if unknown
- GET /tiers           customers per tier (from the Redis serving view)
- GET /health          liveness/readiness: owned partitions, Redis reachability; never secrets
- POST /clock          {"advance_days": n}: shift the clock (only with clock_control, for tests and demos)
A configured `web_token` is required as `Authorization: Bearer <token>` on all but /health.
"""

from __future__ import annotations

import hmac
import json
from typing import TYPE_CHECKING, Any

from faust.web import Request, Response, View
from redis.exceptions import RedisError

from scoring.btyd import btyd_summary
from scoring.events import MS_PER_DAY, from_ms
from scoring.review import next_review_at
from scoring.step import evaluate, value_of
from streams.convert import model_fields

if TYPE_CHECKING:
    from streams.app import Tierstream


def denied(ts: Tierstream, web: View, request: Request) -> Response | None:
    """A 401 unless the configured bearer token was given; None when access is allowed."""
    token = ts.settings.web_token
    if token is None:
        return None
    given = request.headers.get("Authorization", "")
    if hmac.compare_digest(given.encode(), f"Bearer {token.get_secret_value()}".encode()):
        return None
    return web.json({"error": "unauthorized"}, status=401)


def register_views(ts: Tierstream) -> None:
    app, table = ts.app, ts.table

    @app.page("/customers/{customer_id}")
    @app.table_route(table=table, match_info="customer_id")
    async def customer(web: View, request: Request, customer_id: str) -> Response:
        if (refusal := denied(ts, web, request)) is not None:
            return refusal
        raw = table.get(customer_id)
        if raw is None:
            return web.json({"error": "unknown customer", "customer_id": customer_id}, status=404)
        return web.json(profile_document(ts, customer_id, raw))

    @app.page("/tiers")
    async def tiers(web: View, request: Request) -> Response:
        if (refusal := denied(ts, web, request)) is not None:
            return refusal
        try:
            counts = await ts.redis.tier_counts()
        except (RedisError, OSError) as exc:
            return web.json({"error": f"serving view unavailable: {type(exc).__name__}"}, status=503)
        return web.json({"tiers": counts, "total": sum(counts.values())})

    @app.page("/health")
    async def health(web: View, request: Request) -> Response:
        return web.json(await health_document(ts))

    @app.page("/clock")
    class Clock(View):  # a class: a function page answers GET only (POST got 405)
        async def post(self, request: Request) -> Response:
            if (refusal := denied(ts, self, request)) is not None:
                return refusal
            if not ts.settings.clock_control:
                return self.json({"error": "clock control is disabled"}, status=403)
            try:
                days = float(json.loads(await request.text())["advance_days"])
            except (ValueError, KeyError, TypeError):
                return self.json({"error": 'body must be {"advance_days": <number>}'}, status=400)
            ts.clock.advance(int(days * MS_PER_DAY))
            return self.json({"now": from_ms(ts.clock.wall_ms()).isoformat()})


def profile_document(ts: Tierstream, customer_id: str, raw: bytes) -> dict[str, Any]:
    """A customer's profile as of the worker's clock, with the explanation."""
    state = ts.pipeline.load(raw)
    config = ts.settings.scoring
    # Live: as of now. Event clock (backfills): as of the customer's own latest event time.
    now = state.clock_ms if ts.settings.clock == "event" else max(ts.clock.wall_ms(), state.clock_ms)
    today = now // MS_PER_DAY
    model = ts.pipeline.model
    ev = evaluate(state, today, config, model)
    value = value_of(state, today, config, model)
    s = ev.score
    btyd = btyd_summary(state, today)
    review = next_review_at(state)
    return {
        "customer_id": customer_id, "as_of": from_ms(today * MS_PER_DAY).date().isoformat(),
        "tier": ev.tier, "stored_tier": state.tier, "score": s.composite, "segment": ev.segment,
        "r_score": s.r, "f_score": s.f, "m_score": s.m, "recency_days": s.recency_days,
        "frequency": s.frequency, "monetary": s.monetary, "returns_amount": s.returns_amount,
        "complaints": s.complaints, "tenure_days": s.tenure_days, "annual_value": s.annual_value,
        "at_risk": ev.risk.is_at_risk, "at_risk_score": ev.risk.score, "typical_gap_days": ev.risk.gap_days,
        "components": [{"name": c.name, "value": c.value, "points": round(c.points, 2)} for c in s.components],
        "explanation": "; ".join(f"{c.name} {c.points:+.1f}" for c in s.components if c.points),
        "btyd": None if btyd is None else {"x": btyd.x, "t_x": btyd.t_x, "T": btyd.T,
                                            "mean_repeat_value": round(btyd.mean_repeat_value, 2)},
        "next_review_at": None if review is None else review.isoformat(),
        "config_version": config.version, "model_version": model.version if model else None,
        **model_fields(value),
    }


async def health_document(ts: Tierstream) -> dict[str, Any]:
    try:
        await ts.redis_client.ping()
        redis = "ok"
    except (RedisError, OSError):
        redis = "unreachable"
    return {
        "status": "ok", "app_id": ts.settings.app_id, "partitions": ts.active_partitions(),
        "redis": redis, "redis_pending_writes": ts.redis.stats.pending, "clock": ts.settings.clock,
        "customers_with_deadline": ts.deadlines.size(), "events_scored": ts.pipeline.counters.scored,
        "dead_lettered": ts.pipeline.counters.dead_lettered, "reviewed": ts.pipeline.counters.reviewed,
        "duplicates": ts.pipeline.counters.duplicates,
    }
