"""`tierstream demo`."""

from __future__ import annotations

import sys
from typing import Annotated

import typer

from streams.cli.base import ConfigOpt, app, settings_from


@app.command(epilog="""Examples:

\b
  tierstream demo                           # embedded broker, Redis, worker, generator; Ctrl-C stops all
  tierstream demo --customers 5000 --seed 3 --day-seconds 1
  tierstream demo --duration 30 --no-live   # a summary every 5 s for 30 s, then stop (CI, logs)
  KAFKA_BOOTSTRAP=127.0.0.1:9092 REDIS_URL=redis://127.0.0.1:6379/0 tierstream demo
      # use running Kafka and Redis instead of starting embedded ones
""")
def demo(
    customers: Annotated[int, typer.Option(min=1, max=200_000, help="Synthetic customers.")] = 1000,
    seed: Annotated[int, typer.Option(help="Generator seed.")] = 7,
    duration: Annotated[float | None, typer.Option(
        min=1, help="Stream this many seconds after the worker is ready, then stop everything.")] = None,
    live: Annotated[bool, typer.Option("--live/--no-live", help="Live view, or a summary every 5 s.")] = True,
    day_seconds: Annotated[float, typer.Option(min=0.05, max=86_400, help="Real seconds per simulated day.")] = 1.5,
    history_days: Annotated[int, typer.Option(min=0, max=365, help="Simulated history sent at once first.")] = 120,
    config: ConfigOpt = None,
) -> None:
    """Run the whole thing locally and watch tiers change.

    Watch tiers, changes, actions and at-risk alerts as time passes."""
    from streams.local.demo import DemoOptions, run_demo

    settings = settings_from(config)
    opts = DemoOptions(customers=customers, seed=seed, duration=duration, live=live and sys.stdout.isatty(),
                       day_seconds=day_seconds, history_days=history_days)
    raise typer.Exit(run_demo(settings, opts))
