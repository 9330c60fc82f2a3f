"""`tierstream redis-resync`."""

from __future__ import annotations

import asyncio
from typing import Annotated

import typer
from redis.asyncio import Redis

from streams.cli import ConfigOpt, app, err, settings_from


@app.command("redis-resync", epilog="""Examples:

  tierstream redis-resync                 # rewrite every customer's profile from the tables

  tierstream redis-resync --clean         # drop the prefix's keys first (removes stale customers)
""")
def redis_resync(
    config: ConfigOpt = None,
    bootstrap: Annotated[str | None, typer.Option("--bootstrap", help="Kafka host:port (env KAFKA_BOOTSTRAP).")]
    = None,
    redis_url: Annotated[str | None, typer.Option("--redis-url", help="Redis URL (env REDIS_URL).")] = None,
    clean: Annotated[bool, typer.Option(help="Delete all keys under the prefix first.")] = False,
) -> None:
    """Rebuild the Redis serving view from the customers table's changelog."""
    from streams.resync import resync

    settings = settings_from(config, kafka_bootstrap=bootstrap, redis_url=redis_url)

    async def run() -> None:
        redis = Redis.from_url(settings.redis_url.get_secret_value())
        try:
            report = await resync(settings, redis, clean=clean)
        finally:
            await redis.aclose()
        err.print(f"read {report.records:,} changelog records, {report.customers:,} customers; "
                  f"wrote {report.written:,} profiles in {report.seconds:.1f} s")

    try:
        asyncio.run(run())
    except (ConnectionError, OSError) as exc:
        err.print(f"tierstream: error: {exc}", markup=False)
        raise typer.Exit(1) from None
