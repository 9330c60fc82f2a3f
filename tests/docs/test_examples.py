"""examples/subscriber.py against the test broker: it deduplicates tier changes by `id`."""

from __future__ import annotations

import asyncio
import subprocess
import sys
from datetime import UTC, datetime
from pathlib import Path

import pytest
from aiokafka import AIOKafkaProducer

from schemas.outputs import TierChanged
from streams.local.embedded import create_topics

ROOT = Path(__file__).resolve().parents[2]
SUBSCRIBER = ROOT / "examples" / "subscriber.py"


def change(n: int, customer: str, from_tier: str | None, to_tier: str, direction: str) -> TierChanged:
    now = datetime(2024, 5, 1, tzinfo=UTC)
    return TierChanged(
        id=f"{n:032x}", customer_id=customer, cause=f"e{n}", event_time=now, emitted_at=now,
        config_version="rules-1", from_tier=from_tier, to_tier=to_tier, direction=direction,  # type: ignore[arg-type]
        score=50.0, previous_score=None,
        touch_plan={"channel": "email", "cadence_days": 30, "owner": "crm"})  # type: ignore[arg-type]


async def publish(bootstrap: str, topic: str, messages: list[TierChanged]) -> None:
    producer = AIOKafkaProducer(bootstrap_servers=bootstrap)
    await producer.start()
    try:
        for m in messages:
            await producer.send_and_wait(topic, m.model_dump_json().encode(), key=m.customer_id.encode())
    finally:
        await producer.stop()


def run_subscriber(bootstrap: str, topic: str, group: str, seen_db: Path) -> str:
    done = subprocess.run(
        [sys.executable, str(SUBSCRIBER), "--bootstrap", bootstrap, "--topic", topic, "--group", group,
         "--seen-db", str(seen_db), "--from-beginning", "--idle-exit", "1.5"],
        capture_output=True, text=True, timeout=90, check=False)
    assert done.returncode == 0, done.stderr[-2000:]
    return done.stdout


@pytest.mark.integration
def test_subscriber_handles_each_tier_change_once(kafka_bootstrap: str, make_topic_names, tmp_path: Path) -> None:
    [topic] = make_topic_names("customer-tier-changes")
    asyncio.run(create_topics(kafka_bootstrap, [topic], partitions=2))
    first = [change(1, "C1", None, "B", "new"), change(2, "C1", "B", "AAA", "up"), change(3, "C2", "A", "C", "down")]
    asyncio.run(publish(kafka_bootstrap, topic, [*first, first[1]]))  # a redelivery repeats the same id
    seen = tmp_path / "seen.sqlite"

    out = run_subscriber(kafka_bootstrap, topic, "marketing-1", seen)
    assert "C1: B -> AAA => vip-welcome" in out and "C2: A -> C => win-back-offer" in out
    assert "C1: None -> B => onboarding-b" in out
    assert out.strip().splitlines()[-1] == "handled 3, duplicates skipped 1"

    # A new consumer group (or the same one after losing its offsets) reads everything again;
    # the ids it handled before are still skipped.
    out = run_subscriber(kafka_bootstrap, topic, "marketing-2", seen)
    assert out.strip().splitlines()[-1] == "handled 0, duplicates skipped 4"
