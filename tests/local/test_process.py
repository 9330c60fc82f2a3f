"""`ChildProcess`, the one child-process type of the local services, the demo, the kits and the bench:
broker-free, with `python -c` children."""

from __future__ import annotations

import asyncio
import os
import signal
import sys
import time
from pathlib import Path

import pytest

from streams.local.process import ChildProcess, ProcessError

# Prints a line, then makes ./ready once SIGUSR1 has arrived; on SIGTERM says so and exits 3.
GRACEFUL = """
import pathlib, signal, sys, time
signal.signal(signal.SIGUSR1, lambda *_: pathlib.Path("ready").touch())
signal.signal(signal.SIGTERM, lambda *_: (print("got SIGTERM", flush=True), sys.exit(3)))
print("started", flush=True)
while True:
    time.sleep(0.01)
"""
# Ignores SIGTERM: only SIGKILL ends it.
STUBBORN = """
import signal, time
signal.signal(signal.SIGTERM, signal.SIG_IGN)
print("ignoring SIGTERM", flush=True)
while True:
    time.sleep(0.01)
"""


def start(tmp_path: Path, script: str, name: str = "child") -> ChildProcess:
    return ChildProcess.start(name, [sys.executable, "-c", script], tmp_path / f"{name}.log", cwd=tmp_path)


def printed(proc: ChildProcess, text: str) -> bool:
    return text in proc.log_tail()


def test_waits_until_ready_then_stops_gracefully_on_sigterm(tmp_path: Path) -> None:
    proc = start(tmp_path, GRACEFUL)
    try:
        assert proc.alive() and proc.returncode is None and proc.pid > 0
        proc.wait_until(lambda: printed(proc, "started"), 20)
        proc.send(signal.SIGUSR1)
        proc.wait_until((tmp_path / "ready").exists, 20)
    finally:
        code = proc.stop(grace=20)
    assert code == 3 and proc.returncode == 3 and not proc.alive()
    assert proc.log_tail().splitlines() == ["started", "got SIGTERM"]
    assert proc.stop() == 3  # idempotent


def test_a_child_that_exits_before_it_is_ready_is_an_error_with_its_log_tail(tmp_path: Path) -> None:
    proc = start(tmp_path, "import sys; print('bad config: no broker'); sys.exit(2)", name="worker")
    with pytest.raises(ProcessError) as err:
        proc.wait_until(lambda: False, 20)
    assert str(err.value) == "worker exited with 2:\nbad config: no broker\n"


def test_not_ready_in_time_is_an_error_with_the_log_tail_and_the_child_runs_on(tmp_path: Path) -> None:
    proc = start(tmp_path, GRACEFUL, name="redis")
    try:
        proc.wait_until(lambda: printed(proc, "started"), 20)
        began = time.perf_counter()
        with pytest.raises(ProcessError) as err:
            proc.wait_until(lambda: False, 0.3, "ready on port 1")
        assert time.perf_counter() - began >= 0.3
        assert str(err.value) == "redis not ready on port 1 after 0.3 s:\nstarted\n"
        assert proc.alive()
    finally:
        proc.stop(grace=20)


def test_an_oserror_of_the_probe_means_not_yet(tmp_path: Path) -> None:
    proc = start(tmp_path, GRACEFUL)
    calls: list[int] = []

    def probe() -> bool:
        calls.append(1)
        if len(calls) < 3:
            raise ConnectionRefusedError
        return True

    try:
        assert proc.wait_until(probe, 20) >= 0 and len(calls) == 3
    finally:
        proc.stop(grace=20)


def test_async_wait(tmp_path: Path) -> None:
    proc = start(tmp_path, GRACEFUL)

    async def started() -> bool:
        return printed(proc, "started")

    async def never() -> bool:
        return False

    try:
        asyncio.run(proc.wait_until_async(started, 20, poll=0.01))
        with pytest.raises(ProcessError, match=r"^child not ready after 0.2 s:\nstarted\n$"):
            asyncio.run(proc.wait_until_async(never, 0.2, poll=0.01))
    finally:
        proc.stop(grace=20)


def test_a_child_that_ignores_sigterm_is_killed_after_the_grace_period(tmp_path: Path) -> None:
    proc = start(tmp_path, STUBBORN)
    proc.wait_until(lambda: printed(proc, "ignoring SIGTERM"), 20)
    began = time.perf_counter()
    assert proc.stop(grace=0.5) == -signal.SIGKILL
    assert time.perf_counter() - began >= 0.5
    with pytest.raises(ProcessLookupError):
        os.kill(proc.pid, 0)  # reaped


def test_kill_is_a_crash_no_clean_up_in_the_child(tmp_path: Path) -> None:
    proc = start(tmp_path, GRACEFUL)
    proc.wait_until(lambda: printed(proc, "started"), 20)
    assert proc.kill() == -signal.SIGKILL
    assert "got SIGTERM" not in proc.log_tail()
    with pytest.raises(ProcessError, match=r"^child exited with -9:\nstarted\n$"):
        proc.check_alive()


def test_the_log_is_appended_to_on_request_and_its_tail_starts_at_a_line(tmp_path: Path) -> None:
    log = tmp_path / "bench.log"
    for text in ("first run", "second run"):
        ChildProcess.start("bench", [sys.executable, "-c", f"print({text!r})"], log, append_log=True).popen.wait(20)
    assert log.read_text() == "first run\nsecond run\n"
    proc = ChildProcess.start("long", [sys.executable, "-c", "for i in range(1000): print(f'line {i:04d}')"],
                              tmp_path / "long.log")
    proc.popen.wait(20)
    assert proc.log_tail(100) == "".join(f"line {i:04d}\n" for i in range(990, 1000))
    assert proc.log_tail(105) == proc.log_tail(100)  # not half a line


def test_output_can_be_discarded_and_a_new_session_does_not_share_our_process_group(tmp_path: Path) -> None:
    proc = ChildProcess.start("quiet", [sys.executable, "-c", "import os, time; print(os.getpgid(0)); "
                                        "time.sleep(30)"], None, new_session=True)
    try:
        assert proc.log_tail() == ""
        assert os.getpgid(proc.pid) == proc.pid != os.getpgid(0)
    finally:
        assert proc.stop(grace=20) == -signal.SIGTERM
