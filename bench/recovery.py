"""Part 7: seconds to rebuild a worker's customers from the changelog.

The loaded worker of part 6 is stopped (SIGTERM); a new worker with the same
app id starts and is timed from process start until its deadline index holds
every customer again (the index is rebuilt from the table once recovery
finishes). The same configuration's start-up on an empty table is subtracted.
When the worker logs recovery errors and the count stops moving for
`SETTLE_S` seconds, the recovery is reported as failed (with the count
rebuilt), not timed.
"""

from __future__ import annotations

import time
from typing import Any

from bench.context import Context
from bench.services import Process, wait_ready

SETTLE_S = 8.0
RECOVERY_ERROR = "Error in recovery"


def deadlines(proc: Process) -> int:
    doc = proc.get("/health", timeout=1.0)
    return int(doc.get("customers_with_deadline", 0)) if doc else 0


def failing(worker: Process) -> bool:
    return RECOVERY_ERROR in worker.log_path.read_text(errors="replace")


def wait_rebuilt(worker: Process, expected: int, timeout: float = 900.0) -> tuple[int, float]:
    """(customers rebuilt, seconds from process start until the count reached its final value)."""
    count, reached = deadlines(worker), time.perf_counter()
    while count < expected:
        worker.check_alive()
        now = time.perf_counter()
        if now - worker.started > timeout or (now - reached > SETTLE_S and failing(worker)):
            break
        time.sleep(0.1)
        seen = deadlines(worker)
        if seen > count:
            count, reached = seen, time.perf_counter()
    return count, reached - worker.started


def run_recovery(ctx: Context, loaded: Process, config: dict[str, Any], empty_ready_s: float) -> dict[str, Any]:
    expected = deadlines(loaded)
    loaded.stop()
    worker = ctx.start("recovered", config)
    try:
        wait_ready(worker)
        rebuilt, seconds = wait_rebuilt(worker, expected)
    finally:
        worker.stop()
    log = worker.log_path.read_text(errors="replace")
    errors = log.count(RECOVERY_ERROR)
    first_error = next((line for line in log.splitlines() if RECOVERY_ERROR in line), "")
    complete = rebuilt >= expected
    net = max(0.0, seconds - empty_ready_s)
    return {"customers": expected, "rebuilt": rebuilt, "complete": complete, "recovery_errors": errors,
            "first_error": first_error[-200:], "seconds_to_ready": seconds, "empty_ready_s": empty_ready_s,
            "rebuild_s": net, "s_per_100k": net * 100_000 / expected if expected and complete else None}
