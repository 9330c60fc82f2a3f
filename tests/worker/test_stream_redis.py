"""The Redis serving view: customer hashes, one tier set per customer, and `redis-resync`.

Layout (see `streams.serving.redis_view`): `{prefix}customer:{id}` HASH and
`{prefix}tier:{tier}` ZSET (customer -> composite score), a customer in exactly one.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta

import pytest
import redis.asyncio as aioredis

from scoring.codec import decode_state
from scoring.rfm import COMPONENT_NAMES
from streams.serving.resync import read_table
from tests.kits.stream import StreamGroup, Upstream, eventually, purchase, run_cli, uid

pytestmark = pytest.mark.integration

DOCUMENTED_FIELDS = {"tier", "score", "r_score", "f_score", "m_score", "segment", "at_risk", "at_risk_score",
                     "annual_value",
                     "recency_days", "frequency", "monetary", "returns_amount", "complaints", "tenure_days",
                     "components", "updated_at", "version", "model_version"}
TIERS = ("AAA", "A", "B", "C")


@pytest.fixture(scope="module")
def stream(default_stream: StreamGroup) -> StreamGroup:
    return default_stream  # the shared worker with the default settings


def yesterday(minutes: int = 0) -> datetime:
    return datetime.now(UTC) - timedelta(days=1) + timedelta(minutes=minutes)


async def memberships(redis: aioredis.Redis, prefix: str, customer: str) -> dict[str, float]:
    """{tier: score} of every tier set holding `customer`."""
    found = {}
    for tier in TIERS:
        score = await redis.zscore(f"{prefix}tier:{tier}", customer)
        if score is not None:
            found[tier] = score
    return found


async def profile_with(redis: aioredis.Redis, stream: StreamGroup, customer: str, **fields: str) -> dict[str, str]:
    """The customer's hash, once it holds `fields` (writes are buffered and pipelined)."""
    key = f"{stream.prefix}customer:{customer}"

    async def probe() -> dict[str, str] | None:
        profile = await redis.hgetall(key)
        return profile if profile and all(profile.get(k) == v for k, v in fields.items()) else None

    return await eventually(probe, f"{key} with {fields}")  # type: ignore[no-any-return]


async def test_customer_hash_and_exactly_one_tier_set(stream: StreamGroup, upstream: Upstream,
                                                      redis: aioredis.Redis) -> None:
    customer = uid("rd")
    events = [purchase(customer, 1000, yesterday(i)) for i in range(4)]
    await upstream.send(stream.topics.purchases, events[0])
    await profile_with(redis, stream, customer, tier="A")
    assert await memberships(redis, stream.prefix, customer) == {"A": 61.25}

    for event in events[1:]:
        await upstream.send(stream.topics.purchases, event)
    profile = await profile_with(redis, stream, customer, tier="AAA", frequency="4")
    assert await memberships(redis, stream.prefix, customer) == {"AAA": 85.0}  # and no longer in A

    assert set(profile) >= DOCUMENTED_FIELDS
    assert {k: profile[k] for k in ("score", "r_score", "f_score", "m_score", "segment", "at_risk", "annual_value",
                                    "monetary", "returns_amount", "complaints", "version")} == {
        "score": "85.0", "r_score": "5", "f_score": "3", "m_score": "5", "segment": "new", "at_risk": "0",
        "annual_value": "4000.0", "monetary": "4000.0", "returns_amount": "0.0", "complaints": "0",
        "version": "rules-1"}
    components = json.loads(profile["components"])
    assert [c["name"] for c in components] == list(COMPONENT_NAMES)
    assert sum(c["points"] for c in components) == pytest.approx(85.0)
    assert datetime.fromisoformat(profile["updated_at"]).tzinfo is not None

    snapshot = await stream.outputs.wait_score(customer, str(events[3]["event_id"]))
    assert (snapshot["tier"], snapshot["score"]) == (profile["tier"], float(profile["score"]))
    assert (snapshot["recency_days"], snapshot["tenure_days"]) == (int(profile["recency_days"]),
                                                                   int(profile["tenure_days"]))


async def test_redis_resync_rebuilds_deleted_keys(stream: StreamGroup, upstream: Upstream,
                                                  redis: aioredis.Redis) -> None:
    customers = {uid("rs"): 1000, uid("rs"): 50, uid("rs"): 250}  # A, B, B
    for customer, amount in customers.items():
        await upstream.send(stream.topics.purchases, purchase(customer, amount, yesterday()))
    before = {c: await profile_with(redis, stream, c, frequency="1") for c in customers}
    sets_before = {c: await memberships(redis, stream.prefix, c) for c in customers}
    assert [len(m) for m in sets_before.values()] == [1, 1, 1]

    async def in_changelog() -> bool:  # resync reads the table's changelog: wait until it holds them
        table, _ = await read_table(stream.settings, idle_timeout=1.0)
        return all(c in table and decode_state(table[c]).purchases == 1 for c in customers)

    await eventually(in_changelog, "the customers in the table's changelog", interval=0.5)

    await redis.delete(*[f"{stream.prefix}customer:{c}" for c in customers],
                       *[f"{stream.prefix}tier:{t}" for t in TIERS])
    done = await run_cli("redis-resync", "--config", str(stream.config_path))
    assert done.returncode == 0, done.stderr
    assert "wrote" in done.stderr

    for customer in customers:
        assert await redis.hgetall(f"{stream.prefix}customer:{customer}") == before[customer]
        assert await memberships(redis, stream.prefix, customer) == sets_before[customer]
