"""Redis serving view: every customer's latest profile, tier membership, frequency caps.

Key layout (all under the configured prefix, default `tierstream:`):
- `customer:{id}`   HASH  tier, score, r_score, f_score, m_score, segment, at_risk (0/1),
                          at_risk_score, annual_value, recency_days, frequency, monetary,
                          returns_amount, complaints, tenure_days, components (JSON),
                          updated_at (ISO 8601), version (config version), model_version,
                          p_alive, expected_purchases_90, expected_purchases_365, clv,
                          potential, potential_basis, value_potential_cell, satisfaction,
                          satisfaction_points, satisfaction_explanation, proposition, proposition_reason,
                          proposition_category
                          (the fields of `streams.profile.CustomerProfile.redis_fields`)
- `tier:{tier}`     ZSET  customer id -> composite score (a customer is in exactly one)
- `cap:{id}:{type}` ZSET  action id -> epoch seconds sent (expires after the cap window)
- `at_risk`         ZSET  customer id -> annual_value, customers whose latest profile is at risk
- `tier_revenue`    HASH  tier -> sum of its customers' `monetary` (the window's net spend), in cents (each
                          customer's rounded half up: a display total; profiles keep 4 decimals): kept
                          with each profile write by a script that takes out what the customer added
                          before (what /tiers reports value concentration from)
- `tier_revenue:customers` HASH  customer id -> "{tier} {cents}": what each customer adds to `tier_revenue`
                          (a profile written before it existed adds nothing until it is written again;
                          `redis-resync` starts both over and counts every customer)

A forgotten customer (`scoring.retention`) has its `customer:{id}` and `cap:{id}:{type}` keys deleted, its
entries in `tier:*` and `at_risk` removed and its spend taken out of `tier_revenue`.

Writes are buffered (latest profile per customer wins) and sent in pipelines.
When Redis is away the buffer is kept and retried with backoff; scoring never
waits on Redis, and the view converges once Redis is back.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import math
import time
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

from pydantic_core import to_json
from redis.asyncio import Redis
from redis.exceptions import RedisError

from scoring.config import FrequencyCap

log = logging.getLogger("tierstream.redis")

PROFILES_PER_CALL = 100  # customers per profile script call: Redis runs one ~3 ms, and nothing else meanwhile

# Atomic cap check: allowed when the action id was already recorded (a resend) or
# when fewer than max_count sends fall in the window and the cooldown has passed.
_CAP_SCRIPT = """
local key, id = KEYS[1], ARGV[1]
local now, window, max_count, cooldown = tonumber(ARGV[2]), tonumber(ARGV[3]), tonumber(ARGV[4]), tonumber(ARGV[5])
if redis.call('ZSCORE', key, id) then return {1, 'resend'} end
redis.call('ZREMRANGEBYSCORE', key, '-inf', now - window)
local last = redis.call('ZREVRANGE', key, 0, 0, 'WITHSCORES')
if last[2] and now - tonumber(last[2]) < cooldown then return {0, 'cooldown'} end
if redis.call('ZCARD', key) >= max_count then return {0, 'cap'} end
redis.call('ZADD', key, now, id)
redis.call('EXPIRE', key, math.ceil(math.max(window, cooldown)) + 60)
return {1, 'ok'}
"""

# A profile write's change to the per-tier revenue: what the customer added before out (as recorded in
# KEYS[2], not read from its profile: a profile written before the revenue existed was never added), the new in.
# KEYS: tier_revenue, tier_revenue:customers; ARGV: customer, new tier ('' when forgotten), new cents.
_REVENUE_SCRIPT = """
local old = redis.call('HGET', KEYS[2], ARGV[1])
if old then
  local tier, cents = string.match(old, '^(.*) (%-?%d+)$')
  -- as an integer string: a Lua number would be sent as "-0" or "1e+15", which HINCRBY refuses
  if tier and cents ~= '0' then redis.call('HINCRBY', KEYS[1], tier, string.format('%d', -tonumber(cents))) end
end
if ARGV[2] ~= '' then
  redis.call('HINCRBY', KEYS[1], ARGV[2], ARGV[3])
  redis.call('HSET', KEYS[2], ARGV[1], ARGV[2] .. ' ' .. ARGV[3])
