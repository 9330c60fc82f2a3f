"""`streams.offline.bootstrap.build`: the states a worker with `clock: event` holds after a history, without a
broker: each customer's state equals `replay --exact`'s (the core stepped event by event, then the sweep's
reviews to the day before its partition's latest event), in one process or several, and the build is
deterministic (the same bytes twice)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import polars as pl
import pytest

from scoring.codec import decode_state
from scoring.config import ScoringConfig
from scoring.events import MS_PER_DAY
from streams.offline.bootstrap import FUTURE_REASON, JUMP_REASON, build, jumps
from streams.offline.history import BadRow, CsvLayout, Inputs
from streams.partitioning import canonical_partition
from streams.settings import TopicNames
from tests.kits.faults import expect, history, last_day, moment, with_closers

PARTITIONS = 4
CONFIG = ScoringConfig.model_validate({"tiering": "absolute", "global_holdout_share": 0.3,
                                      "retention": {"forget_after_days": 400}})
NOW_MS = 4_000_000_000_000  # 2096: every generated event is in the past


def jsonl(path: Path, docs: list[dict[str, Any]]) -> Inputs:
    path.write_text("".join(json.dumps(d) + "\n" for d in docs))
    return Inputs((path,), CsvLayout())


@pytest.mark.parametrize("jobs", [1, 2])
def test_states_are_replay_exact_with_the_sweeps_reviews(tmp_path: Path, jobs: int) -> None:
    docs = with_closers(history(7, customers=60, min_events=600, days=200), PARTITIONS, "f7-")
    expected = expect(docs, CONFIG, TopicNames(), last_day(docs))
    built, stats = build(jsonl(tmp_path / "h.jsonl", docs), CONFIG, PARTITIONS, NOW_MS, max_future_ms=0, jobs=jobs)
    states = {b.customer: decode_state(b.state) for b in built if b.state is not None and "closer" not in b.customer}
    assert states == expected.states
    forgotten = {b.customer for b in built if b.state is None}
    assert forgotten == expected.everyone - set(expected.states)
    assert stats.processes == jobs and stats.bad == 0 and stats.events == len(docs)
    assert all(b.partition == canonical_partition(b.customer, PARTITIONS) for b in built)
    assert [(b.partition, b.customer) for b in built] == sorted((b.partition, b.customer) for b in built)


def test_each_partition_is_reviewed_to_the_day_before_its_latest_event(tmp_path: Path) -> None:
    docs = history(8, customers=40, min_events=300, days=150)  # no closers: the partitions end on other days
    built, stats = build(jsonl(tmp_path / "h.jsonl", docs), CONFIG, PARTITIONS, NOW_MS, max_future_ms=0)
    latest: dict[int, int] = {}
    for doc in docs:
        p = canonical_partition(doc["customer_id"], PARTITIONS)
        latest[p] = max(latest.get(p, 0), int(moment(doc).timestamp() * 1000))
    assert stats.review_days == {p: at // MS_PER_DAY - 1 for p, at in latest.items()}
    for p, day in stats.review_days.items():
        mine = [d for d in docs if canonical_partition(d["customer_id"], PARTITIONS) == p]
        want = expect(mine, CONFIG, TopicNames(), day).states
        got = {b.customer: decode_state(b.state) for b in built if b.partition == p and b.state is not None}
        assert got == want


def test_the_same_history_builds_the_same_bytes(tmp_path: Path) -> None:
    docs = history(9, customers=30, min_events=300, days=120)
    inputs = jsonl(tmp_path / "h.jsonl", docs)
    first, _ = build(inputs, CONFIG, PARTITIONS, NOW_MS, max_future_ms=0, jobs=2)
    second, _ = build(inputs, CONFIG, PARTITIONS, NOW_MS, max_future_ms=0, jobs=1)
    assert first == second
    assert all(b.snapshot is not None and b.profile is not None for b in first if b.state is not None)


def test_bad_rows_and_future_events_are_reported_with_file_and_line(tmp_path: Path) -> None:
    path = tmp_path / "p.csv"
    path.write_text("customer_id,occurred_at,amount\nc1,2024-01-02,10.00\nc1,yesterday,5\nc2,2099-01-03,7.50\n")
    bad: list[BadRow] = []
    built, stats = build(Inputs((path,), CsvLayout()), CONFIG, PARTITIONS, NOW_MS // 2, max_future_ms=0,
                         on_bad=bad.append)
    assert [(b.source, b.line) for b in bad] == [(str(path), 3), (str(path), 4)]
    assert bad[1].reason == FUTURE_REASON
    assert (stats.rows, stats.bad, stats.future, stats.events) == (3, 1, 1, 1)
    assert [b.customer for b in built] == ["c1"]


def test_a_csv_s_items_reach_the_built_states(tmp_path: Path) -> None:
    """--item-col/--category-col: the states a bootstrap builds keep each customer's categories, those of the
    core's fold of the same rows (the category column's, else the item's; none for a refund)."""
    from streams.offline.replay import ReplayStats, population

    path = tmp_path / "lines.csv"
    path.write_text("customer_id,occurred_at,amount,sku,category\nc1,2024-01-01,10,85123A,kitchen\n"
                    "c1,2024-01-05,4,22423,\nc2,2024-01-03,-4,85123A,kitchen\nc2,2024-01-04,2,84029E,garden\n"
                    "c3,2024-01-04,2,,\n")
    inputs = Inputs((path,), CsvLayout(item="sku", category="category"))
    built, stats = build(inputs, CONFIG, PARTITIONS, NOW_MS, max_future_ms=0)
    states = {b.customer: decode_state(b.state).categories for b in built if b.state is not None}
    folded = population(inputs.rows(), 19_800, CONFIG, ReplayStats())
    assert states == {customer: state.categories for customer, state in folded.items()}
    assert states["c1"] == (("22423", 19_727), ("kitchen", 19_723)) and states["c2"] == (("garden", 19_726),)
    assert states["c3"] == () and stats.bad == 0


