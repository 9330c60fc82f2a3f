import asyncio, time, random
import pytest
import streamkit
from pathlib import Path
streamkit.TIERSTREAM = Path('/tmp/tswrap')
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

@pytest.mark.parametrize("seed", [2, 3, 4, 5, 6])
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
            print("PIDS", [(w.name, w.pid) for w in group.workers], flush=True)
            causes = {expected.outputs[o][2] for o in miss}
            custs = {expected.outputs[o][1] for o in miss}
            pos = {e["event_id"]: i for i, e in enumerate(events)}
            idx = sorted(pos.get(c, -1) for c in causes)
            print("causes", len(causes), "customers", len(custs), "positions", idx[:5], idx[-5:], "half", half)
            table = await table_states(group.settings, expected.customers)
            check = compare_states(table, expected)
            print("states ok", check.ok, "differing", len(check.differing), "in missing custs", len(set(check.differing) & custs))
            print(check.problems(table, expected)[:800])
            from faultkit import events_in
            for c in list(custs)[:3]:
                print(c, events_in(table[c]), events_in(expected.states[c]))
            # which causes missing are in state?
            from scoring.ids import hash64
            inst = 0
            for o in miss[:50]:
                t, c, cause = expected.outputs[o]
                st = table.get(c)
                ids = {h for b in st.buckets.values() for h in b[7]} | {h for _, h in st.old_ids}
                inst += hash64(cause) in ids
            print("missing causes present in state:", inst, "of", min(50, len(miss)))
            from aiokafka import AIOKafkaConsumer, TopicPartition
            from streams.kafka import table_changelog
            from scoring.codec import decode_state
            from scoring.state import NEW_STATE
            from scoring.step import step
            from streams.convert import to_core
            from faultkit import _INPUT
            c = AIOKafkaConsumer(bootstrap_servers=group.settings.kafka_bootstrap, auto_offset_reset="earliest", enable_auto_commit=False)
            await c.start()
            tps=[TopicPartition(table_changelog(group.settings), p) for p in range(4)]
            c.assign(tps); await c.seek_to_beginning(*tps)
            hist = {}
            while True:
                b = await c.getmany(timeout_ms=1500, max_records=5000)
                if not b: break
                for tp, ms in b.items():
                    for m in ms:
                        hist.setdefault(m.key.decode(), []).append((tp.partition, m.offset, m.timestamp, m.value))
            await c.stop()
            for cust in (check.differing[:2] + list(custs)[:2]):
                print("==", cust)
                for part, off, ts, v in hist.get(cust, []):
                    st = decode_state(v)
                    print("  cl", part, off, ts % 100000, events_in(st), st.tier, st.clock_ms // 86400000, st.scored_day)
                state = NEW_STATE
                for e in events:
                    if e["customer_id"] != cust: continue
                    m = _INPUT.validate_python(e); core = to_core(m)
                    r = step(state, core, core.at_ms, cust, group.settings.scoring)
                    state = r.state
                    print("  rp", e["event_id"], r.outcome, events_in(state), state.tier, state.clock_ms // 86400000, [d.cause for d in r.decisions][:3])
            raise
