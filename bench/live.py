"""A worker's CPU per event at paced live rates: what a fetch of a few records costs besides its step.

    python -m bench.live [--rates 100,250,500,1000] [--events 6000]

For each rate, a worker with the bench's settings (`bench.context.Context.config`) on a Tansu broker and a
Redis started for the run gets the generator's mixed stream for 4,900 customers at that rate: the first fifth
as a warm-up, then the rest, timed. It prints the worker's user and system CPU per event (`/proc/<pid>/stat`)
and its context switches per event, and the CPU an idle worker uses; `--out F` writes them as JSON.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from bench.context import Context
from bench.data import days_for, mixed_messages, records_of
from bench.measure import processed, total, wait_idle
from bench.produce import by_type, produce_paced, producer
from bench.services import Process, cpu_times, start_services, wait_ready
from bench.sizes import QUICK

CUSTOMERS = 4_900
SEED = 5


def usage(pid: int) -> tuple[float, float, int, int]:
    """User and system CPU seconds, voluntary and involuntary context switches of a process."""
    status = dict(line.split(":", 1) for line in Path(f"/proc/{pid}/status").read_text().splitlines() if ":" in line)
    return (*cpu_times(pid), int(status["voluntary_ctxt_switches"]), int(status["nonvoluntary_ctxt_switches"]))


@contextmanager
def ready_worker(ctx: Context, name: str) -> Iterator[tuple[Process, dict[str, str]]]:
    """A worker with the bench's settings on topics of its own, ready; stopped on leaving."""
    topics = ctx.topics(name)
    config = ctx.config(name, topics)
    ctx.create_topics(config)
    worker = ctx.start(name, config)
    try:
        wait_ready(worker)
        yield worker, topics
    finally:
        worker.stop()


def one_rate(ctx: Context, rate: float, events: int) -> dict[str, Any]:
    with ready_worker(ctx, f"live{int(rate)}") as (worker, topics):
        records = records_of(mixed_messages(SEED, CUSTOMERS, days_for(CUSTOMERS, events), datetime.now(UTC)))
        records = records[:events]

        async def paced(part: list[Any]) -> float:
            client = producer(ctx.services.bootstrap, linger_ms=0)
            await client.start()
            try:
                return await produce_paced(client, part, by_type(topics), rate, lambda r, t: None)
            finally:
                await client.stop()

        warm = len(records) // 5
        asyncio.run(paced(records[:warm]))
        wait_idle(worker, warm)
        time.sleep(2)
        before, base = usage(worker.pid), total([worker], processed) or 0
        achieved = asyncio.run(paced(records[warm:]))
        done = wait_idle(worker, len(records)) - base
        after = usage(worker.pid)
        return {"offered_per_s": rate, "achieved_per_s": achieved, "events": done,
                "user_us_per_event": (after[0] - before[0]) / max(1, done) * 1e6,
                "system_us_per_event": (after[1] - before[1]) / max(1, done) * 1e6,
                "voluntary_switches_per_event": (after[2] - before[2]) / max(1, done),
                "involuntary_switches_per_event": (after[3] - before[3]) / max(1, done)}


def idle_share(ctx: Context, seconds: float = 15.0) -> float:
    """The share of a core a ready worker with nothing to read uses."""
    with ready_worker(ctx, "idle") as (worker, _):
        time.sleep(3)
        cpu, started = worker.cpu_seconds(), time.perf_counter()
        time.sleep(seconds)
        return (worker.cpu_seconds() - cpu) / (time.perf_counter() - started)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m bench.live", description=__doc__.splitlines()[0])
    parser.add_argument("--rates", default="100,250,500,1000", help="comma-separated events/s")
    parser.add_argument("--events", type=int, default=6_000, help="events per rate (the first fifth: warm-up)")
    parser.add_argument("--out", type=Path, default=None, help="also write the figures as JSON")
    args = parser.parse_args(argv)
    try:
        rates = [float(r) for r in args.rates.split(",")]
    except ValueError:
        parser.error(f"--rates: expected comma-separated numbers, got {args.rates!r}")
    if any(r <= 0 for r in rates) or args.events < 10:
        parser.error("--rates must be positive and --events at least 10")
    services = start_services()
    with tempfile.TemporaryDirectory() as tmp:
        ctx = Context(services, Path(tmp), QUICK)
        try:
            figures: dict[str, Any] = {"at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
                                       "idle_core_share": idle_share(ctx), "rates": []}
            print(f"idle worker: {figures['idle_core_share']:.3f} of a core")
            for rate in rates:
                row = one_rate(ctx, rate, args.events)
                figures["rates"].append(row)
                share = (row["user_us_per_event"] + row["system_us_per_event"]) * row["achieved_per_s"] / 1e6
                print(f"{rate:,.0f}/s: user {row['user_us_per_event']:,.0f} us + system "
                      f"{row['system_us_per_event']:,.0f} us per event ({share:.2f} of a core), context switches "
                      f"{row['voluntary_switches_per_event']:.2f} + {row['involuntary_switches_per_event']:.2f}"
                      " per event", flush=True)
        finally:
            ctx.stop_all()
            services.stop()
    if args.out is not None:
        args.out.write_text(json.dumps(figures, indent=2) + "\n")


if __name__ == "__main__":
    main()