DAY_MS = MS_PER_DAY


@pytest.mark.parametrize(("times", "refused"), [
    ([0, 1, 2, 3], []),
    ([0, 10, 40, 11, 12], [2]),  # a typo'd far-off time: refused, and it moves nothing
    ([0, 40, 41, 5], [1, 2]),  # a refused event does not count as seen: the next one is judged from 0 too
    ([0, 10, 20, 30, 40, 50], []),  # steps within the jump, each from the last accepted
    ([100, 0, 5, 111, 200], [4]),  # an early time moves nothing back: the latest stays 100
    ([-500, 0, 1], [1, 2]),  # a first row typo'd into the past: all later ones are far after it (as a worker)
])
def test_events_beyond_the_max_jump_are_those_a_worker_refuses(times: list[int], refused: list[int]) -> None:
    got = jumps(pl.Series([t * DAY_MS for t in times], dtype=pl.Int64), 15 * DAY_MS)
    assert got.arg_true().to_list() == refused


def test_an_event_beyond_the_max_jump_is_reported_and_built_into_no_state(tmp_path: Path) -> None:
    """A typo'd year in the middle of a history: refused with its file and line, as a worker with `clock: event`
    dead-letters it, and every state is the one of the history without it."""
    docs = with_closers(history(11, customers=30, min_events=300, days=120), PARTITIONS, "f11-")
    far = dict(docs[len(docs) // 2], event_id="typo-1")
    far["occurred_at"] = far["occurred_at"].replace("2024-", "2034-", 1)
    assert far["occurred_at"].startswith("2034-")
    with_typo = [*docs[: len(docs) // 2], far, *docs[len(docs) // 2:]]
    bad: list[BadRow] = []
    built, stats = build(jsonl(tmp_path / "typo.jsonl", with_typo), CONFIG, PARTITIONS, NOW_MS, max_future_ms=0,
                         max_jump_ms=366 * DAY_MS, on_bad=bad.append)
    assert [(b.line, b.source) for b in bad] == [(len(docs) // 2 + 1, str(tmp_path / "typo.jsonl"))]
    assert bad[0].reason == JUMP_REASON.format(days=366) and "event_clock_max_jump_days (366)" in bad[0].reason
    assert (stats.jumped, stats.events, stats.bad) == (1, len(docs), 0)
    clean, _ = build(jsonl(tmp_path / "clean.jsonl", docs), CONFIG, PARTITIONS, NOW_MS, max_future_ms=0,
                     max_jump_ms=366 * DAY_MS)
    assert built == clean
    everything, _ = build(jsonl(tmp_path / "typo.jsonl", with_typo), CONFIG, PARTITIONS, NOW_MS, max_future_ms=0)
    assert everything != clean  # without the limit the typo is built in (the test compares something)
