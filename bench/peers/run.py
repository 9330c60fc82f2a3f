"""Part 2's peers: Quix Streams and bytewax doing the simple job on the worker's preloaded topic.

Each peer runs alone (as the floors do), from the peers' own virtualenv, on the same topic and
broker: rate and CPU per event from its /health, like the floors'; then its tier changes are read
back from its output topic and compared, customer by customer and in order, with
`simple_job.reference` over the same events (`correct`). A peer that cannot start is reported with
its error, never as a figure.
"""

from __future__ import annotations

import asyncio
import json
import os
import subprocess
import time
from pathlib import Path
from typing import Any

from aiokafka import AIOKafkaConsumer
from aiokafka.admin import AIOKafkaAdminClient, NewTopic

from bench.context import PARTITIONS, Context
from bench.data import Record
from bench.measure import Samples, processed, watch
from bench.peers import venv
from bench.peers.simple_job import by_customer, reference
from bench.profiling import Profiler
from bench.services import ROOT, Process, wait_ready
from streams.local.embedded import free_port
from streams.local.process import ProcessError

PEERS = ("quix", "bytewax")
MODULES = {"quix": "bench.peers.quix_peer", "bytewax": "bench.peers.bytewax_peer"}


async def _create(bootstrap: str, topic: str) -> None:
    admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap)
    await admin.start()
    try:
        await admin.create_topics([NewTopic(topic, PARTITIONS, 1)])
    finally:
        await admin.close()


async def _read(bootstrap: str, topic: str, quiet: float = 3.0) -> list[dict[str, Any]]:
    """Every value of `topic` from the start, until nothing new comes for `quiet` seconds (the test broker's
    end offsets are not reliable after multi-record batches)."""
    consumer = AIOKafkaConsumer(topic, bootstrap_servers=bootstrap, group_id=None, auto_offset_reset="earliest",
                                enable_auto_commit=False, fetch_max_wait_ms=200)
    await consumer.start()
    values: list[dict[str, Any]] = []
    try:
        last = time.perf_counter()
        while time.perf_counter() - last < quiet:
            batch = await consumer.getmany(timeout_ms=300, max_records=5_000)
            for records in batch.values():
                values += [json.loads(r.value) for r in records if r.value is not None]
                last = time.perf_counter()
    finally:
        await consumer.stop()
    return values


def start_peer(ctx: Context, peer: str, python: Path, events_topic: str, out_topic: str) -> Process:
    port = free_port()
    argv = [str(python), "-m", MODULES[peer], "--bootstrap", ctx.services.bootstrap, "--topic", events_topic,
            "--out-topic", out_topic, "--partitions", str(PARTITIONS), "--web-port", str(port)]
    if peer == "quix":
        argv += ["--group", f"bench-{ctx.run}-quix", "--state-dir", str(ctx.workdir / f"quix-state-{ctx.run}")]
    name = f"{ctx.run}-{peer}"
    proc = Process.start(name, argv, ctx.workdir / f"{name}.log", cwd=ctx.workdir, append_log=True,
                         new_session=True, env={**os.environ, "PYTHONPATH": str(ROOT)}, port=port)
    ctx.processes.append(proc)
    return proc


def check(expected: list[dict[str, Any]], produced: list[dict[str, Any]]) -> dict[str, Any]:
    """The peer's tier changes against the reference's, per customer and in order."""
    want, got = by_customer(expected), by_customer(produced)
    wrong = sorted(c for c in want.keys() | got.keys() if want.get(c) != got.get(c))
    return {"tier_changes": len(produced), "expected_tier_changes": len(expected), "correct": not wrong,
            "customers_differing": len(wrong), "first_differing": wrong[:5]}


def run_peer(ctx: Context, peer: str, python: Path, events_topic: str, count: int,
             expected: list[dict[str, Any]]) -> dict[str, Any]:
    out_topic = f"bench-{ctx.run}-{peer}-tier-changes"
    asyncio.run(_create(ctx.services.bootstrap, out_topic))
    proc = start_peer(ctx, peer, python, events_topic, out_topic)
    try:
        samples = Samples()
        ready_s = wait_ready(proc, on_ready=lambda doc: samples.add(processed(doc), proc.cpu_seconds()))
        with Profiler(ctx, proc, f"peer-{peer}"):
            watch([proc], count, samples=samples)
        figures = {"events_per_s": samples.rate(), "cpu_us_per_event": samples.cpu_us_per_item(),
                   "processed": samples.last, "complete": samples.last >= count, "ready_s": ready_s}
        figures.update(check(expected, asyncio.run(_read(ctx.services.bootstrap, out_topic))))
        return figures
    finally:
        proc.stop()


def run_peers(ctx: Context, events_topic: str, records: list[Record], peers: tuple[str, ...] = PEERS) -> dict[str, Any]:
    """Each peer on the preloaded `events_topic`: figures, or the error that kept it from running; and under
    "reference" the simple job alone in this process (JSON decode + step, no Kafka)."""
    try:
        python = venv.ensure()
    except (OSError, subprocess.SubprocessError) as error:
        return {peer: {"error": f"peers' virtualenv: {error}"} for peer in peers}
    started, cpu_started = time.perf_counter(), time.process_time()
    expected = reference([r.value for r in records])
    seconds, cpu_seconds = time.perf_counter() - started, time.process_time() - cpu_started
    out: dict[str, Any] = {"reference": {"events_per_s": len(records) / seconds,
                                         "cpu_us_per_event": cpu_seconds / len(records) * 1e6,
                                         "tier_changes": len(expected)}}
    for peer in peers:
        try:
            out[peer] = run_peer(ctx, peer, python, events_topic, len(records), expected)
        except (ProcessError, TimeoutError) as error:
            out[peer] = {"error": str(error).splitlines()[0]}
    return out
