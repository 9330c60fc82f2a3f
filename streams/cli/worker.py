"""`tierstream worker`."""

from __future__ import annotations

from typing import Annotated

import typer

from streams.cli.base import ConfigOpt, app, settings_from

BootstrapOpt = Annotated[str | None, typer.Option("--bootstrap", help="Kafka host:port[,...] (env KAFKA_BOOTSTRAP).")]
RedisOpt = Annotated[str | None, typer.Option("--redis-url", help="redis://host:port/db (env REDIS_URL).")]


@app.command(epilog="""Examples:

\b
  tierstream worker        # ./tierstream.yaml, env KAFKA_BOOTSTRAP, REDIS_URL
  tierstream worker --bootstrap kafka:9092 --redis-url redis://redis:6379/0 --web-port 6067
""")
def worker(
    config: ConfigOpt = None,
    bootstrap: BootstrapOpt = None,
    redis_url: RedisOpt = None,
    web_host: Annotated[str | None, typer.Option(help="Web API bind address (default 127.0.0.1).")] = None,
    web_port: Annotated[int | None, typer.Option(help="Web API port (default 6066).")] = None,
    partitions: Annotated[int | None, typer.Option(help="Partitions of co-partitioned topics.")] = None,
    clock: Annotated[str | None, typer.Option(help="wall (live) or event (backfill equals replay).")] = None,
    app_id: Annotated[str | None, typer.Option(help="Consumer group / table prefix.")] = None,
    fast_join: Annotated[bool | None, typer.Option(help="Short group-join timeouts (small clusters).")] = None,
) -> None:
    """Run a scoring worker.

    Consume events, keep the customers table, emit tier changes, actions and alerts."""
    from streams.worker.run import run_worker

    settings = settings_from(config, kafka_bootstrap=bootstrap, redis_url=redis_url, web_host=web_host,
                             web_port=web_port, partitions=partitions, clock=clock, app_id=app_id,
                             fast_join=fast_join)
    run_worker(settings)
