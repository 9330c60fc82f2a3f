"""`tierstream bootstrap` then live events ends where a backfill of the same history then the same live events
ends (both workers with `clock: event`), on the real broker and Redis.

A seeded mixed history (generator personas: returns, complaints, enquiries, lapses, redelivered copies) is cut
at a day: the events before it are the history (with one closing purchase per partition, so every partition's
event clock reaches the same day), the events after it are live (with their own closers), and a few history
events come again among the live ones (late redeliveries: the outbox must resend their outputs).

- Group A: `tierstream backfill` of the history through its worker, then of the live events.
- Group B: `tierstream bootstrap` of the history before its worker starts, then `backfill` of the live events.

Both end with every customer's state equal to `replay --exact` of everything (`tests.kits.faults.expect`), B's
table equals the replay of the history alone right after the bootstrap, and the outputs B sends (every tier
change, action, hold-out, outcome and alert, by id and content) are exactly those A sent for the live events;
each customer's latest score snapshot on B's scores topic is the replay's.

Also: running bootstrap twice leaves the same table (latest value per key, byte for byte) and the same Redis
keys and values; it refuses while the app's workers consume; bad rows are reported with file and line, a
history whose every row is bad exits 2 with a one-line hint, bad arguments are one line.
"""

from __future__ import annotations

import json
import os
import random
from collections.abc import AsyncIterator
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
import redis.asyncio as aioredis

from streams.kafka import ensure_topics
from streams.serving.resync import read_table
from streams.settings import Settings, load_settings
from tests.kits.faults import (
    CLOSER,
    Expected,
    OutputIndex,
    assert_nothing_lost,
    expect,
    history,
    last_day,
    moment,
    settle,
    strip,
    table_states,
    wait_states,
    with_closers,
)
from tests.kits.stream import PARTITIONS, Out, StartStream, StreamGroup, run_cli, stream_config, write_config

pytestmark = pytest.mark.integration

SETTINGS: dict[str, Any] = {
    "clock": "event", "review_interval_seconds": 0.3, "producer_max_batch_size": 1,
    "scoring": {"tiering": "absolute", "global_holdout_share": 0.3, "retention": {"forget_after_days": 400}}}
LATE = 4  # history events redelivered among the live ones


