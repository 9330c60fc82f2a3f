"""Memory per customer, as README and docs/delivery.md (Retention) state it: `python -m bench.customer_memory`.

- The state (the table's value, and each changelog record): `encode_state` of a typical customer (a year of
  weekly purchases, 2 complaints, 3 enquiries) and of a busy one (an event every 15 minutes for three years:
  the id memory saturates at its bound), each stepped event by event as the stream does (event clock), the
  outbox expired.
- Redis: `MEMORY USAGE` of the typical customer's `customer:{id}` hash as the worker writes it, and the tier
  set's and at-risk set's bytes per member (1,000 such customers under a prefix of their own, removed after).
Prints one JSON document; `--redis-url` (default redis://127.0.0.1:6379/0).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import uuid
from typing import Any

from redis.asyncio import Redis

from scoring.codec import encode_state
from scoring.config import ScoringConfig
from scoring.events import MS_PER_DAY, CoreEvent, Kind
from scoring.state import NEW_STATE, CustomerState
from scoring.step import evaluate, step
from streams.profile import profile_of
from streams.serving.redis_view import RedisView

DAY0 = 19_000  # 2022-01-08
CUSTOMERS = 1_000


def typical_events() -> list[CoreEvent]:
    weekly = [CoreEvent(Kind.PURCHASE, f"p{i}", (DAY0 + 7 * i) * MS_PER_DAY + 43_200_000, 42_5000) for i in range(52)]
    other = [CoreEvent(Kind.COMPLAINT, f"c{i}", (DAY0 + 100 + 90 * i) * MS_PER_DAY, severity=2) for i in range(2)]
    other += [CoreEvent(Kind.ENQUIRY, f"e{i}", (DAY0 + 50 + 60 * i) * MS_PER_DAY) for i in range(3)]
    return sorted(weekly + other, key=lambda e: (e.at_ms, e.event_id))


def busy_events() -> list[CoreEvent]:
    step_ms, days = 15 * 60_000, 3 * 365
    return [CoreEvent(Kind.PURCHASE if i % 4 else Kind.ENQUIRY, f"b{i}", DAY0 * MS_PER_DAY + i * step_ms, 19_9900)
            for i in range(days * MS_PER_DAY // step_ms)]


def stepped(events: list[CoreEvent], config: ScoringConfig) -> tuple[CustomerState, int]:
    """The state after stepping every event (event clock), then a day later (the outbox expired); refused."""
    state, refused = NEW_STATE, 0
    for event in events:
        result = step(state, event, event.at_ms, "c", config)
        refused += result.outcome == "rejected"
        state = result.state or NEW_STATE
    later = step(state, None, state.clock_ms + MS_PER_DAY, "c", config)
    return later.state or state, refused


async def redis_bytes(url: str, state: CustomerState, config: ScoringConfig) -> dict[str, Any]:
    client = Redis.from_url(url)
    prefix = f"bench-memory-{uuid.uuid4().hex[:8]}:"
    view = RedisView(client, prefix, config.tier_names)
    try:
        day = state.clock_ms // MS_PER_DAY
        evaluation = evaluate(state, day, config)
        fields = profile_of("C-000000", state, evaluation, config).redis_fields()
        for i in range(CUSTOMERS):
            view.put(f"C-{i:06d}", {**fields, "at_risk": True})  # at risk: its at_risk set entry counted too
        assert await view.flush()
        hashes = [await client.memory_usage(view.key("customer", f"C-{i:06d}")) or 0 for i in range(CUSTOMERS)]
        tier_set = await client.memory_usage(view.key("tier", evaluation.tier)) or 0
        at_risk = await client.memory_usage(view.key("at_risk")) or 0
        return {"profile_hash_bytes": sum(hashes) / CUSTOMERS, "profile_fields": len(fields),
                "tier_set_bytes_per_member": tier_set / CUSTOMERS, "at_risk_bytes_per_member": at_risk / CUSTOMERS,
                "tier": evaluation.tier}
    finally:
        keys = [k async for k in client.scan_iter(match=f"{prefix}*")]
        if keys:
            await client.delete(*keys)
        await client.aclose()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--redis-url", default="redis://127.0.0.1:6379/0")
    args = parser.parse_args()
    config = ScoringConfig()
    typical, _ = stepped(typical_events(), config)
    busy_list = busy_events()
    busy, refused = stepped(busy_list, config)
    doc = {"state_typical_bytes": len(encode_state(typical)), "state_busy_bytes": len(encode_state(busy)),
           "busy_events": len(busy_list), "busy_refused": refused,
           **asyncio.run(redis_bytes(args.redis_url, typical, config))}
    print(json.dumps(doc, indent=1))


if __name__ == "__main__":
    main()
