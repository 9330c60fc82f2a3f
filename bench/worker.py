"""Run a tierstream worker as `tierstream worker --config F --web-port P` does, for the benchmark.

The only difference: /health also reports the pipeline's `reviewed` and
`duplicates` counters when the worker's own document does not (yet), because
the benchmark's completion signals need them.
"""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import TYPE_CHECKING, Any

import streams.web
from streams.settings import load_settings
from streams.worker import run_worker

if TYPE_CHECKING:
    from streams.app import Tierstream

_original = streams.web.health_document


async def _health_with_counters(ts: Tierstream) -> dict[str, Any]:
    doc = await _original(ts)
    counters = ts.pipeline.counters
    doc.setdefault("reviewed", counters.reviewed)
    doc.setdefault("duplicates", counters.duplicates)
    return doc


def main() -> None:
    parser = argparse.ArgumentParser(prog="python -m bench.worker")
    parser.add_argument("--config", type=Path, required=True)
    parser.add_argument("--web-port", type=int, required=True)
    args = parser.parse_args()
    streams.web.health_document = _health_with_counters
    run_worker(load_settings(args.config, web_port=args.web_port))


if __name__ == "__main__":
    main()