def split_history(seed: int) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """(history with closers, live events with closers): cut at the day 70 % of the events are before."""
    docs = history(seed, customers=150, min_events=2_000, days=300, prefix=f"bs{seed}-")
    cut = moment(docs[int(len(docs) * 0.7)]).date()
    before = [d for d in docs if moment(d).date() < cut]
    past = with_closers(before, PARTITIONS, f"bs{seed}-h")
    closed = max(moment(d) for d in past)
    after = [d for d in docs if moment(d) >= closed + timedelta(days=1)]
    rng = random.Random(seed)
    late = [dict(d) for d in rng.sample(before[-200:], k=LATE)]
    live = with_closers([*after[: len(after) // 2], *late, *after[len(after) // 2:]], PARTITIONS, f"bs{seed}-l")
    return past, live


def write_jsonl(path: Path, docs: list[dict[str, Any]]) -> Path:
    path.write_text("".join(json.dumps(d) + "\n" for d in docs))
    return path


async def cli_ok(*args: str) -> str:
    done = await run_cli(*args, limit=600)
    assert done.returncode == 0, f"tierstream {' '.join(args[:2])}: exit {done.returncode}\n{done.stderr[-3000:]}"
    return done.stderr


def sent(records: list[Out], group: StreamGroup) -> set[tuple[str, str, str]]:
    """(topic, id, content) of every tier change, action, hold-out, outcome and alert among `records`."""
    t = group.topics
    wanted = {t.tier_changes: "tier_changes", t.actions: "actions", t.holdouts: "holdouts", t.outcomes: "outcomes",
              t.alerts: "alerts"}
    return {(wanted[r.topic], str(r.value["id"]), json.dumps(strip(r.value), sort_keys=True))
            for r in records if r.topic in wanted and CLOSER not in str(r.value.get("customer_id"))}


def snapshot_problems(index: OutputIndex, expected: Expected) -> list[str]:
    """Customers whose latest snapshot read is not the replay's last one."""
    index.update()
    return [c for c, want in expected.last_snapshot.items()
            if (got := index.latest_snapshot(c)) is None or strip(got.value) != want]


@pytest.fixture(scope="module")
def seed() -> int:
    value = int(os.environ.get("TEST_SEED") or random.randrange(1_000_000))  # set: rerun a seed
    print(f"history seed {value}", flush=True)
    return value


@pytest.fixture(scope="module")
def histories(seed: int, tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path, list[Any], list[Any]]:
    past, live = split_history(seed)
    folder = tmp_path_factory.mktemp("bootstrap")
    return write_jsonl(folder / "history.jsonl", past), write_jsonl(folder / "live.jsonl", live), past, live


@pytest.fixture(scope="module")
async def backfilled(start_stream: StartStream) -> AsyncIterator[StreamGroup]:
    async with start_stream("bsa", **SETTINGS) as group:
        yield group


async def test_bootstrap_then_live_equals_backfill_then_live(
    start_stream: StartStream, backfilled: StreamGroup, histories: tuple[Path, Path, list[Any], list[Any]],
) -> None:
    history_file, live_file, past, live = histories
    a = backfilled
    config = a.settings.scoring
    expected_past = expect(past, config, a.topics, last_day(past))
    expected_all = expect([*past, *live], config, a.topics, last_day([*past, *live]))

    await cli_ok("backfill", str(history_file), "--config", str(a.config_path))
    index_a = OutputIndex(a)
    assert_nothing_lost(*await settle(a, index_a, expected_past), expected_past, index_a)
    mark = len(a.outputs.records)
    await cli_ok("backfill", str(live_file), "--config", str(a.config_path))
    assert_nothing_lost(*await settle(a, index_a, expected_all), expected_all, index_a)
    live_a = sent(a.outputs.records[mark:], a)
    assert live_a, "the live events caused no output: the test compares nothing"

    summaries: list[str] = []

    async def bootstrap(settings: Settings, config_path: Path) -> None:
        summaries.append(await cli_ok("bootstrap", str(history_file), "--config", str(config_path)))
        await wait_states(settings, expected_past, within=60)  # the table is the history's replay, reviews included

    async with start_stream("bsb", prepare=bootstrap, **SETTINGS) as b:
        assert "bootstrapped in" in summaries[0], summaries[0]
        await cli_ok("backfill", str(live_file), "--config", str(b.config_path))
        index_b = OutputIndex(b)
        await b.outputs.wait_for(lambda: {oid for _, oid, _ in live_a} <= {oid for _, oid, _ in sent(
            b.outputs.records, b)}, "every output A sent for the live events", within=300)
        await b.outputs.wait_for(lambda: not snapshot_problems(index_b, expected_all),
                                 "each customer's latest snapshot", within=120)
        await wait_states(b.settings, expected_all, within=120)
        live_b = sent(b.outputs.records, b)
        assert live_b == live_a, (sorted(live_b - live_a)[:3], sorted(live_a - live_b)[:3])
        resent = {oid for _, oid, _ in live_a} & set(expected_past.outputs)
        print(f"{len(expected_all.states)} customers, {len(live_a)} live outputs equal ({len(resent)} of them resent "
              f"from the outbox for late redeliveries); {summaries[0].strip().splitlines()[-1]}", flush=True)
        table_a = await table_states(a.settings, expected_all.customers)
        table_b = await table_states(b.settings, expected_all.customers)
        assert table_a.keys() == table_b.keys()


async def test_bootstrap_twice_leaves_the_same_table_and_view(
    kafka_bootstrap: str, redis_url: str, key_prefix: str, tmp_path: Path,
    histories: tuple[Path, Path, list[Any], list[Any]], redis: aioredis.Redis,
) -> None:
    history_file = histories[0]
    config_path = tmp_path / "tierstream.yaml"
    settings = write_config(config_path, stream_config("bsi", kafka_bootstrap, redis_url, key_prefix, tmp_path,
                                                       **SETTINGS))
    await ensure_topics(settings)
    first = await cli_ok("bootstrap", str(history_file), "--config", str(config_path))
    table_1, view_1 = (await read_table(settings, idle_timeout=2.0, gapless=True))[0], await dump(redis, settings)
    second = await cli_ok("bootstrap", str(history_file), "--config", str(config_path))
    table_2, view_2 = (await read_table(settings, idle_timeout=2.0, gapless=True))[0], await dump(redis, settings)
    assert table_1 and view_1
    assert table_2 == table_1
    assert view_2 == view_1
    assert "held" not in first and "held" in second, second


async def dump(redis: aioredis.Redis, settings: Settings) -> dict[str, Any]:
    """Every key under the group's prefix and its value (hashes and sorted sets)."""
    out: dict[str, Any] = {}
    async for key in redis.scan_iter(match=f"{settings.redis_prefix}*", count=1000):
        kind = await redis.type(key)
        if kind == "hash":
            out[key] = await redis.hgetall(key)
        elif kind == "zset":
            out[key] = await redis.zrange(key, 0, -1, withscores=True)
        else:
            out[key] = kind
    return out


async def test_bootstrap_refuses_while_workers_consume(
    backfilled: StreamGroup, histories: tuple[Path, Path, list[Any], list[Any]],
) -> None:
    before, _ = await read_table(backfilled.settings, idle_timeout=1.0)
    done = await run_cli("bootstrap", str(histories[0]), "--config", str(backfilled.config_path))
    assert done.returncode == 1, done.stderr
    assert done.stderr.count("\n") == 1 and "workers are consuming" in done.stderr, done.stderr
    assert backfilled.settings.app_id in done.stderr
    after, _ = await read_table(backfilled.settings, idle_timeout=1.0)
    assert after == before


@pytest.fixture
async def idle_config(kafka_bootstrap: str, redis_url: str, key_prefix: str, tmp_path: Path) -> Path:
    """A config whose topics exist and whose workers never started."""
    config_path = tmp_path / "tierstream.yaml"
    await ensure_topics(write_config(config_path, stream_config("bsx", kafka_bootstrap, redis_url, key_prefix,
                                                                tmp_path)))
    return config_path


async def test_bad_rows_are_reported_with_file_and_line(idle_config: Path, tmp_path: Path) -> None:
    csv = tmp_path / "purchases.csv"
    csv.write_text("customer_id,occurred_at,amount\nc1,2024-01-02,10.00\nc1,yesterday,5\nc2,2024-01-03,7.50\n")
    done = await run_cli("bootstrap", str(csv), "--config", str(idle_config))
    assert done.returncode == 0, done.stderr
    assert f"{csv}, line 3:" in done.stderr, done.stderr
    assert "customers 2 " in done.stderr and "1 bad" in done.stderr, done.stderr
    states = await table_states(load_settings(idle_config))
    assert set(states) == {"c1", "c2"}


async def test_a_history_of_bad_rows_exits_2_with_a_hint(idle_config: Path, tmp_path: Path) -> None:
    csv = tmp_path / "purchases.csv"
    csv.write_text("customer_id,occurred_at,amount\nc1,02/01/2024,10.00\nc2,03/01/2024,7.50\n")
    done = await run_cli("bootstrap", str(csv), "--config", str(idle_config))
    assert done.returncode == 2, done.stderr
    last = done.stderr.strip().splitlines()[-1]
    assert last.startswith("tierstream: error:") and "check --date-format" in last, done.stderr
    assert "Traceback" not in done.stderr


@pytest.mark.parametrize("args", [
    ["--jobs", "0"], ["--timezone", "Mars/Olympus"], ["--no-such-option"], [],
])
async def test_bad_arguments_are_one_line(idle_config: Path, tmp_path: Path, args: list[str]) -> None:
    csv = tmp_path / "purchases.csv"
    csv.write_text("customer_id,occurred_at,amount\nc1,2024-01-02,10.00\n")
    files = [] if args == [] else [str(csv)]
    done = await run_cli("bootstrap", *files, *args, "--config", str(idle_config))
    assert done.returncode == 2, done.stderr
    assert done.stderr.count("\n") == 1 and done.stderr.startswith("tierstream: error:"), done.stderr


async def test_a_missing_file_is_one_line(idle_config: Path, tmp_path: Path) -> None:
    done = await run_cli("bootstrap", str(tmp_path / "nope.csv"), "--config", str(idle_config))
    assert done.returncode == 2 and done.stderr.count("\n") == 1, done.stderr



# ----------------------------------------------------------------------------- frequency caps, the max jump
CAPS = {"upgrade_thanks": {"max_count": 1, "per_days": 90}, "win_back_offer": {"max_count": 1, "per_days": 60},
        "retention_call": {"max_count": 1, "per_days": 90}, "vip_welcome": {"max_count": 1, "per_days": 90},
        "nurture_offer": {"max_count": 2, "per_days": 120, "cooldown_days": 20},
        "account_review": {"max_count": 1, "per_days": 90}}
CAPPED = {**SETTINGS, "event_clock_max_jump_days": 20, "scoring": {**SETTINGS["scoring"], "frequency_caps": CAPS}}
TYPO_DAYS = 60  # after the history's end: beyond the max jump, inside the live events' span (and in the past)


def with_typo(past: list[dict[str, Any]]) -> tuple[list[dict[str, Any]], int]:
    """The history with a purchase copied to a typo'd date in its middle (TYPO_DAYS after its end), and that
    event's line."""
    where = len(past) // 2
    base = next(d for d in past[where:] if d.get("type") == "purchase" and CLOSER not in d["customer_id"])
    end = max(moment(d) for d in past)
    typo = {**base, "event_id": f"{base['event_id']}-typo",
            "occurred_at": (end + timedelta(days=TYPO_DAYS)).isoformat().replace("+00:00", "Z")}
    return [*past[:where], typo, *past[where:]], where + 1


async def cap_keys(redis: aioredis.Redis, settings: Settings) -> dict[str, tuple[list[Any], int]]:
    """Every frequency-cap key of a group (without its prefix): its members and send times, and its TTL (s)."""
    out = {}
    async for key in redis.scan_iter(match=f"{settings.redis_prefix}cap:*", count=1000):
        out[key[len(settings.redis_prefix):]] = (await redis.zrange(key, 0, -1, withscores=True), await redis.ttl(key))
    return out


def same_caps(a: dict[str, tuple[list[Any], int]], b: dict[str, tuple[list[Any], int]]) -> None:
    """The same keys, members and send times; each with an expiry no later than the script gives one (a's
    counted down since its last send, b's since the bootstrap)."""
    assert {k: v[0] for k, v in a.items()} == {k: v[0] for k, v in b.items()}
    for key, (_, ttl) in [*a.items(), *b.items()]:
        kind = key.rsplit(":", 1)[1]
        cap = CAPS[kind]
        assert 0 < ttl <= max(cap["per_days"], cap.get("cooldown_days", 0)) * 86_400 + 60, (key, ttl)


async def test_bootstrap_rebuilds_the_frequency_caps_and_refuses_the_max_jump_as_backfill(
    start_stream: StartStream, histories: tuple[Path, Path, list[Any], list[Any]], redis: aioredis.Redis,
    tmp_path: Path,
) -> None:
    """With frequency caps and `event_clock_max_jump_days`, bootstrap then live events ends as backfill then
    the same live events: the live actions a cap refuses (re-issued as skipped) and those it lets through are
    the same, the Redis cap keys are the same after the history and at the end, and a typo'd date in the
    history is refused by both (a dead letter `rejected` there, a reported row here), its states the history's
    without it."""
    _, live_file, past, live = histories
    typoed, typo_line = with_typo(past)
    history_file = write_jsonl(tmp_path / "history-typo.jsonl", typoed)
    async with start_stream("bsc", **CAPPED) as a:
        config = a.settings.scoring
        expected_past = expect(past, config, a.topics, last_day(past))  # without the typo: refused
        expected_all = expect([*past, *live], config, a.topics, last_day([*past, *live]))
        index_a = OutputIndex(a)
        await cli_ok("backfill", str(history_file), "--config", str(a.config_path))
        states, _ = await settle(a, index_a, expected_past)  # (contents differ from replay's: caps)
        assert states.ok
        assert [(r.value["error_type"], r.value["reason"]) for r in index_a.dlq] == [
            ("rejected", "occurred_at is more than 20 days after the latest event time seen (event clock)")]
        caps_a_past = await cap_keys(redis, a.settings)
        mark = len(a.outputs.records)
        await cli_ok("backfill", str(live_file), "--config", str(a.config_path))
        states, _ = await settle(a, index_a, expected_all)
        assert states.ok and len(index_a.dlq) == 1
        live_a = sent(a.outputs.records[mark:], a)
        caps_a = await cap_keys(redis, a.settings)
    capped_live = [oid for topic, oid, doc in live_a if "frequency cap:" in doc]
    assert capped_live and caps_a_past, "no cap refused a live action: the test compares nothing"

    summaries: list[str] = []

    async def bootstrap(settings: Settings, config_path: Path) -> None:
        summaries.append(await cli_ok("bootstrap", str(history_file), "--config", str(config_path)))
        await wait_states(settings, expected_past, within=60)

    async with start_stream("bsd", prepare=bootstrap, **CAPPED) as b:
        report = summaries[0]
        assert f"{history_file}, line {typo_line}: occurred more than event_clock_max_jump_days (20) after" in report
        assert "1 beyond event_clock_max_jump_days" in report, report
        same_caps(caps_a_past, await cap_keys(redis, b.settings))
        await cli_ok("backfill", str(live_file), "--config", str(b.config_path))
        await b.outputs.wait_for(lambda: {oid for _, oid, _ in live_a} <= {oid for _, oid, _ in sent(
            b.outputs.records, b)}, "every output A sent for the live events", within=300)
        await wait_states(b.settings, expected_all, within=120)
        live_b = sent(b.outputs.records, b)
        assert live_b == live_a, (sorted(live_b - live_a)[:3], sorted(live_a - live_b)[:3])
        same_caps(caps_a, await cap_keys(redis, b.settings))
        assert not OutputIndex(b).update().dlq
        print(f"{len(live_a)} live outputs equal, {len(capped_live)} live actions refused by a cap; "
              f"{len(caps_a_past)} cap keys after the history", flush=True)
