"""RedisView's key layout against a real Redis (REDIS_URL, else 127.0.0.1:6379, else one we start), under a
key prefix of its own per test (removed after)."""

from __future__ import annotations

import random
import uuid
from collections.abc import AsyncIterator
from typing import Any

import pytest
from redis.asyncio import Redis

from scoring.config import FrequencyCap
from streams.caps import cap_check, cap_ttl_seconds
from streams.serving.redis_view import PROFILES_PER_CALL, RedisView
from tests.kits.services import delete_keys_with_prefix

TIERS = ("AAA", "A", "B", "C")


@pytest.fixture
async def view(redis_url: str, key_prefix: str) -> AsyncIterator[RedisView]:
    prefix = f"{key_prefix}view-{uuid.uuid4().hex[:8]}:"
    client = Redis.from_url(redis_url)
    try:
        yield RedisView(client, prefix, TIERS)
    finally:
        await client.aclose()
        delete_keys_with_prefix(redis_url, prefix)


def profile(tier: str, score: float, at_risk: bool = False, annual_value: float = 100.0) -> dict[str, Any]:
    return {"tier": tier, "score": score, "at_risk": at_risk, "annual_value": annual_value, "recency_days": None,
            "components": [{"name": "recency", "value": 3, "points": 1.5}], "segment": "loyal"}


async def keys(view: RedisView) -> set[str]:
    return {k.decode()[len(view.prefix):] async for k in view.client.scan_iter(match=f"{view.prefix}*")}


async def test_a_profile_is_a_hash_plus_its_tier_and_at_risk_entries(view: RedisView) -> None:
    view.put("c1", profile("A", 71.5, at_risk=True, annual_value=250.0))
    assert await view.flush()
    assert await keys(view) == {"customer:c1", "tier:A", "at_risk", "tier_revenue",
                                 "tier_revenue:customers"}
    stored = await view.get("c1")
    assert stored == {"tier": "A", "score": "71.5", "at_risk": "1", "annual_value": "250.0", "recency_days": "",
                      "components": '[{"name":"recency","value":3,"points":1.5}]', "segment": "loyal"}
    assert await view.client.zscore(view.key("tier", "A"), "c1") == 71.5
    assert await view.client.zscore(view.key("at_risk"), "c1") == 250.0


async def test_a_customer_is_in_exactly_one_tier(view: RedisView) -> None:
    view.put("c1", profile("A", 71.5, at_risk=True))
    await view.flush()
    view.put("c1", profile("B", 40.0))
    await view.flush()
    assert await view.tier_counts() == {"AAA": 0, "A": 0, "B": 1, "C": 0}
    assert await view.client.zscore(view.key("at_risk"), "c1") is None


async def test_the_latest_profile_wins_before_a_flush(view: RedisView) -> None:
    view.put("c1", profile("C", 10.0))
    view.put("c1", profile("AAA", 95.0))
    assert view.stats.pending == 1
    assert await view.flush()
    assert view.stats.writes == 1 and view.stats.pending == 0
    assert (await view.get("c1") or {})["tier"] == "AAA"
    assert await view.tier_counts() == {"AAA": 1, "A": 0, "B": 0, "C": 0}


async def test_none_deletes_every_trace(view: RedisView) -> None:
    view.put("c1", profile("A", 70.0, at_risk=True))
    view.put("c2", profile("A", 60.0))
    await view.flush()
    view.put("c1", None)
    await view.flush()
    assert await view.get("c1") is None
    assert await keys(view) == {"customer:c2", "tier:A", "tier_revenue", "tier_revenue:customers"}
    assert await view.client.hkeys(view.key("tier_revenue", "customers")) == [b"c2"]  # c1 left no trace


async def test_each_tier_holds_its_customers_latest_window_spend(view: RedisView) -> None:
    """Every write moves the customer's previous spend out of its previous tier; a deletion takes it out."""
    for customer, tier, monetary in [("c1", "A", 100.25), ("c2", "A", 50.0), ("c3", "C", -20.5)]:
        view.put(customer, {**profile(tier, 50.0), "monetary": monetary})
    await view.flush()
    assert await view.tier_revenue() == {"AAA": 0, "A": 15_025, "B": 0, "C": -2_050}
    view.put("c1", {**profile("AAA", 90.0), "monetary": 300.1})  # up a tier, more spend
    view.put("c3", None)
    await view.flush()
    view.put("c2", {**profile("A", 55.0), "monetary": 50.0})  # rewritten unchanged: no change
    await view.flush()
    assert await view.tier_revenue() == {"AAA": 30_010, "A": 5_000, "B": 0, "C": 0}


