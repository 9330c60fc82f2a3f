"""Processes the benchmark runs: broker, Redis and workers, each stopped by its own pid."""

from __future__ import annotations

import json
import os
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from streams.local.embedded import EmbeddedProcess, free_port, start_redis, start_tansu
from streams.local.process import ChildProcess

ROOT = Path(__file__).resolve().parents[1]
PYTHON = sys.executable


@dataclass
class Services:
    """One broker and one Redis for the whole run."""

    broker: EmbeddedProcess
    redis: EmbeddedProcess

    @property
    def bootstrap(self) -> str:
        return self.broker.bootstrap

    def stop(self) -> None:
        self.broker.stop()
        self.redis.stop()


def start_services() -> Services:
    broker = start_tansu()
    try:
        return Services(broker, start_redis())
    except BaseException:
        broker.stop()
        raise


def rss_bytes(pid: int) -> int:
    """Resident set size of a process (Linux /proc), bytes."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) * 1024
    raise RuntimeError(f"no VmRSS for pid {pid}")


def cpu_times(pid: int) -> tuple[float, float]:
    """User and system CPU time a process has used (Linux /proc), seconds."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    tick = os.sysconf("SC_CLK_TCK")
    return int(fields[11]) / tick, int(fields[12]) / tick


def cpu_seconds(pid: int) -> float:
    """User + system CPU time a process has used, seconds."""
    return sum(cpu_times(pid))


def get_json(url: str, timeout: float = 2.0, body: dict[str, Any] | None = None) -> dict[str, Any] | None:
    """GET (or POST `body`) a JSON document; None when the server does not answer."""
    data = None if body is None else json.dumps(body).encode()
    request = urllib.request.Request(url, data=data, method="GET" if body is None else "POST")
    try:
        with urllib.request.urlopen(request, timeout=timeout) as response:
            doc: dict[str, Any] = json.loads(response.read())
            return doc
    except (OSError, ValueError, urllib.error.URLError):
        return None


@dataclass(eq=False, kw_only=True)
class Process(ChildProcess):
    """A Python child process on a web port, with its output in a log file."""

    log_path: Path
    port: int

    def url(self, path: str) -> str:
        return f"http://127.0.0.1:{self.port}{path}"

    def get(self, path: str, timeout: float = 2.0) -> dict[str, Any] | None:
        return get_json(self.url(path), timeout)

    def rss(self) -> int:
        return rss_bytes(self.pid)

    def cpu_seconds(self) -> float:
        return cpu_seconds(self.pid)


def start_worker(name: str, config: dict[str, Any], workdir: Path, module: str = "bench.worker",
                 args: tuple[str, ...] = ()) -> Process:
    """A worker (or the bare Faust app) from a YAML config written into `workdir`."""
    path = workdir / f"{name}.yaml"
    path.write_text(yaml.safe_dump(config, sort_keys=False))
    port = free_port()
    argv = [PYTHON, "-m", module, "--config", str(path), *args, "--web-port", str(port)]
    return Process.start(name, argv, workdir / f"{name}.log", cwd=workdir, env={**os.environ, "PYTHONPATH": str(ROOT)},
                         append_log=True, new_session=True, port=port)


def wait_until(predicate: Any, timeout: float, poll: float = 0.1, what: str = "condition",
               proc: Process | None = None) -> float:
    """Poll `predicate` until true; the time it took (s). Raises TimeoutError."""
    start = time.perf_counter()
    while True:
        if predicate():
            return time.perf_counter() - start
        if proc is not None:
            proc.check_alive()
        if time.perf_counter() - start > timeout:
            raise TimeoutError(f"{what} not reached after {timeout:.0f} s")
        time.sleep(poll)


def wait_ready(proc: Process, timeout: float = 90.0,
               on_ready: Callable[[dict[str, Any]], None] | None = None) -> float:
    """Seconds from the process start until its /health lists owned partitions; `on_ready` gets that
    /health document (a measurement's first sample: the worker may be done with a small input before
    the next one)."""
    seen: list[dict[str, Any]] = []

    def ready() -> bool:
        doc = proc.get("/health", timeout=1.0)
        if doc and doc.get("partitions"):
            seen.append(doc)
            return True
        return False

    proc.wait_until(ready, timeout, poll=0.1)
    if on_ready is not None:
        on_ready(seen[-1])
    return time.perf_counter() - proc.started
