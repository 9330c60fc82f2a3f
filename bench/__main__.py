"""`python -m bench [--quick | --tiny] [--only PARTS] [--out FILE] [--profile DIR] [--peers]`.

Parts: core, pipeline, latency, scaleout, memory, reviews, recovery (latency
and scale-out need pipeline; recovery needs reviews: they are added). Prints
a table, writes the JSON (default bench/results.json) and, after a run of
every part, the latest table into bench/README.md.
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from rich.console import Console

from bench import report
from bench.run import run_parts
from bench.sizes import FULL, QUICK, TINY, Sizes
from scoring.config import ScoringConfig

PARTS = ("core", "pipeline", "latency", "scaleout", "memory", "reviews", "recovery")
NEEDS = {"latency": "pipeline", "scaleout": "pipeline", "recovery": "reviews"}
SERVICE_PARTS = {"pipeline", "latency", "scaleout", "reviews", "recovery"}
DEFAULT_OUT = Path(__file__).with_name("results.json")


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m bench", description=__doc__.splitlines()[0])
    size = parser.add_mutually_exclusive_group()
    size.add_argument("--quick", action="store_true", help="every part smaller (< 3 minutes)")
    size.add_argument("--tiny", action="store_true", help="smallest sizes (smoke test)")
    parser.add_argument("--only", default=",".join(PARTS), help=f"comma-separated parts of: {', '.join(PARTS)}")
    parser.add_argument("--out", type=Path, default=DEFAULT_OUT, help="JSON results file")
    parser.add_argument("--workdir", type=Path, default=None,
                        help="keep the services' and workers' logs and configs here (default: a temporary directory)")
    parser.add_argument("--profile", type=Path, default=None,
                        help="directory for py-spy profiles (raw collapsed stacks) of the measured workers")
    parser.add_argument("--peers", action="store_true",
                        help="part 2 also runs Quix Streams and bytewax on the simple job (bench/peers/; their own "
                             "virtualenv .venv-peers is built on first use)")
    parser.add_argument("--latency-base", type=float, default=None, metavar="EVENTS_PER_S",
                        help="part 3 offers 25/50/75 %% of this rate instead of the rate part 2 measured (to compare "
                             "two versions of the worker at the same offered loads)")
    return parser.parse_args(argv)


def selected(only: str) -> list[str]:
    wanted = {p.strip() for p in only.split(",") if p.strip()}
    unknown = wanted - set(PARTS)
    if unknown:
        raise SystemExit(f"bench: unknown part(s): {', '.join(sorted(unknown))}")
    wanted |= {NEEDS[p] for p in wanted if p in NEEDS}
    return [p for p in PARTS if p in wanted]


def sizes_of(args: argparse.Namespace) -> Sizes:
    return QUICK if args.quick else TINY if args.tiny else FULL


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    parts, sizes = selected(args.only), sizes_of(args)
    console = Console() if sys.stdout.isatty() else Console(width=132)
    meta: dict[str, Any] = {"sizes": sizes.name, "parts": parts, "date": report.now_iso(), "machine": report.machine(),
            "command": " ".join(["python -m bench", *(argv if argv is not None else sys.argv[1:])])}
    started = time.perf_counter()
    with tempfile.TemporaryDirectory(prefix="tierstream-bench-") as tmp:
        workdir = args.workdir or Path(tmp)
        workdir.mkdir(parents=True, exist_ok=True)
        results: dict[str, Any] = run_parts(parts, sizes, workdir, ScoringConfig(), args.profile, console,
                                            peers=args.peers, latency_base=args.latency_base)
    meta["seconds"] = round(time.perf_counter() - started, 1)
    meta["loadavg_end"] = report.machine()["loadavg"]
    results["meta"] = meta
    args.out.write_text(json.dumps(results, indent=2, default=str) + "\n")
    report.show(results, console)
    console.print(f"results: {args.out}  ({meta['seconds']:.0f} s)")
    if parts == list(PARTS) and args.out == DEFAULT_OUT:
        report.update_readme(results)
    return 0


if __name__ == "__main__":
    sys.exit(main())
