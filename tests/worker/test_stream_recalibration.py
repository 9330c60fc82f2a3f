"""Scheduled recalibration: two workers, each seeing only its partitions, converge on the calibration of the
whole population, the one `tierstream calibrate` makes of the same history.

Two workers (wall clock, calibrated tiering, no calibration file, `recalibrate_interval_seconds` short) are
given a seeded history that ends before today. Once every event is in, a later round's calibration is the
population's as of today: both workers must report, on /health, the version `tierstream calibrate HISTORY
--as-of TODAY --config <the workers' config>` writes (versions are content hashes: same version, same
artefact), and the outputs after it carry that version.
"""

from __future__ import annotations

import json
import os
import random
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from streams.calibrationfile import load_calibration
from tests.kits.faults import history
from tests.kits.stream import StartStream, StreamGroup, Upstream, eventually, purchase, run_cli, uid

pytestmark = pytest.mark.integration

SEED = int(os.environ.get("TEST_SEED") or random.randrange(1_000_000))  # set: rerun a seed
TODAY = datetime.now(UTC).replace(hour=0, minute=0, second=0, microsecond=0)
EVENTS = history(SEED, customers=150, min_events=0, days=240, prefix=f"rc{SEED}-", start=TODAY - timedelta(days=250))
SETTINGS = {"recalibrate_interval_seconds": 2.0, "scoring": {"tiering": "calibrated"}}


@pytest.fixture(scope="module")
async def stream(start_stream: StartStream) -> AsyncIterator[StreamGroup]:
    async with start_stream("recal", workers=2, **SETTINGS) as group:
        yield group


async def calibrate_cli(group: StreamGroup, tmp_path: Path, day: datetime = TODAY) -> str:
    """The version `tierstream calibrate` gives the history as of `day`, with the workers' config."""
    source, out = tmp_path / "history.jsonl", tmp_path / f"calibration-{day.date()}.json"
    source.write_text("".join(json.dumps(e) + "\n" for e in EVENTS))
    done = await run_cli("calibrate", str(source), "--as-of", day.date().isoformat(), "--out", str(out),
                         "--config", str(group.config_path))
    assert done.returncode == 0, done.stderr
    return load_calibration(out).version


async def test_two_workers_converge_on_the_calibration_of_the_whole_population(
        stream: StreamGroup, upstream: Upstream, tmp_path: Path) -> None:
    print(f"history seed {SEED}, {len(EVENTS)} events", flush=True)
    expected = await calibrate_cli(stream, tmp_path)
    await upstream.send_all(stream.topics.events, EVENTS)

    async def versions() -> list[str | None]:
        return [(h or {}).get("calibration_version") for h in [await w.health() for w in stream.workers]]

    async def converged() -> bool:
        return await versions() == [expected, expected]

    try:
        await eventually(converged, f"both workers on calibration {expected}", within=120, interval=0.5)
    except AssertionError:
        if datetime.now(UTC).date() == TODAY.date():
            raise
        # midnight passed while the test ran: the workers calibrate as of the new day
        expected = await calibrate_cli(stream, tmp_path, datetime.now(UTC))
        await eventually(converged, f"both workers on calibration {expected}", within=120, interval=0.5)
    customer = f"rc{SEED}-late-{uid('c')}"
    event = purchase(customer, "80.00", datetime.now(UTC) - timedelta(minutes=5))
    await upstream.send(stream.topics.events, event)
    snapshot = await stream.outputs.wait_score(customer, event["event_id"], within=60)
    assert snapshot["calibration_version"] == expected
