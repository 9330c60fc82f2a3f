import asyncio, time, random
import pytest
from faultkit import OutputIndex, check_outputs, expect, history, wait_outputs, table_states, compare_states, restart_worker, wait_progress, metrics_lag
from streamkit import StartStream, Upstream, Worker, eventually, PARTITIONS, http_json
from streams.partitioning import canonical_partition
from test_fault_crash import kill_and_restart

SETTINGS = {"clock": "event", "producer_max_batch_size": 1, "review_interval_seconds": 3600}

async def lagdump(group):
    for w in group.workers:
        h = await w.health()
        st, body = await http_json("GET", f"{w.web_url}/metrics")
        lines = [l for l in body.splitlines() if l.startswith("tierstream_consumer_lag{") or l.startswith("tierstream_events_total") ] if isinstance(body, str) else body
        print(w.name, h and h["partitions"], h and h["events_scored"], lines, flush=True)

@pytest.mark.parametrize("seed", [1, 2, 3])
async def test_dbg(start_stream: StartStream, upstream: Upstream, seed) -> None:
    events = history(7, customers=600, min_events=6000)
    half = len(events)//2
    async with start_stream("dbg", workers=2, **SETTINGS) as group:
        expected = expect(events, group.settings.scoring, group.topics)
        index = OutputIndex(group)
        total = len(expected.outputs)
        async def found():
            return total - len(index.missing(expected))
        producing = asyncio.create_task(upstream.send_all(group.topics.events, events[:half]))
        for cycle, (low, high) in enumerate(((0.1, 0.35), (0.55, 0.85))):
            rng = random.Random(seed * 10 + cycle)
            kill_at = round(rng.uniform(low, high) * total)
            await wait_progress(found, kill_at, "x", interval=0.05)
            victim, takeover = await kill_and_restart(group, rng)
            print("cycle", cycle, victim, takeover, flush=True)
            if cycle == 0:
                await producing
                producing = asyncio.create_task(upstream.send_all(group.topics.events, events[half:]))
        await producing
        try:
            await wait_outputs(index, expected, stall=40)
            print("OK")
        except AssertionError as e:
            print(str(e)[:300])
            miss = index.missing(expected)
            from collections import Counter
            print(Counter(canonical_partition(expected.outputs[o][1], 4) for o in miss))
            await lagdump(group)
            await asyncio.sleep(10)
            await lagdump(group)
            raise
