"""Part 7: seconds to rebuild a worker's customers from the changelog.

The loaded worker of part 6 is stopped (SIGTERM); a new worker with the same
app id starts and is timed from process start until its deadline index holds
every customer again (it is rebuilt from the table once recovery finishes).
The same configuration's start-up on an empty table is subtracted.
"""

from __future__ import annotations

import time
from typing import Any

from bench.context import Context
from bench.services import Process, wait_until


def deadlines(proc: Process) -> int:
    doc = proc.get("/health", timeout=1.0)
    return int(doc.get("customers_with_deadline", 0)) if doc else 0


def run_recovery(ctx: Context, loaded: Process, config: dict[str, Any], empty_ready_s: float) -> dict[str, Any]:
    expected = deadlines(loaded)
    loaded.stop()
    worker = ctx.start("recovered", config)
    try:
        wait_until(lambda: deadlines(worker) >= expected, 600, 0.1, "recovery", worker)
        seconds = time.perf_counter() - worker.started
        rebuilt = deadlines(worker)
    finally:
        worker.stop()
    net = max(0.0, seconds - empty_ready_s)
    return {"customers": expected, "rebuilt": rebuilt, "seconds_to_ready": seconds, "empty_ready_s": empty_ready_s,
            "rebuild_s": net, "s_per_100k": net * 100_000 / expected if expected else None}
