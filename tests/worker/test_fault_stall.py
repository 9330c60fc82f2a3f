"""The broker stalls (SIGSTOP) for ~10 s mid-stream: the workers recover by themselves, nothing is lost.

Two workers share 4 partitions and score a seeded history (streams.local.generator personas, mixed
`customer-events` topic, `clock: event`). When about a third of its outputs have been read, the
session's Tansu broker is frozen with SIGSTOP for STALL_SECONDS (longer than the group's 6 s session
timeout) while the rest of the history is being produced, then resumed with SIGCONT (always, in a
`finally`). Nothing is done to the workers: they must carry on by themselves (reconnect, rejoin,
recover their table partitions from the changelog if the group rebalanced).

Then, against `replay --exact` of the same events (`tests.kits.faults.expect`): every customer's final
state equals the replay's, every event is recorded once, every tier change, action and alert a clean
run produces is on its topic with the replay's content, repeats are exact, each customer's latest
snapshot is the replay's last one, and both workers are alive and own every partition between them.
Recovery time in the faults report: from SIGCONT until the first output caused by an event
produced after the stall is read (the producer was blocked too; its sends go out on SIGCONT).

Default producer batching and the review sweep on, as in production (see test_fault_crash.py).
The broker is the session's shared one: tests run one at a time, so only this test sees the stall.
"""

from __future__ import annotations

import asyncio
import signal
import time

import pytest

from streams.local.embedded import EmbeddedProcess
from tests.kits.faults import (
    OutputIndex,
    assert_nothing_lost,
    expect,
    history,
    last_day,
    report,
    settle,
    wait_progress,
    with_closers,
)
from tests.kits.stream import PARTITIONS, StartStream, Upstream

pytestmark = [pytest.mark.integration, pytest.mark.slow]

SETTINGS = {"clock": "event", "review_interval_seconds": 0.5}
STALL_SECONDS = 10.0


async def test_a_stalled_broker_loses_nothing(start_stream: StartStream, upstream: Upstream,
                                              tansu_broker: EmbeddedProcess) -> None:
    events = with_closers(history(41, customers=500, min_events=5000), PARTITIONS, "f41-")
    half = len(events) // 2
    async with start_stream("stall", workers=2, **SETTINGS) as group:
        expected = expect(events, group.settings.scoring, group.topics, last_day(events))
        index = OutputIndex(group)
        total = len(expected.outputs)

        async def found() -> int:
            return total - len(index.missing(expected))

        await upstream.send_all(group.topics.events, events[:half])
        await wait_progress(found, total // 3, "outputs before the stall", interval=0.05)
        producing = asyncio.create_task(upstream.send_all(group.topics.events, events[half:]))
        tansu_broker.send(signal.SIGSTOP)
        try:
            await asyncio.sleep(STALL_SECONDS)  # the fault's length, not a wait for something
        finally:
            tansu_broker.send(signal.SIGCONT)
        resumed = time.monotonic()
        before = await found()
        late = {e["event_id"] for e in events[half:]}  # produced only once the broker was back
        late_outputs = [oid for oid, doc in expected.outputs.items() if doc["cause"] in late]

        async def late_found() -> int:
            index.update()
            return sum(1 for oid in late_outputs if oid in index.by_id)

        await wait_progress(late_found, 1, "outputs of events produced after the stall", interval=0.05)
        recovery = time.monotonic() - resumed
        print(f"broker stalled {STALL_SECONDS:.0f}s at {before}/{total} outputs; outputs again after "
              f"{recovery:.1f}s", flush=True)
        await producing

        states, check = await settle(group, index, expected)
        await group.wait_ready(within=120)  # both workers alive, every partition owned
        report("test_fault_stall", f"broker SIGSTOP {STALL_SECONDS:.0f}s mid-stream, SIGCONT",
               faults_injected=1, events_produced=len(events), scored=states.applied,
               dead_lettered=len(index.dlq), outputs_expected=check.expected, outputs_found=check.found,
               duplicates=check.duplicates, recovery_s=recovery)
        assert_nothing_lost(states, check, expected, index)