async def test_a_profile_written_before_tier_revenue_existed_takes_nothing_out(view: RedisView) -> None:
    """An older tierstream wrote the profile hash and the tier index, no revenue: its next write adds the new
    spend and takes out nothing (it used to take the never-added spend out, leaving the tier negative)."""
    await view.client.hset(view.key("customer", "old"), mapping={"tier": "A", "score": 70.0, "monetary": 400.0})
    await view.client.zadd(view.key("tier", "A"), {"old": 70.0})
    view.put("old", {**profile("B", 45.0), "monetary": 120.0})
    view.put("new", {**profile("A", 72.0), "monetary": 80.0})
    assert await view.flush()
    assert await view.tier_revenue() == {"AAA": 0, "A": 8_000, "B": 12_000, "C": 0}
    await view.reset_tier_revenue()  # what redis-resync does before it writes every profile again
    assert await view.tier_revenue() == {"AAA": 0, "A": 0, "B": 0, "C": 0}
    view.put("old", {**profile("B", 45.0), "monetary": 120.0})
    assert await view.flush()
    assert await view.tier_revenue() == {"AAA": 0, "A": 0, "B": 12_000, "C": 0}  # "new" is counted once written


async def test_a_customer_with_no_spend_or_a_large_spend_is_rewritten_without_a_redis_error(view: RedisView) -> None:
    """A Lua number passed to HINCRBY is sent as "-0" (no spend) or "1e+15" (large): Redis refuses both, and
    the whole batch of profile writes used to fail and be retried for ever."""
    for monetary in (0.0, 12_345_678_901_234.56, 0.0):
        view.put("zero", {**profile("B", 40.0), "monetary": monetary})
        view.put("other", {**profile("C", 10.0), "monetary": 1.0})
        assert await view.flush(), view.stats.last_error
    assert await view.tier_revenue() == {"AAA": 0, "A": 0, "B": 0, "C": 100}


async def test_top_at_risk_ranks_by_annual_value(view: RedisView) -> None:
    for customer, value in [("low", 10.0), ("high", 900.0), ("mid", 300.0)]:
        view.put(customer, profile("B", 40.0, at_risk=True, annual_value=value))
    view.put("safe", profile("B", 40.0, annual_value=5000.0))
    await view.flush()
    top = await view.top_at_risk(2, ("tier", "annual_value"))
    assert top == [("high", ["B", "900.0"]), ("mid", ["B", "300.0"])]


async def test_frequency_caps_count_sends_in_the_window_and_the_cooldown(view: RedisView) -> None:
    cap = FrequencyCap(max_count=2, per_days=7, cooldown_days=1)
    day = 86_400.0
    assert await view.check_cap("c1", "call", "a1", 0.0, cap) == (True, "ok")
    assert await view.check_cap("c1", "call", "a1", 10.0, cap) == (True, "resend")  # the same action again
    assert await view.check_cap("c1", "call", "a2", 0.5 * day, cap) == (False, "cooldown")
    assert await view.check_cap("c1", "call", "a3", 2 * day, cap) == (True, "ok")
    assert await view.check_cap("c1", "call", "a4", 4 * day, cap) == (False, "cap")
    assert await view.check_cap("c1", "call", "a5", 8 * day, cap) == (True, "ok")  # a1 left the window
    assert await view.check_cap("c1", "email", "a6", 4 * day, cap) == (True, "ok")  # another type's own cap
    assert await keys(view) == {"cap:c1:call", "cap:c1:email"}
    assert 0 < await view.client.ttl(view.key("cap", "c1", "call")) <= 7 * 86_400 + 60


