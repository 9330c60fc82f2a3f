"""`tierstream redis-resync`."""

from __future__ import annotations

from typing import Annotated

import typer

from streams.cli.base import ConfigOpt, app, err, settings_from


@app.command("redis-resync", epilog="""Examples:

\b
  tierstream redis-resync            # rewrite every customer's profile from the table
  tierstream redis-resync --clean    # drop the prefix's keys first (removes stale customers)
""")
def redis_resync(
    config: ConfigOpt = None,
    bootstrap: Annotated[str | None, typer.Option("--bootstrap", help="Kafka host:port (env KAFKA_BOOTSTRAP).")]
    = None,
    redis_url: Annotated[str | None, typer.Option("--redis-url", help="Redis URL (env REDIS_URL).")] = None,
    clean: Annotated[bool, typer.Option(help="Delete all keys under the prefix first.")] = False,
) -> None:
    """Rebuild the Redis serving view from the customers table.

    Reads the table's changelog topic and writes every customer's profile."""
    from redis.asyncio import Redis
    from redis.exceptions import RedisError

    from streams.kafka import one_line, run_kafka
    from streams.serving.resync import resync

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
        run_kafka(settings, run())  # an unreachable Kafka: one line, exit 1 (`streams.cli.main`)
    except RedisError as exc:
        err.print(f"tierstream: error: Redis: {one_line(exc)}", markup=False, soft_wrap=True)
        raise typer.Exit(1) from None
