"""Run a worker: check/create topics, then hand over to Faust's worker."""

from __future__ import annotations

import asyncio
import logging

import faust

from streams.app import Tierstream
from streams.kafka import ensure_topics
from streams.ops import install_ops
from streams.settings import Settings
from streams.web import register_views

QUIET_LOGGERS = ("aiokafka", "faust", "mode", "kafka")


def build(settings: Settings) -> Tierstream:
    ts = Tierstream(settings)
    register_views(ts)
    install_ops(ts)
    return ts


def run_worker(settings: Settings) -> None:
    """Blocks until the worker stops (SIGTERM/SIGINT)."""
    asyncio.run(ensure_topics(settings))
    ts = build(settings)
    level = settings.log_level.upper()
    for name in QUIET_LOGGERS:  # their debug records cost throughput even when not shown
        logging.getLogger(name).setLevel(max(logging.WARNING, getattr(logging, level)))
    worker = faust.Worker(ts.app, loglevel=level, quiet=True)
    worker.execute_from_commandline()