else
  redis.call('HDEL', KEYS[2], ARGV[1])
end
return 1
"""


# Profile writes, many customers in one call. One script call per customer still cost ~140-240 us of the
# worker's CPU per profile in redis-py (its command packing of ~60 arguments, and the script call itself); here
# a chunk of customers travels as ONE JSON argument that the script decodes (`cjson`), ~40 us per profile: the
# hash's values are the strings redis-py would have sent (`_redis_text`), so Redis stores the same bytes.
# KEYS: tier_revenue, tier_revenue:customers, at_risk, tier:{t} for each configured tier (ARGV[2] of them), then
# tier:{t} of tiers outside the configuration met in the chunk, then customer:{id} of each row, in row order.
# ARGV[1]: JSON rows [customer, tier, cents, score, at_risk ('1' or ''), annual_value, [field, value, ...],
# KEYS index of the row's tier set]; ARGV[3]: the KEYS index of the first customer hash.
# Per row: the revenue moves as `_REVENUE_SCRIPT` does, the hash is set, the customer leaves every other
# configured tier set and enters its own, and enters or leaves the at-risk set.
_PROFILE_SCRIPT = """
local rows, tiers, first = cjson.decode(ARGV[1]), tonumber(ARGV[2]), tonumber(ARGV[3])
for i = 1, #rows do
  local row = rows[i]
  local customer, tier, cents, own = row[1], row[2], row[3], tonumber(row[8])
  local old = redis.call('HGET', KEYS[2], customer)
  if old then
    local was, was_cents = string.match(old, '^(.*) (%-?%d+)$')
    if was and was_cents ~= '0' then redis.call('HINCRBY', KEYS[1], was, string.format('%d', -tonumber(was_cents))) end
  end
  redis.call('HINCRBY', KEYS[1], tier, cents)
  redis.call('HSET', KEYS[2], customer, tier .. ' ' .. cents)
  redis.call('HSET', KEYS[first + i - 1], unpack(row[7]))
  for j = 4, 3 + tiers do if j ~= own then redis.call('ZREM', KEYS[j], customer) end end
  redis.call('ZADD', KEYS[own], row[4], customer)
  if row[5] == '1' then redis.call('ZADD', KEYS[3], row[6], customer) else redis.call('ZREM', KEYS[3], customer) end
