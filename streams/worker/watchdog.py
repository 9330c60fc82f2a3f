"""A watchdog for Faust's table recovery: when it has received nothing for a while, say why, and kick it.

Faust's recovery (faust.tables.recovery) reads each active changelog partition up to the highwater it
asked for and only warns, every 5 s and forever, when nothing arrives. A worker in that state owns its
partitions and scores nothing. The watchdog notices it (`recovery_stall`), logs what the recovery
waits for (offsets read, highwaters asked, consumer positions, paused partitions) and where every
task of the worker is blocked, then seeks the stalled changelog partitions again from where the
recovery stands and resumes them, which restarts their fetch.
"""

from __future__ import annotations

import asyncio
import io
import logging
from collections.abc import Iterable
from typing import Any

log = logging.getLogger("tierstream.worker")


def recovery_stall(recovery: Any, now: float, limit: float) -> list[Any]:
    """The active changelog partitions the recovery still needs and has received nothing from for `limit`
    seconds (since the recovery started or their last record); [] when the recovery is not stalled."""
    started = getattr(recovery, "_recovery_started_at", None)
    if not getattr(recovery, "in_recovery", False) or started is None:
        return []
    received = getattr(recovery, "_active_events_received_at", {})
    remaining = recovery.active_remaining()
    return sorted((tp for tp, left in remaining.items() if left > 0 and now - received.get(tp, started) >= limit),
                  key=lambda tp: (tp.topic, tp.partition))


def task_stacks(tasks: Iterable[asyncio.Task[Any]], limit: int = 6) -> str:
    """Where each task waits (the innermost `limit` frames of each)."""
    out = io.StringIO()
    for task in tasks:
        out.write(f"-- {task.get_name()} {task.get_coro()!r:.120}\n")
        task.print_stack(limit=limit, file=out)
    return out.getvalue()


async def kick_recovery(app: Any, stalled: list[Any]) -> None:
    """Log what the stalled recovery waits for and where tasks are blocked; then fetch the stalled changelog
    partitions again from the recovery's offsets (a fetch stuck on them starts over)."""
    recovery, consumer = app.tables.recovery, app.consumer
    positions = {}
    for tp in stalled:
        try:
            positions[tp] = await consumer.position(tp)
        except Exception as exc:
            positions[tp] = repr(exc)
    figures = {f"{tp.topic}[{tp.partition}]": {"read up to": recovery.active_offsets.get(tp),
                                              "highwater asked": recovery.active_highwaters.get(tp),
                                              "position": positions[tp],
                                              "fetch highwater": consumer.highwater_marks([tp]).get(tp)}
               for tp in stalled}
    log.error("table recovery has received nothing for its partitions %s; fetching them again. Where tasks "
              "wait:\n%s", figures, task_stacks(asyncio.all_tasks()))
    for tp in stalled:
        offset = recovery.active_offsets.get(tp)
        await consumer.seek(tp, 0 if offset is None or offset < 0 else offset + 1)
    consumer.resume_partitions(stalled)
    app.flow_control.resume()
    consumer.resume_flow()
