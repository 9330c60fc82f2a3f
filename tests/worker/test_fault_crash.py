"""Workers killed (`kill -9`) mid-stream and restarted later: nothing lost, nothing counted twice.

Two workers share 4 partitions. A seeded history of >= 20,000 mixed events over 2,000 customers
(streams.local.generator personas, ~0.5 % redelivered copies) is produced in time order to the mixed
`customer-events` topic, keyed by customer id, and scored with `clock: event`. For each seed in
SEEDS, in turn: when a random share of the stream has been scored (its own window of the stream),
one of the two workers, chosen at random, is killed with SIGKILL; the survivor takes over its
partitions (recovering their table state from the changelog); after a random pause the killed
worker is started again and the group rebalances once more, still under load. The history's second
half is produced only after the first seed's cycle, so every kill lands mid-stream.

Then, against `replay --exact` of the same events (`tests.kits.faults.expect`: each customer's events
stepped in event order with the same `step`, then the review the sweep does as of the last day):
- every customer's final state in the table (read from the changelog with
  `streams.serving.resync.read_table`) equals the replay's, field by field; the events recorded in
  the states add up to the distinct events produced: none is missing and none counted twice;
- every tier change, action and alert the clean run produces is on its topic with the replay's content
  (all but `emitted_at`), every copy of it, and no other id; each customer's latest score snapshot is
  the replay's last one (snapshots are latest-per-customer: intermediate ones may be coalesced).

As in production: default producer batching (the workers' changelog flush ends each partition with a
one-record batch, which keeps recovery exact on the test broker's ListOffsets defect, see
/work/shared/KAFKA_TEST_BROKER.md), and the review sweep on (with the event clock it never runs ahead
of an event on its way, so its outputs are the replay's catch-up outputs). The seeds of the history
and of the kills are drawn per run and printed.
"""

from __future__ import annotations

import asyncio
import os
import random
import time

import pytest

from tests.kits.faults import (
    OutputIndex,
    assert_nothing_lost,
    expect,
    history,
    last_day,
    report,
    restart_worker,
    settle,
    wait_progress,
    with_closers,
)
from tests.kits.stream import PARTITIONS, StartStream, StreamGroup, Upstream, Worker, eventually

pytestmark = [pytest.mark.integration, pytest.mark.slow]

SETTINGS = {"clock": "event", "review_interval_seconds": 0.5}
RUN = int(os.environ.get("TEST_SEED") or random.randrange(1_000_000))  # set: rerun a seed
HISTORY_SEED = RUN % 1000
SEEDS = (RUN, RUN + 1)  # one kill/restart cycle each: (share of the stream scored at the kill, victim, pause)
WINDOWS = ((0.10, 0.35), (0.55, 0.85))  # where each cycle's kill falls, as a share of the expected outputs


async def kill_and_restart(group: StreamGroup, rng: random.Random) -> tuple[str, float]:
    """SIGKILL a random worker, wait for the survivor to own every partition, restart it; (victim, takeover s)."""
    victim = group.workers[rng.randrange(len(group.workers))]
    survivor: Worker = next(w for w in group.workers if w is not victim)
    victim.kill()  # SIGKILL: no flush, no commit, no leave-group
    killed = time.monotonic()

    async def taken_over() -> bool:
        health = await survivor.health()
        return health is not None and sorted(health["partitions"]) == list(range(PARTITIONS))

    await eventually(taken_over, "the survivor to own every partition", within=180, interval=0.2)
    takeover = time.monotonic() - killed
    await asyncio.sleep(rng.uniform(0.5, 3.0))  # the fault's timing, not a wait for something
    restart_worker(group, victim)
    await group.wait_ready(within=180)
    return victim.name, takeover


async def test_killed_workers_lose_nothing(start_stream: StartStream, upstream: Upstream) -> None:
    print(f"history seed {HISTORY_SEED}, kill seeds {SEEDS}", flush=True)
    events = with_closers(history(HISTORY_SEED), PARTITIONS, f"f{HISTORY_SEED}-")
    assert len(events) >= 20_000
    assert len({e["customer_id"] for e in events}) >= 2_000
    half = len(events) // 2
    async with start_stream("crash", workers=2, **SETTINGS) as group:
        expected = expect(events, group.settings.scoring, group.topics, last_day(events))
        index = OutputIndex(group)
        total = len(expected.outputs)

        async def found() -> int:
            return total - len(index.missing(expected))

        producing = asyncio.create_task(upstream.send_all(group.topics.events, events[:half]))
        cycles = []
        for cycle, (seed, (low, high)) in enumerate(zip(SEEDS, WINDOWS, strict=True)):
            rng = random.Random(seed)
            kill_at = round(rng.uniform(low, high) * total)
            await wait_progress(found, kill_at, f"outputs before kill {cycle + 1}", interval=0.05)
            victim, takeover = await kill_and_restart(group, rng)
            cycles.append({"seed": seed, "kill_at_outputs": kill_at, "victim": victim, "takeover_s": takeover})
            print(f"cycle {cycle + 1} (seed {seed}): killed {victim} at {kill_at}/{total} outputs; "
                  f"survivor took over in {takeover:.1f}s", flush=True)
            if cycle == 0:
                await producing
                producing = asyncio.create_task(upstream.send_all(group.topics.events, events[half:]))
        await producing

        states, check = await settle(group, index, expected)
        report("test_fault_crash", f"kill -9 a worker mid-stream, restart it (x{len(SEEDS)}, seeds {SEEDS})",
               faults_injected=len(SEEDS), events_produced=len(events), scored=states.applied,
               dead_lettered=len(index.dlq), outputs_expected=check.expected, outputs_found=check.found,
               duplicates=check.duplicates, recovery_s=max(c["takeover_s"] for c in cycles), cycles=cycles)
        assert_nothing_lost(states, check, expected, index)
        assert all(w.alive() for w in group.workers)
