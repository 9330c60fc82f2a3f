import asyncio, time, subprocess, os, sys
import pytest
from faultkit import OutputIndex, check_outputs, expect, history, wait_outputs, table_states, compare_states, scored_total
from streamkit import StartStream, Upstream, Worker, RUNNING, eventually
from streams.embedded import free_port

SETTINGS = {"clock": "event", "producer_max_batch_size": 1, "review_interval_seconds": 3600}
WRAP = "import faust.tables.recovery as r, sys; o=r.logger.warning; r.logger.warning=lambda m,*a,**k: o(m,*a,exc_info=True,**k); from streams.cli import main; sys.argv[0]='tierstream'; main()"

async def test_recover(start_stream: StartStream, upstream: Upstream) -> None:
    events = history(101, customers=200, min_events=1000)
    async with start_stream("rec", workers=1, **SETTINGS) as group:
        expected = expect(events, group.settings.scoring, group.topics)
        index = OutputIndex(group)
        await upstream.send_all(group.topics.events, events)
        await wait_outputs(index, expected)
        from aiokafka import AIOKafkaConsumer, TopicPartition
        from streams.kafka import table_changelog
        c = AIOKafkaConsumer(bootstrap_servers=group.settings.kafka_bootstrap, auto_offset_reset="earliest", enable_auto_commit=False)
        await c.start()
        tps=[TopicPartition(table_changelog(group.settings), p) for p in range(4)]
        c.assign(tps); await c.seek_to_beginning(*tps)
        b = await c.getmany(timeout_ms=2000, max_records=50)
        from collections import Counter
        kinds = Counter()
        for tp, ms in b.items():
            for m in ms:
                kinds[(m.key[:1], m.value is None, len(m.value or b"") == 0)] += 1
                if kinds[(m.key[:1], m.value is None, len(m.value or b"") == 0)] < 3: print(tp.partition, m.offset, m.key, (m.value or b"")[:20], m.headers)
        print(kinds)
        await c.stop()
        group.worker.kill()
        port = free_port()
        log = group.workdir / "wrapped.log"
        env = {k: v for k, v in os.environ.items() if not k.startswith("TIERSTREAM_")}
        with log.open("wb") as fh:
            p = subprocess.Popen([sys.executable, "-c", WRAP, "worker", "--config", str(group.config_path), "--web-port", str(port)], cwd=group.config_path.parent, env=env, stdout=fh, stderr=subprocess.STDOUT)
        w = Worker("wrapped", p, port, log)
        RUNNING.append(w)
        group.workers[0] = w
        try:
            await group.wait_ready(within=60)
            print("ready", flush=True)
        except AssertionError as e:
            print("not ready", str(e)[:300])
        async def rebuilt():
            h = await w.health()
            return h and h["customers_with_deadline"] > 0 and h
        print(await eventually(rebuilt, "rebuilt", within=60))
        print(log.read_text()[:3000])
