"""Part 1: the pure core (fold, step) and the whole `replay` command, in this process."""

from __future__ import annotations

import contextlib
import io
import statistics
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from bench.data import CDNOW_AS_OF, write_purchases_log
from scoring.codec import encode_state
from scoring.config import ScoringConfig
from scoring.events import MS_PER_DAY, CoreEvent, Kind
from scoring.fold import fold
from scoring.state import NEW_STATE, CustomerState
from scoring.step import step
from streams.cli.base import parse_day
from streams.cli.main import main as tierstream_main
from streams.offline.history import CsvLayout, Inputs, Row, read_history
from streams.offline.parallel import jobs_for
from streams.offline.replay import end_of_day_ms


def best_seconds(work: Callable[[], object], repeats: int) -> float:
    """The fastest of `repeats` runs: the least disturbed by other load on a shared machine."""
    times = []
    for _ in range(repeats):
        started = time.perf_counter()
        work()
        times.append(time.perf_counter() - started)
    return min(times)


def load_log(path: Path) -> dict[str, list[CoreEvent]]:
    by_customer: dict[str, list[CoreEvent]] = {}
    for row in read_history(path, CsvLayout()):
        assert isinstance(row, Row), row
        by_customer.setdefault(row.customer_id, []).append(row.event)
    return by_customer


def fold_all(by_customer: dict[str, list[CoreEvent]], now_ms: int, config: ScoringConfig) -> None:
    for events in by_customer.values():
        fold(NEW_STATE, events, now_ms, config)


def step_all(by_customer: dict[str, list[CoreEvent]], config: ScoringConfig) -> None:
    """Event by event as the stream does (event-time clock)."""
    for customer, events in by_customer.items():
        state = NEW_STATE
        for event in events:
            state = step(state, event, event.at_ms, customer, config).state


def replay_seconds(log: Path, out: Path, exact: bool = False, jobs: int | None = None) -> float:
    """Wall time of `tierstream replay LOG --as-of ... --out OUT` run in this process (no interpreter start)."""
    argv = ["replay", str(log), "--as-of", CDNOW_AS_OF, "--out", str(out), *(["--exact"] if exact else []),
            *([] if jobs is None else ["--jobs", str(jobs)])]
    started = time.perf_counter()
    with contextlib.redirect_stderr(io.StringIO()), contextlib.suppress(SystemExit):
        tierstream_main(argv)
    seconds = time.perf_counter() - started
    if not out.is_file() or out.stat().st_size == 0:
        raise RuntimeError("replay wrote no output")
    return seconds


def weekly_year_states(config: ScoringConfig, end_day: int) -> dict[str, int]:
    """Serialised bytes of a customer with 52 weekly purchases ending on `end_day`."""
    events = [CoreEvent(Kind.PURCHASE, f"wk-{w}", (end_day - 7 * (51 - w)) * MS_PER_DAY + 36_000_000, 49_9900, "USD")
              for w in range(52)]
    folded, _, _ = fold(NEW_STATE, events, end_of_day_ms(end_day), config)
    state: CustomerState = NEW_STATE
    for event in events:
        state = step(state, event, event.at_ms, "C-weekly", config).state
    expired = step(state, None, end_of_day_ms(end_day) + 2 * int(config.outbox_ttl_seconds * 1000),
                   "C-weekly", config).state
    return {"folded": len(encode_state(folded)), "stored_after_event": len(encode_state(state)),
            "stored_outbox_expired": len(encode_state(expired)), "outbox_ttl_s": int(config.outbox_ttl_seconds)}


def run_core(workdir: Path, clones: int, repeats: int, config: ScoringConfig, exact: bool = True) -> dict[str, Any]:
    """Issue 2's figures on a CDNOW-shaped log of `clones` x the CDNOW 1/10 sample."""
    log = workdir / "purchases.csv"
    rows, customers = write_purchases_log(log, clones)
    by_customer = load_log(log)
    now_ms = end_of_day_ms(parse_day(CDNOW_AS_OF))
    fold_s = best_seconds(lambda: fold_all(by_customer, now_ms, config), repeats)
    step_s = best_seconds(lambda: step_all(by_customer, config), max(1, repeats - 1))
    warm = workdir / "warm-up.csv"  # the command's first call imports what it lazily needs: not timed
    warm.write_text("".join(log.read_text().splitlines(keepends=True)[:50]))
    replay_seconds(warm, workdir / "warm-up-scores.csv")
    replay_s = min(replay_seconds(log, workdir / "scores.csv") for _ in range(repeats))
    one_s = min(replay_seconds(log, workdir / "scores-1.csv", jobs=1) for _ in range(repeats))
    if (workdir / "scores.csv").read_bytes() != (workdir / "scores-1.csv").read_bytes():
        raise RuntimeError("replay wrote different rows with one process and with several")
    exact_s = replay_seconds(log, workdir / "scores-exact.csv", exact=True) if exact else None
    states = [fold(NEW_STATE, ev, now_ms, config)[0] for ev in by_customer.values()]
    sizes = [len(encode_state(s)) for s in states]
    return {
        "log": {"rows": rows, "customers": customers, "shape": f"CDNOW sample x{clones}"},
        "core_fold_events_per_s": rows / fold_s,
        "core_step_events_per_s": rows / step_s,
        "replay_rows_per_s": rows / replay_s,
        "replay_jobs": jobs_for(Inputs((log,), CsvLayout()), None),
        "replay_one_process_rows_per_s": rows / one_s,
        "replay_exact_rows_per_s": rows / exact_s if exact_s else None,
        "replay_seconds": replay_s,
        "cdnow_state_bytes_mean": statistics.fmean(sizes),
        "weekly_year_state_bytes": weekly_year_states(config, parse_day(CDNOW_AS_OF)),
    }


def state_sizes(by_customer: dict[str, list[CoreEvent]], config: ScoringConfig) -> list[bytes]:
    """Each customer's state as the stream stores it after their last event (event-time clock)."""
    out = []
    for customer, events in by_customer.items():
        state = NEW_STATE
        for event in events:
            state = step(state, event, event.at_ms, customer, config).state
        out.append(encode_state(state))
    return out
