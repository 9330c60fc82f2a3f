"""One child process: started with its output in a log file, waited for until it is ready, stopped by its pid.

The embedded broker and Redis (`streams.local.embedded`), the demo's worker, the test kits' workers and the
benchmark's processes are all this type (subclasses add a port or a URL). A process is only ever signalled
through its own pid, never by name: stopping is SIGTERM, then SIGKILL after a grace period; `kill()` is the
SIGKILL of a crash (fault tests).
"""

from __future__ import annotations

import asyncio
import contextlib
import ctypes
import os
import signal
import subprocess
import time
from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Self

__all__ = ["ChildProcess", "ProcessError"]

_PR_SET_PDEATHSIG = 1


class ProcessError(RuntimeError):
    """A child process exited, or was not ready in time; the message ends with the tail of its log."""


@dataclass(eq=False, kw_only=True)
class ChildProcess:
    """A running child process and its log file (None: its output was discarded)."""

    name: str
    popen: subprocess.Popen[bytes]
    log_path: Path | None
    started: float = field(default_factory=time.perf_counter)  # time.perf_counter() when it was started

    @classmethod
    def start(cls, name: str, argv: Sequence[str], log_path: Path | None, *, cwd: Path | None = None,
              env: Mapping[str, str] | None = None, append_log: bool = False, new_session: bool = False,
              die_with_parent: bool = False, **fields: Any) -> Self:
        """Start `argv` with stdin closed and stdout and stderr to `log_path` (appended to with `append_log`).

        `new_session`: a Ctrl-C in the terminal reaches only us, and we stop the child in order.
        `die_with_parent`: Linux sends the child SIGTERM when the thread that started it dies, even by kill -9
        (start such children from a long-lived thread). `fields`: those of a subclass.
        """
        preexec = _die_with_parent if (die_with_parent and os.name == "posix") else None
        log = open(log_path, "ab" if append_log else "wb") if log_path is not None else None  # noqa: SIM115
        try:
            popen = subprocess.Popen(
                list(argv), cwd=cwd, env=None if env is None else dict(env), stdin=subprocess.DEVNULL,
                stdout=log if log is not None else subprocess.DEVNULL, stderr=subprocess.STDOUT,
                start_new_session=new_session, preexec_fn=preexec)  # noqa: PLW1509
        finally:
            if log is not None:
                log.close()  # the child has its own copy
        return cls(name=name, popen=popen, log_path=log_path, **fields)

    @property
    def pid(self) -> int:
        return self.popen.pid

    @property
    def returncode(self) -> int | None:
        """The exit code once it has exited (negative: the signal that ended it), else None."""
        return self.popen.poll()

    def alive(self) -> bool:
        """True while the process has not exited."""
        return self.popen.poll() is None

    def log_tail(self, size: int = 4000) -> str:
        """About the last `size` characters of the log, from the start of a line."""
        if self.log_path is None:
            return ""
        try:
            with self.log_path.open("rb") as log:
                start = max(0, log.seek(0, os.SEEK_END) - size - 1)  # one more byte: does a line start after it?
                log.seek(start)
                data = log.read()
        except OSError as exc:
            return f"(no log: {exc})"
        if start > 0:  # drop the line the cut went through
            data = data[data.index(b"\n") + 1:] if b"\n" in data[:-1] else data[1:]
        return data.decode("utf-8", "replace")

    def check_alive(self) -> None:
        """ProcessError (with the log tail) if the process has exited."""
        if (code := self.returncode) is not None:
            raise ProcessError(f"{self.name} exited with {code}:\n{self.log_tail()}")

    def wait_until(self, ready: Callable[[], bool], timeout: float, what: str = "ready",
                   poll: float = 0.02) -> float:
        """Poll `ready()` until true (an OSError counts as not yet); the seconds it took. ProcessError, with
        the log tail, if the process exits first or `timeout` s pass."""
        began = time.perf_counter()
        while True:
            self.check_alive()
            with contextlib.suppress(OSError):
                if ready():
                    return time.perf_counter() - began
            self._check_time(began, timeout, what)
            time.sleep(poll)

    async def wait_until_async(self, ready: Callable[[], Awaitable[bool]], within: float, what: str = "ready",
                               poll: float = 0.1) -> float:
        """`wait_until` for an async `ready()` (`within`: the timeout)."""
        began = time.perf_counter()
        while True:
            self.check_alive()
            with contextlib.suppress(OSError):
                if await ready():
                    return time.perf_counter() - began
            self._check_time(began, within, what)
            await asyncio.sleep(poll)

    def _check_time(self, began: float, timeout: float, what: str) -> None:
        if time.perf_counter() - began > timeout:
            raise ProcessError(f"{self.name} not {what} after {timeout:g} s:\n{self.log_tail()}")

    def send(self, sig: int) -> None:
        """Send `sig` to this pid (e.g. SIGSTOP to freeze it), unless it is gone."""
        with contextlib.suppress(ProcessLookupError):
            os.kill(self.pid, sig)

    def stop(self, grace: float = 15.0, sig: int = signal.SIGTERM) -> int | None:
        """`sig` (SIGTERM), up to `grace` s to exit, then SIGKILL; reaped. The exit code; idempotent."""
        if self.alive():
            self.send(sig)
            try:
                self.popen.wait(timeout=grace)
            except subprocess.TimeoutExpired:
                self.kill()
        return self.popen.returncode

    def kill(self, wait: float = 15.0) -> int | None:
        """SIGKILL (a crash: no clean-up in the child) and reap; the exit code, None if not reaped in `wait` s."""
        if self.alive():
            self.send(signal.SIGKILL)
            with contextlib.suppress(subprocess.TimeoutExpired):
                self.popen.wait(timeout=wait)
        return self.popen.returncode


def _die_with_parent() -> None:  # pragma: no cover - runs in the child, between fork and exec
    """preexec_fn: ask Linux to SIGTERM the child when its parent thread dies."""
    with contextlib.suppress(OSError, AttributeError):
        ctypes.CDLL(None, use_errno=True).prctl(_PR_SET_PDEATHSIG, signal.SIGTERM, 0, 0, 0)
