"""Run a tierstream worker exactly as `tierstream worker --config F --web-port P` does, for the benchmark.

Its /health already reports what the benchmark's completion signals need (`events_scored`,
`dead_lettered`, `duplicates`, `reviewed`, `customers_with_deadline`).
"""

from __future__ import annotations

import argparse
from pathlib import Path

from streams.settings import load_settings
from streams.worker.run import run_worker


def main() -> None:
    parser = argparse.ArgumentParser(prog="python -m bench.worker")
    parser.add_argument("--config", type=Path, required=True)
    parser.add_argument("--web-port", type=int, required=True)
    args = parser.parse_args()
    run_worker(load_settings(args.config, web_port=args.web_port))


if __name__ == "__main__":
    main()