end
return #rows
"""


@dataclass
class RedisStats:
    writes: int = 0
    flushes: int = 0
    errors: int = 0
    retries: int = 0
    pending: int = 0
    last_error: str = ""


@dataclass
class RedisView:
    """Buffered, pipelined writer and reader of the serving view."""

    client: Redis
    prefix: str
    tiers: tuple[str, ...]
    max_batch: int = 1000
    cap_types: tuple[str, ...] = ()  # action types with a frequency cap: a forgotten customer's cap keys go too
    stats: RedisStats = field(default_factory=RedisStats)
    _buffer: dict[str, dict[str, Any] | None] = field(default_factory=dict)
    _cap_sha: str | None = None
    _server_id: str | None = None
    _revenue: Any = field(init=False, repr=False)

    def __post_init__(self) -> None:
        self._revenue = self.client.register_script(_REVENUE_SCRIPT)
        self._profile = self.client.register_script(_PROFILE_SCRIPT)

    def key(self, *parts: str) -> str:
        return self.prefix + ":".join(parts)

    def put(self, customer: str, profile: Mapping[str, Any] | None) -> None:
        """Queue a customer's profile (must hold `tier` and `score`; None: delete the customer's keys);
        the latest wins."""
        self._buffer[customer] = None if profile is None else dict(profile)
        self.stats.pending = len(self._buffer)

    async def flush(self) -> bool:
        """Send what is buffered; False (buffer kept) when Redis fails."""
        while self._buffer:
            batch = dict(list(self._buffer.items())[: self.max_batch])
            try:
                await self._write(batch)
            except (RedisError, OSError) as exc:
                self.stats.errors += 1
                self.stats.last_error = f"{type(exc).__name__}: {exc}"[:300]
                return False
            for customer, profile in batch.items():
                if self._buffer.get(customer) is profile:
                    del self._buffer[customer]
            self.stats.writes += len(batch)
            self.stats.flushes += 1
        self.stats.pending = len(self._buffer)
        return True

    async def _write(self, batch: Mapping[str, Mapping[str, Any] | None]) -> None:
        pipe = self.client.pipeline(transaction=False)
        revenue, at_risk = [self.key("tier_revenue"), self.key("tier_revenue", "customers")], self.key("at_risk")
        written: list[tuple[str, Mapping[str, Any]]] = []
        for customer, profile in batch.items():
            if profile is not None:
                written.append((customer, profile))
                continue
            # forgotten: no trace left
            await self._revenue(keys=revenue, args=[customer, "", 0], client=pipe)
            pipe.delete(self.key("customer", customer), *(self.key("cap", customer, t) for t in self.cap_types))
            for tier in self.tiers:
                pipe.zrem(self.key("tier", tier), customer)
            pipe.zrem(at_risk, customer)
        for start in range(0, len(written), PROFILES_PER_CALL):
            if start:
                await asyncio.sleep(0)  # building a call is CPU work: let the worker step in between
            keys, args = self._profile_call(written[start:start + PROFILES_PER_CALL], [*revenue, at_risk])
            await self._profile(keys=keys, args=args, client=pipe)
        await pipe.execute()

    def _profile_call(
        self, chunk: list[tuple[str, Mapping[str, Any]]], shared: list[str],
    ) -> tuple[list[str], list[Any]]:
        """KEYS and ARGV of one `_PROFILE_SCRIPT` call writing `chunk`'s profiles (see the script)."""
        keys = [*shared, *(self.key("tier", tier) for tier in self.tiers)]
        index = {tier: i for i, tier in enumerate(self.tiers, start=len(shared) + 1)}  # Lua counts from 1
        rows = []
        for customer, profile in chunk:
            tier = str(profile["tier"])
            if tier not in index:  # a tier outside the configuration (an older config's): its own set only
                keys.append(self.key("tier", tier))
                index[tier] = len(keys)
            fields: list[str] = []
            for name, value in _flat(profile).items():
                fields += (name, _redis_text(value))
            rows.append([customer, tier, str(_cents(profile)), repr(float(profile["score"])),
                         "1" if profile.get("at_risk") else "", repr(float(profile.get("annual_value") or 0.0)),
                         fields, str(index[tier])])
        first = len(keys) + 1
        keys += [self.key("customer", customer) for customer, _ in chunk]
        return keys, [to_json(rows), len(self.tiers), first]

    async def server_restarted(self) -> bool:
        """True when Redis answers with another run_id than last time: a new server, its data may be gone."""
        info = await self.client.info("server")
        run_id = str(info.get("run_id", ""))
        restarted = self._server_id is not None and run_id != self._server_id
        self._server_id = run_id
        return restarted

    async def run(self, interval: float, stop: asyncio.Event,
                  on_restart: Callable[[], Awaitable[None]] | None = None, check_every: float = 1.0) -> None:
        """Flush every `interval` seconds; back off up to 5 s while Redis fails.

        With `on_restart`: every `check_every` seconds, and after Redis failed, the server's run_id is
        checked; a new one (a restarted Redis, which may have come back empty) calls `on_restart` to
        queue every profile again, so the view converges without an operator's `redis-resync`.
        """
        delay, checked, failed = interval, 0.0, False
        while not stop.is_set():
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stop.wait(), timeout=delay)
            ok = await self.flush()
            if ok and on_restart is not None and (failed or time.monotonic() - checked >= check_every):
                try:
                    if await self.server_restarted():
                        log.warning("redis restarted (new run_id): writing every owned customer's profile again")
                        await on_restart()
                    checked = time.monotonic()
                except (RedisError, OSError) as exc:
                    self.stats.errors += 1
                    self.stats.last_error = type(exc).__name__
                    ok = False
            if not ok:
                self.stats.retries += 1
                if delay == interval:
                    log.warning("redis write failed (%s); retrying with backoff", self.stats.last_error)
            failed = not ok
            delay = interval if ok else min(5.0, max(delay * 2, 0.1))
        await self.flush()

    async def get(self, customer: str) -> dict[str, str] | None:
        raw = await self.client.hgetall(self.key("customer", customer))
        if not raw:
            return None
        return {_text(k): _text(v) for k, v in raw.items()}

    async def tier_counts(self) -> dict[str, int]:
        pipe = self.client.pipeline(transaction=False)
        for tier in self.tiers:
            pipe.zcard(self.key("tier", tier))
        counts = await pipe.execute()
        return dict(zip(self.tiers, (int(c) for c in counts), strict=True))

    async def reset_tier_revenue(self) -> None:
        """Start the per-tier revenue over: every customer adds nothing until its profile is written again
        (`redis-resync` then writes every profile). Both keys go in one transaction, so a profile write
        meanwhile is counted once, before or after."""
        async with self.client.pipeline(transaction=True) as tx:
            tx.unlink(self.key("tier_revenue"), self.key("tier_revenue", "customers"))
            await tx.execute()

    async def tier_revenue(self) -> dict[str, int]:
        """Each tier's customers' window net spend (`monetary`), in cents."""
        raw = await self.client.hgetall(self.key("tier_revenue"))
        stored = {_text(k): int(v) for k, v in raw.items()}
        return {tier: stored.get(tier, 0) for tier in self.tiers}

    async def check_caps(self, checks: list[tuple[str, str, str, float, FrequencyCap]]) -> list[tuple[bool, str]]:
        """For each (customer, action type, action id, epoch seconds, cap): atomically record the send if
        the cap allows it; (allowed, why) in order. One round trip for the whole list."""
        if self._cap_sha is None:
            self._cap_sha = await self.client.script_load(_CAP_SCRIPT)
        pipe = self.client.pipeline(transaction=False)
        for customer, action_type, action_id, now_s, cap in checks:
            args: list[str | float] = [action_id, now_s, cap.per_days * 86_400, cap.max_count,
                                       cap.cooldown_days * 86_400]
            pipe.evalsha(self._cap_sha, 1, self.key("cap", customer, action_type), *args)
        answers = await pipe.execute()
        return [(bool(int(allowed)), _text(why)) for allowed, why in answers]

    async def check_cap(self, customer: str, action_type: str, action_id: str, now_s: float,
                        cap: FrequencyCap) -> tuple[bool, str]:
        """One cap check (see `check_caps`)."""
        return (await self.check_caps([(customer, action_type, action_id, now_s, cap)]))[0]

    async def top_at_risk(self, limit: int, fields: tuple[str, ...]) -> list[tuple[str, list[str | None]]]:
        """The `limit` most valuable customers of the at-risk index, with the given profile fields."""
        ranked = await self.client.zrevrange(self.key("at_risk"), 0, limit - 1)
        return await self.profiles([_text(c) for c in ranked], fields)  # type: ignore[arg-type]

    async def profiles(self, customers: list[str], fields: tuple[str, ...]) -> list[tuple[str, list[str | None]]]:
        """The given profile fields of each customer (None where missing), in one round trip."""
        if not customers:
            return []
        pipe = self.client.pipeline(transaction=False)
        for customer in customers:
            pipe.hmget(self.key("customer", customer), *fields)
        rows = await pipe.execute()
        return [(c, [None if v is None else _text(v) for v in row]) for c, row in zip(customers, rows, strict=True)]


def _flat(profile: Mapping[str, Any]) -> dict[str, str | float | int]:
    flat: dict[str, str | float | int] = {}
    for name, value in profile.items():
        if value is None:
            flat[name] = ""
        elif isinstance(value, bool):
            flat[name] = int(value)
        elif isinstance(value, (int, float, str)):
            flat[name] = value
        else:
            flat[name] = json.dumps(value, separators=(",", ":"), default=str)
    return flat


def _redis_text(value: str | float | int) -> str:
    """The text redis-py sends for an argument (`Encoder.encode`: `repr` of a number)."""
    return value if isinstance(value, str) else repr(value)


def _cents(profile: Mapping[str, Any]) -> int:
    """A profile's `monetary` in cents (half up)."""
    return math.floor(float(profile.get("monetary") or 0) * 100 + 0.5)


def _text(value: bytes | str) -> str:
    return value.decode() if isinstance(value, bytes) else value
