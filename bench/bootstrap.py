"""`python -m bench.bootstrap [--copies N] [--sample ROWS] [--out FILE]`: bootstrap against backfill, one run.

The history: the purchases of ../shared/data/online_retail, `--copies` times under new customer ids
(`bench.history.large_log`: ~1.6 M rows at 4 copies). On a Tansu broker and a Redis started for the run:

- bootstrap: `tierstream bootstrap` of the whole history (a whole process: interpreter start, reading,
  stepping, writing), then a worker (`clock: event`) is started; the time is from the bootstrap's start until
  the worker serves every customer: it owns every partition and answers `GET /customers/{id}` for the last
  customer written on each partition (its table recovers the changelog in order, so every customer before
  them is there) and for a random sample of 200 others.
- backfill: `tierstream backfill` of the first `--sample` rows into another app, through a worker with
  `clock: event`, until the worker has scored them all; its rate is extrapolated to the whole history
  (a 1.6 M-row backfill takes ~25 minutes: the extrapolation is said as such in the output).

Writes the figures as JSON (default bench/bootstrap_results.json).
"""

from __future__ import annotations

import argparse
import json
import os
import random
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path
from typing import Any

import yaml

from bench import history
from bench.services import Process, get_json, start_services
from streams.local.embedded import free_port
from streams.partitioning import canonical_partition
from streams.settings import TopicNames

ROOT = Path(__file__).resolve().parent.parent
PARTITIONS = 4


def config(services: Any, name: str, workdir: Path) -> Path:
    tag = f"{name}-{uuid.uuid4().hex[:6]}"
    doc = {"kafka_bootstrap": services.bootstrap, "redis_url": services.redis.url, "app_id": f"bench-{tag}",
           "redis_prefix": f"bench-{tag}:", "partitions": PARTITIONS, "fast_join": True, "log_level": "warning",
           "clock": "event", "data_dir": str(workdir / f"data-{tag}"),
           "topics": {f: f"{f.replace('_', '-')}-{tag}" for f in TopicNames.model_fields}}
    path = workdir / f"{tag}.yaml"
    path.write_text(yaml.safe_dump(doc, sort_keys=False))
    return path


def cli(*args: str) -> tuple[float, str]:
    started = time.perf_counter()
    done = subprocess.run([sys.executable, "-m", "streams.cli.main", *args], capture_output=True, text=True,
                          env={**os.environ, "PYTHONPATH": str(ROOT)}, check=False)
    if done.returncode != 0:
        raise RuntimeError(f"tierstream {args[0]} failed ({done.returncode}): {done.stderr[-2000:]}")
    return time.perf_counter() - started, done.stderr


def worker(name: str, path: Path, workdir: Path) -> Process:
    port = free_port()
    argv = [sys.executable, "-m", "streams.cli.main", "worker", "--config", str(path), "--web-port", str(port)]
    return Process.start(name, argv, workdir / f"{name}.log", cwd=workdir, env={**os.environ, "PYTHONPATH": str(ROOT)},
                         append_log=True, new_session=True, port=port)


def serves(proc: Process, customers: list[str]) -> bool:
    health = proc.get("/health", timeout=2.0)
    if not health or sorted(health.get("partitions") or []) != list(range(PARTITIONS)):
        return False
    return all(get_json(proc.url(f"/customers/{c}"), timeout=5.0) for c in customers)


def customers_of(log: Path) -> list[str]:
    with log.open() as handle:
        next(handle)
        return list(dict.fromkeys(line.split(",", 1)[0] for line in handle))


def wait(predicate: Any, limit: float, proc: Process) -> None:
    deadline = time.monotonic() + limit
    while not predicate():
        proc.check_alive()
        if time.monotonic() > deadline:
            raise TimeoutError(f"{proc.name}: not done after {limit:.0f} s (log {proc.log_path})")
        time.sleep(0.2)


def measure_bootstrap(services: Any, log: Path, customers: list[str], folder: Path,
                      procs: list[Process]) -> dict[str, float]:
    path = config(services, "boot", folder)
    started = time.perf_counter()
    seconds, summary = cli("bootstrap", str(log), "--config", str(path))
    print(summary.strip(), flush=True)
    last = {canonical_partition(c, PARTITIONS): c for c in sorted(customers, key=lambda c: (
        canonical_partition(c, PARTITIONS), c))}
    probe = [*last.values(), *random.Random(1).sample(customers, min(200, len(customers)))]
    proc = worker("boot-worker", path, folder)
    procs.append(proc)
    wait(lambda: serves(proc, probe), 900, proc)
    served = time.perf_counter() - started
    print(f"bootstrap: {seconds:.1f} s; a worker serves every customer after {served:.1f} s", flush=True)
    proc.stop()
    return {"bootstrap_process_s": round(seconds, 2), "bootstrap_until_served_s": round(served, 2)}


def measure_backfill(services: Any, log: Path, rows: int, sample_rows: int, folder: Path,
                     procs: list[Process]) -> dict[str, float]:
    sample = folder / "sample.csv"
    with log.open() as src, sample.open("w") as dst:
        for i, line in enumerate(src):
            if i > sample_rows:
                break
            dst.write(line)
    path = config(services, "back", folder)
    proc = worker("back-worker", path, folder)
    procs.append(proc)
    wait(lambda: bool((proc.get("/health") or {}).get("partitions")), 120, proc)
    started = time.perf_counter()
    cli("backfill", str(sample), "--config", str(path))
    wait(lambda: (proc.get("/health") or {}).get("events_scored", 0) >= sample_rows, 3600, proc)
    seconds = time.perf_counter() - started
    rate = sample_rows / seconds
    print(f"backfill: {sample_rows:,} rows in {seconds:.1f} s ({rate:,.0f} events/s); the whole history would "
          f"take ~{rows / rate / 60:.0f} min (extrapolated)", flush=True)
    return {"backfill_sample_rows": sample_rows, "backfill_sample_s": round(seconds, 2),
            "backfill_events_per_s": round(rate), "backfill_extrapolated_s": round(rows / rate)}


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m bench.bootstrap", description=__doc__.splitlines()[0])
    parser.add_argument("--copies", type=int, default=4)
    parser.add_argument("--sample", type=int, default=40_000, help="rows the backfill is measured on")
    parser.add_argument("--out", type=Path, default=Path(__file__).with_name("bootstrap_results.json"))
    args = parser.parse_args(argv)
    results: dict[str, Any] = {"at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()), "cpus": os.cpu_count()}
    services = start_services()
    procs: list[Process] = []
    try:
        with tempfile.TemporaryDirectory() as tmp:
            folder = Path(tmp)
            history.COPIES = args.copies
            log = history.large_log(folder)
            rows = sum(1 for _ in log.open()) - 1
            customers = customers_of(log)
            results.update(rows=rows, customers=len(customers))
            print(f"history: {rows:,} rows, {len(customers):,} customers", flush=True)
            results.update(measure_bootstrap(services, log, customers, folder, procs))
            results.update(measure_backfill(services, log, rows, args.sample, folder, procs))
            print(f"bootstrap until served vs backfill (extrapolated): "
                  f"{results['backfill_extrapolated_s'] / results['bootstrap_until_served_s']:.0f}x faster", flush=True)
    finally:
        for proc in procs:
            proc.stop()
        services.stop()
    args.out.write_text(json.dumps(results, indent=2) + "\n")


if __name__ == "__main__":
    main()
