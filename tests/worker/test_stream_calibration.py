"""A worker given a calibration file tiers a backfill exactly as `replay --exact` with that file, and picks
up a new file live.

One worker, event clock, calibrated tiering, `calibration_path` set to a file holding the calibration of
the history's first half (`scoring.calibrate.calibrate` of the replay's states as of that half's last day).
A seeded mixed history (plus one closing purchase per partition) is produced to the mixed events topic;
the stream must end equal to `tests.kits.faults.expect` under the config the worker applies
(`streams.calibrationfile.applied`): the same tier changes, actions and alerts (ids and contents, with
`calibration_version` stamped), the same last snapshots and the same states.

Then the calibration of the whole history is written to the same path (atomically, as `tierstream
calibrate` does): /health reports its version, and the next event's outputs carry it.
"""

from __future__ import annotations

import json
import os
import random
import re
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from scoring.calibrate import calibrate
from scoring.calibration import Calibration
from scoring.config import ScoringConfig
from streams.calibrationfile import applied, load_calibration, save_calibration
from streams.settings import TopicNames
from tests.kits.faults import OutputIndex, assert_nothing_lost, expect, history, last_day, settle, with_closers
from tests.kits.stream import (
    PARTITIONS,
    StartStream,
    StreamGroup,
    Upstream,
    eventually,
    http_json,
    purchase,
    uid,
)

pytestmark = pytest.mark.integration

SEED = int(os.environ.get("TEST_SEED") or random.randrange(1_000_000))  # set: rerun a seed
EVENTS = with_closers(history(SEED, customers=120, min_events=1_500, days=360, prefix=f"cal{SEED}-"), PARTITIONS,
                      f"cal{SEED}-")
HALF = len(EVENTS) // 2
SETTINGS = {"clock": "event", "review_interval_seconds": 0.3, "producer_max_batch_size": 1,
            "model_poll_seconds": 0.2, "scoring": {"tiering": "calibrated"}}


def calibration_of(events: list[dict[str, object]], config: ScoringConfig, day: int) -> Calibration:
    """The calibration of these events' customers as of `day` (their replayed states)."""
    return calibrate(expect(events, config, TopicNames(), day).states.values(), day, config)


@pytest.fixture(scope="module")
def calibration_path(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("calibration") / "calibration.json"
    base = ScoringConfig(tiering="calibrated")
    first = EVENTS[:HALF]
    save_calibration(calibration_of(first, base, last_day(first)), path)
    return path


@pytest.fixture(scope="module")
async def stream(start_stream: StartStream, calibration_path: Path) -> AsyncIterator[StreamGroup]:
    async with start_stream("calib", calibration_path=str(calibration_path), **SETTINGS) as group:
        yield group


async def calibration_on_metrics(stream: StreamGroup) -> str:
    """The version /metrics reports in force (`tierstream_calibration{version=...} 1.0`, one line); the
    dashboard's data (what its "in force" line shows) reports the same."""
    status, text = await http_json("GET", f"{stream.worker.web_url}/metrics")
    assert status == 200
    [version] = re.findall(r'^tierstream_calibration\{version="([^"]+)"\} 1\.0$', text, re.M)
    status, summary = await http_json("GET", f"{stream.worker.web_url}/dashboard/summary")
    assert status == 200 and summary["versions"]["calibration"] == version
    return version


async def test_a_calibrated_backfill_equals_replay_exact_and_a_new_file_is_picked_up_live(
        stream: StreamGroup, upstream: Upstream, calibration_path: Path) -> None:
    print(f"history seed {SEED}, {len(EVENTS)} events", flush=True)
    first = load_calibration(calibration_path)
    config = applied(stream.settings.scoring, first, calibration_path)
    as_of_day = last_day(EVENTS)
    expected = expect(EVENTS, config, stream.topics, as_of_day)
    tier_changes = [doc for oid, doc in expected.outputs.items()  # PotentialChanged shares the topic
                    if expected.topics[oid] == stream.topics.tier_changes and "to_tier" in doc]
    assert len({doc["to_tier"] for doc in tier_changes}) >= 3, "the history reaches too few tiers to test anything"
    assert {doc["calibration_version"] for doc in tier_changes} == {first.version}

    health = await stream.worker.health()
    assert health is not None and health["calibration_version"] == first.version
    assert await calibration_on_metrics(stream) == first.version
    index = OutputIndex(stream)
    await upstream.send_all(stream.topics.events, EVENTS)
    states, check = await settle(stream, index, expected)
    assert_nothing_lost(states, check, expected, index)

    second = calibration_of(EVENTS, stream.settings.scoring, as_of_day)
    assert second.version != first.version
    save_calibration(second, calibration_path)

    async def second_in_force() -> bool:
        health = await stream.worker.health()
        return health is not None and health["calibration_version"] == second.version

    await eventually(second_in_force, f"the worker to report calibration {second.version}", within=60)
    assert await calibration_on_metrics(stream) == second.version
    later = datetime.fromtimestamp((as_of_day + 3) * 86_400, UTC) + timedelta(hours=12)
    customer = f"cal{SEED}-late-{uid('c')}"
    event = purchase(customer, "250.00", later)
    await upstream.send(stream.topics.events, event)
    snapshot = await stream.outputs.wait_score(customer, event["event_id"], within=90)
    assert snapshot["calibration_version"] == second.version
    assert snapshot["config_version"] == config.version

    # A bad new file: one line naming the field in the worker's log; the calibration in force is kept.
    bad = json.loads(second.to_json()) | {"shares": {"AAA": 0.5, "A": 0.15, "B": 0.3, "C": 0.5}}
    tmp = calibration_path.with_name(".bad.tmp")
    tmp.write_text(json.dumps(bad))
    os.replace(tmp, calibration_path)

    async def refused() -> str | None:
        lines = [line for line in stream.worker.log_tail(20_000).splitlines() if "keeping calibration" in line]
        return lines[-1] if lines else None

    line = await eventually(refused, "the worker to log the bad calibration file", within=30)
    assert "calibration: shares: " in line and f"keeping calibration {second.version}" in line, line
    health = await stream.worker.health()
    assert health is not None and health["calibration_version"] == second.version
    assert await calibration_on_metrics(stream) == second.version
