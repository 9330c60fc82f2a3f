"""Run a worker: check/create topics, then hand over to Faust's worker."""

from __future__ import annotations

import asyncio
import logging
from typing import Any

import faust

from scoring.errors import ConfigError
from streams.app import Tierstream
from streams.faust_options import set_fetch_max_wait
from streams.kafka import TopicMismatchError, ensure_topics
from streams.logging_setup import configure_logging
from streams.ops import install_ops, ready_banner
from streams.settings import Settings
from streams.web import register_views

QUIET_LOGGERS = ("aiokafka", "faust", "mode", "kafka")


def build(settings: Settings) -> Tierstream:
    ts = Tierstream(settings)
    register_views(ts)
    install_ops(ts)
    return ts


class TierstreamWorker(faust.Worker):
    """Faust's worker that prints where the dashboard, query API and /metrics are once ready."""

    def __init__(self, ts: Tierstream, **kwargs: Any) -> None:
        super().__init__(ts.app, **kwargs)
        self.ts_settings = ts.settings

    async def on_startup_finished(self) -> None:
        await super().on_startup_finished()
        print(ready_banner(self.ts_settings), flush=True)


def run_worker(settings: Settings) -> None:
    """Blocks until the worker stops (SIGTERM/SIGINT)."""
    try:
        asyncio.run(ensure_topics(settings))
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
