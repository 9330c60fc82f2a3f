"""Optional py-spy profiles of a worker while a part measures it (`--profile DIR`).

Each is a collapsed-stacks file (`<name>.txt`: flamegraph.pl and speedscope read
it) sampled while the thread holds the GIL, i.e. following Python CPU time;
`python -m bench.profiles DIR` summarises them.
"""

from __future__ import annotations

import shutil
import signal
import sys
from pathlib import Path
from types import TracebackType
from typing import TYPE_CHECKING

from streams.local.process import ChildProcess

if TYPE_CHECKING:
    from bench.context import Context
    from bench.services import Process


def py_spy() -> str | None:
    local = Path(sys.executable).parent / "py-spy"
    return str(local) if local.is_file() else shutil.which("py-spy")


class Profiler:
    """py-spy record of `proc` for the duration of the `with` block, when profiling was asked for."""

    def __init__(self, ctx: Context, proc: Process, name: str) -> None:
        self.binary = py_spy() if ctx.profile_dir is not None else None
        self.proc = proc
        self.spy: ChildProcess | None = None
        self.raw = (ctx.profile_dir or Path()) / f"{name}.txt"

    def __enter__(self) -> Profiler:
        if self.binary is not None:
            self.raw.parent.mkdir(parents=True, exist_ok=True)
            self.spy = ChildProcess.start(
                "py-spy", [self.binary, "record", "--pid", str(self.proc.pid), "--output", str(self.raw), "--format",
                           "raw", "--rate", "50", "--gil", "--nonblocking"], None)
        return self

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        if self.spy is not None:
            self.spy.stop(grace=30, sig=signal.SIGINT)  # py-spy writes its output on SIGINT