@pytest.mark.parametrize("seed", range(6))
async def test_the_python_cap_check_is_the_script(view: RedisView, seed: int) -> None:
    """`streams.caps.cap_check` (what `tierstream bootstrap` plays) answers as the cap script and leaves the same
    set, send by send: resends, the window's edge (a send exactly one window old leaves it), the cooldown longer
    or shorter than the window, ms-precise event times (as `at_ms / 1000`), refusals not recorded."""
    rng = random.Random(seed)
    day = 86_400
    cap = FrequencyCap(max_count=rng.choice([1, 2, 3]), per_days=rng.choice([0.5, 1, 7, 2.3]),
                       cooldown_days=rng.choice([0, 0.25, 1, 9]))
    sent: dict[str, float] = {}
    key = view.key("cap", "c1", "call")
    at_ms, ids = 1_700_000_000_123, list[str]()
    for n in range(120):
        if ids and rng.random() < 0.15:
            action = rng.choice(ids)  # an action checked before, again (a resend, or a refused one again)
        else:
            action = f"a{n}"
            ids.append(action)
        step = rng.choice([0, 1, 3_600_000, day * 1000 // 3, int(cap.per_days * day * 1000), rng.randrange(day * 3000)])
        at_ms += step
        want = await view.check_cap("c1", "call", action, at_ms / 1000, cap)
        assert cap_check(sent, action, at_ms / 1000, cap) == want, (n, action, at_ms)
        pairs: list[tuple[bytes, float]] = await view.client.zrange(key, 0, -1, withscores=True)  # type: ignore[assignment]
        stored = {member.decode(): score for member, score in pairs}
        assert sent == stored, n
    ttl = await view.client.ttl(key)
    assert cap_ttl_seconds(cap) - 5 <= ttl <= cap_ttl_seconds(cap)


async def test_a_forgotten_customer_leaves_no_frequency_cap_keys(view: RedisView) -> None:
    view.cap_types = ("call",)
    cap = FrequencyCap(max_count=2, per_days=7)
    assert await view.check_cap("c1", "call", "a1", 0.0, cap) == (True, "ok")
    assert await view.check_cap("c2", "call", "a2", 0.0, cap) == (True, "ok")
    view.put("c1", profile("A", 70.0))
    await view.flush()
    view.put("c1", None)
    await view.flush()
    assert await keys(view) == {"cap:c2:call", "tier_revenue"}  # c1 was the only one in tier A


async def test_the_hash_holds_the_texts_redis_py_sends_for_each_value(view: RedisView) -> None:
    # the profiles travel as JSON to one script call: each stored value must be what HSET with redis-py's own
    # encoding would have stored (repr of numbers, 1/0 for booleans, "" for None, JSON of lists)
    values: dict[str, Any] = {"tier": "A", "score": 0.1 + 0.2, "at_risk": False, "annual_value": 1e-7,
                              "monetary": 12345678.9, "frequency": 10**15, "negative": -0.0, "ratio": 1 / 3,
                              "recency_days": None, "segment": "fidèle \"vip\" \\ 顧客", "empty": "",
                              "components": [{"name": "r", "value": 2.5, "points": -1.25}]}
    view.put("c1", values)
    assert await view.flush()
    raw = await view.client.hgetall(view.key("customer", "c1"))
    assert {k.decode(): v for k, v in raw.items()} == {
        "tier": b"A", "score": b"0.30000000000000004", "at_risk": b"0", "annual_value": b"1e-07",
        "monetary": b"12345678.9", "frequency": b"1000000000000000", "negative": b"-0.0",
        "ratio": b"0.3333333333333333", "recency_days": b"", "segment": "fidèle \"vip\" \\ 顧客".encode(),
        "empty": b"", "components": b'[{"name":"r","value":2.5,"points":-1.25}]'}


async def test_many_profiles_in_several_calls_each_in_its_own_tier(view: RedisView) -> None:
    count = PROFILES_PER_CALL * 2 + 7  # three script calls, the last one partial
    tiers = [*TIERS, "LEGACY"]  # a tier outside the configuration gets its own set
    for i in range(count):
        view.put(f"c{i}", {**profile(tiers[i % 5], float(i), at_risk=i % 3 == 0), "monetary": i / 100})
    assert await view.flush()
    for tier in tiers:
        members = {m.decode() for m in await view.client.zrange(view.key("tier", tier), 0, -1)}
        assert members == {f"c{i}" for i in range(count) if i % 5 == tiers.index(tier)}
    at_risk = {m.decode() for m in await view.client.zrange(view.key("at_risk"), 0, -1)}
    assert at_risk == {f"c{i}" for i in range(count) if i % 3 == 0}
    assert (await view.get(f"c{count - 1}"))["score"] == repr(float(count - 1))
    revenue = await view.client.hgetall(view.key("tier_revenue"))
    assert {k.decode(): int(v) for k, v in revenue.items()} == {
        tier: sum(i for i in range(count) if i % 5 == n) for n, tier in enumerate(tiers)}
