"""The recovery watchdog's decision (streams.worker.watchdog.recovery_stall), on Faust's recovery fields."""

from __future__ import annotations

import asyncio
from collections import Counter
from types import SimpleNamespace
from typing import Any, NamedTuple

from streams.worker.watchdog import recovery_stall, task_stacks


class TP(NamedTuple):
    topic: str
    partition: int


A, B = TP("c", 0), TP("c", 1)


def recovery(remaining: dict[Any, int], received: dict[Any, float], started: float | None = 0.0,
             in_recovery: bool = True) -> SimpleNamespace:
    return SimpleNamespace(in_recovery=in_recovery, _recovery_started_at=started,
                           _active_events_received_at=received, active_remaining=lambda: Counter(remaining))


def test_partitions_needing_records_and_silent_for_the_limit_are_stalled() -> None:
    r = recovery({A: 5, B: 3}, {B: 15.0})
    assert recovery_stall(r, now=19.0, limit=20.0) == []
    assert recovery_stall(r, now=20.0, limit=20.0) == [A]  # B received a record at 15
    assert recovery_stall(r, now=35.0, limit=20.0) == [A, B]


def test_a_done_or_finished_recovery_is_never_stalled() -> None:
    assert recovery_stall(recovery({A: 0}, {}), now=100.0, limit=20.0) == []
    assert recovery_stall(recovery({A: 5}, {}, in_recovery=False), now=100.0, limit=20.0) == []
    assert recovery_stall(recovery({A: 5}, {}, started=None), now=100.0, limit=20.0) == []


async def test_task_stacks_name_where_each_task_waits() -> None:
    async def parked() -> None:
        await asyncio.sleep(60)

    task = asyncio.create_task(parked(), name="parked-task")
    await asyncio.sleep(0)
    try:
        text = task_stacks([task])
    finally:
        task.cancel()
    assert "parked-task" in text and "parked" in text and "asyncio.sleep(60)" in text
