"""Run a worker: check/create topics, then hand over to Faust's worker."""

from __future__ import annotations

import asyncio
import gc
import io
import logging
import signal
from typing import Any

import faust

from scoring.errors import ConfigError
from streams.kafka import TopicMismatchError, ensure_topics, run_kafka
from streams.logging_setup import configure_logging
from streams.settings import Settings
from streams.worker.app import Tierstream
from streams.worker.faust_options import set_fetch_max_wait
from streams.worker.ops import install_ops, ready_banner
from streams.worker.views import register_views, token_middleware

QUIET_LOGGERS = ("aiokafka", "faust", "mode", "kafka")
# The cyclic GC's thresholds once the worker is up. What the worker allocates per event (decoded messages, states,
# outputs) is freed by reference counting; with the default (700, 10, 10) the collector still ran ~1,200 times per
# 52,000 events and walked the heap again each time (~10 % of the per-event CPU, measured in-process on bench's
# stream, more in a worker whose heap holds Faust and aiokafka). The start-up heap is frozen out of it.
GC_THRESHOLDS = (10_000, 50, 100)


def build(settings: Settings) -> Tierstream:
    """The worker with its web pages, ops and the token guard in front of every route."""
    ts = Tierstream(settings)
    status = ts.status()
    register_views(ts.app, status)
    install_ops(ts.app, status)
    web: Any = ts.app.web  # faust.web.drivers.aiohttp.Web
    web.web_app.middlewares.append(token_middleware(settings))
    return ts


class TierstreamWorker(faust.Worker):
    """Faust's worker that prints where the dashboard, query API and /metrics are once ready."""

    def __init__(self, ts: Tierstream, **kwargs: Any) -> None:
        super().__init__(ts.app, **kwargs)
        self.ts_settings = ts.settings

    async def on_startup_finished(self) -> None:
        await super().on_startup_finished()
        gc.collect()
        gc.freeze()  # modules, Faust, the app: long-lived, never walked again by the collector
        gc.set_threshold(*GC_THRESHOLDS)
        asyncio.get_running_loop().add_signal_handler(signal.SIGUSR1, dump_tasks)
        print(ready_banner(self.ts_settings), flush=True)


def dump_tasks() -> None:
    """SIGUSR1: log where every task of the worker's event loop is waiting (a stuck worker's first clue)."""
    out = io.StringIO()
    for task in asyncio.all_tasks():
        task.print_stack(limit=8, file=out)
    logging.getLogger("tierstream.worker").warning("SIGUSR1: %d tasks\n%s", len(asyncio.all_tasks()), out.getvalue())


def run_worker(settings: Settings) -> None:
    """Blocks until the worker stops (SIGTERM/SIGINT)."""
    try:
        run_kafka(settings, ensure_topics(settings))  # an unreachable Kafka: KafkaUnavailableError, one line
    except TopicMismatchError as exc:  # refuse to start: one line on stderr (the CLI's config error), exit 2
        raise ConfigError(str(exc)) from None
    set_fetch_max_wait(settings.consumer_fetch_max_wait_ms)
    ts = build(settings)
    level = settings.log_level.upper()
    log_config = configure_logging(settings.log_level, settings.log_format)
    for name in QUIET_LOGGERS:  # their debug records cost throughput even when not shown
        logging.getLogger(name).setLevel(max(logging.WARNING, getattr(logging, level)))
    # redirect_stdouts=False: else Faust turns the banner's print into a WARNING log line.
    worker = TierstreamWorker(ts, loglevel=level, quiet=True, logging_config=log_config, redirect_stdouts=False)
    worker.execute_from_commandline()
