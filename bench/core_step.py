"""`python -m bench.core_step [--rows N] [--copies N] [--repeats N] [--profile FILE]`: the core's step per event.

Steps the purchases of ../shared/data/online_retail (`bench.history.large_log`, `--copies` times under new ids)
as `tierstream bootstrap` does, in this process and one process: the columnar reader
(`streams.offline.columnar`), the customers split by partition, then each customer's events stepped by
`scoring.step` in the event clock's order and reviewed to its partition's event clock
(`streams.offline.bootstrap._build_part`, which also encodes each state and renders its last snapshot and
profile). Reports us an event (best of `--repeats`) and a SHA-256 digest of everything built (partition,
state bytes, snapshot, profile of each customer): a change to the core that keeps every byte keeps the digest;
`--outputs` adds one of every step's outputs (outcome, decisions, evaluation, state bytes).
`--profile FILE` writes a cProfile of one more run (`python -m pstats FILE`) and prints its top functions.
"""

from __future__ import annotations

import argparse
import cProfile
import hashlib
import io
import json
import pstats
import tempfile
import time
from pathlib import Path

import polars as pl

from bench import history
from scoring.codec import encode_state
from scoring.config import ScoringConfig
from scoring.decisions import encode_decisions
from scoring.events import MS_PER_DAY
from scoring.state import NEW_STATE, CustomerState
from scoring.step import due_reviews, step
from streams.offline.bootstrap import Built, Customers, _build_part, _customers
from streams.offline.columnar import read_columns
from streams.offline.history import CsvLayout, Inputs
from streams.offline.replay import event_order
from streams.partitioning import canonical_partition

PARTITIONS = 4


def load(copies: int, rows: int | None) -> tuple[Customers, dict[int, int], int]:
    """The customers of the log (first `rows` rows when given) and each partition's review day; the events."""
    history.COPIES = copies
    # a fixed path: the reader's event ids name the file, and the digests depend on them
    folder = Path(tempfile.gettempdir()) / f"bench-core-step-{copies}-{rows}"
    folder.mkdir(exist_ok=True)
    log = history.large_log(folder)
    if rows is not None:
        lines = log.read_text().splitlines(keepends=True)[: rows + 1]
        log.write_text("".join(lines))
    events = read_columns(Inputs((log,), CsvLayout())).events
    log.unlink()
    names = events.get_column("customer").unique()
    owners = pl.DataFrame({"customer": names, "partition": [canonical_partition(c, PARTITIONS) for c in names]},
                          schema={"customer": pl.String, "partition": pl.Int64})
    events = events.join(owners, on="customer", how="left", maintain_order="left")
    latest = events.group_by("partition").agg(pl.col("at_ms").max())
    review_days = {p: at_ms // MS_PER_DAY - 1 for p, at_ms in latest.iter_rows()}
    return _customers(events), review_days, events.height


def digest(built: list[Built]) -> str:
    h = hashlib.sha256()
    for b in sorted(built, key=lambda b: (b.partition, b.customer)):
        h.update(f"{b.customer}\x1f{b.partition}\x1f".encode())
        h.update(b.state or b"-")
        h.update(b.snapshot or b"-")
        h.update(json.dumps(b.profile, sort_keys=True, default=str).encode())
    return h.hexdigest()


def outputs_digest(customers: Customers, review_days: dict[int, int], config: ScoringConfig) -> str:
    """A SHA-256 of every step's result (outcome, reason, decisions, evaluation, state bytes), stepped as
    `streams.offline.bootstrap._stepped` steps (not timed): every output, not only the final states."""
    h = hashlib.sha256()
    for customer, (partition, events) in customers.items():
        state: CustomerState | None = NEW_STATE
        results = []
        for event in sorted(events, key=event_order):
            result = step(state or NEW_STATE, event, event.at_ms, customer, config)
            results.append(result)
            if result.outcome != "rejected":
                state = result.state
        if state is not None and state is not NEW_STATE:
            results += due_reviews(state, review_days[partition], customer, config)
        for r in results:
            h.update(f"{customer}|{r.outcome}|{r.reason}|{r.resent}|{r.evaluation!r}|".encode())
            h.update(encode_decisions(r.decisions))
            h.update(b"-" if r.state is None else encode_state(r.state))
    return h.hexdigest()


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m bench.core_step", description=__doc__.splitlines()[0])
    parser.add_argument("--copies", type=int, default=1)
    parser.add_argument("--rows", type=int, default=None, help="only the log's first ROWS rows")
    parser.add_argument("--repeats", type=int, default=1)
    parser.add_argument("--profile", type=Path, default=None)
    parser.add_argument("--outputs", action="store_true", help="also a digest of every step's outputs (slow)")
    args = parser.parse_args(argv)
    customers, review_days, events = load(args.copies, args.rows)
    config = ScoringConfig()
    print(f"{events:,} events, {len(customers):,} customers", flush=True)
    best = float("inf")
    built: list[Built] = []
    for _ in range(args.repeats):
        started = time.perf_counter()
        built, stats = _build_part(customers, review_days, config, None)
        best = min(best, time.perf_counter() - started)
    print(f"built in {best:.2f} s: {best / events * 1e6:.1f} us/event ({stats.applied:,} applied, "
          f"{stats.duplicates:,} duplicates, {stats.rejected:,} rejected, {stats.forgotten:,} forgotten)")
    print(f"digest {digest(built)}")
    if args.outputs:
        print(f"outputs digest {outputs_digest(customers, review_days, config)}")
    if args.profile is not None:
        profiler = cProfile.Profile()
        profiler.runcall(_build_part, customers, review_days, config, None)
        profiler.dump_stats(args.profile)
        out = io.StringIO()
        pstats.Stats(str(args.profile), stream=out).sort_stats("tottime").print_stats(30)
        print(out.getvalue())


if __name__ == "__main__":
    main()
