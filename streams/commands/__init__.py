"""CLI commands; each module registers its commands on `streams.cli.app` when imported.

To add a command: write `streams/commands/<name>.py` and add its import here.
"""

from streams.commands import model, replay, resync, schemas, worker

__all__ = ["model", "replay", "resync", "schemas", "worker"]

from streams.commands import backfill, customer, demo, generate, topics

__all__ += ["backfill", "customer", "demo", "generate", "topics"]
