"""`tierstream generate`."""

from __future__ import annotations

import asyncio
import contextlib
import os
import sys
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import IO, Annotated, Literal

import typer

from scoring.events import to_ms
from streams.cli.base import ConfigOpt, app, check_writable, err, settings_from
from streams.local.generator import DEFAULT_START, LiveClock, day_seconds, drafts, speed_for_rate, to_json, to_message
from streams.settings import Settings

TopicMode = Literal["mixed", "per-type"]


def parse_start(text: str) -> datetime:
    """A date (YYYY-MM-DD, YYYYMMDD: midnight UTC) or an ISO datetime (naive means UTC)."""
    try:
        if len(text) == 8 and text.isdigit():
            text = f"{text[:4]}-{text[4:6]}-{text[6:]}"
        moment = datetime.fromisoformat(text)
    except ValueError:
        raise typer.BadParameter(f"{text!r} is not a date or ISO datetime", param_hint="--start") from None
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)


@app.command(epilog="""Examples:

\b
  tierstream generate --customers 1000 --days 365 --seed 7 --out events.jsonl
  tierstream generate --customers 50 --days 30 | head          # JSONL on stdout
  tierstream replay events.jsonl --as-of 2024-12-31              # then score it offline
  tierstream generate --bootstrap 127.0.0.1:9092 --days 365 --end-now
      # a year of history up to now, at once (workers on the wall clock)
  tierstream generate --bootstrap 127.0.0.1:9092 --rate 50 --topic-mode per-type
      # live from now: about 50 events/s, simulated time compressed to match
""")
def generate(
    customers: Annotated[int, typer.Option(min=1, max=10_000_000, help="Number of customers.")] = 1000,
    days: Annotated[float, typer.Option(min=0.01, max=36_500, help="Simulated days of behaviour.")] = 365,
    seed: Annotated[int, typer.Option(help="Random seed: the same seed gives the same stream.")] = 42,
    start: Annotated[str | None, typer.Option(
        help="First simulated day, YYYY-MM-DD or ISO datetime (default 2024-01-01; live: now).")] = None,
    end_now: Annotated[bool, typer.Option(
        "--end-now", help="The history ends now (start = now - days): for workers on the wall clock.")] = False,
    out: Annotated[Path, typer.Option("--out", "-o", help="JSONL file ('-' for stdout).", dir_okay=False)]
    = Path("-"),
    bootstrap: Annotated[str | None, typer.Option(
        "--bootstrap", help="Produce to Kafka at host:port instead of writing JSONL.")] = None,
    topic_mode: Annotated[TopicMode | None, typer.Option(
        "--topic-mode", help="Kafka topics: mixed (customer-events) or per-type (purchases, returns, ...).")] = None,
    rate: Annotated[float | None, typer.Option(
        min=0.01, help="Live: about this many events per second; simulated time is compressed to match.")] = None,
    speed: Annotated[float | None, typer.Option(
        min=1, help="Live: simulated seconds per real second (instead of --rate), e.g. 57600 = a day in 1.5 s.")]
    = None,
    partitions: Annotated[int | None, typer.Option(help="Partitions of topics it creates (default: config).")]
    = None,
    config: ConfigOpt = None,
) -> None:
    """Write or produce a synthetic stream of customer events.

    Realistic purchases, returns, complaints and enquiries, as JSONL or to Kafka."""
    to_kafka = bootstrap is not None or topic_mode is not None
    live = rate is not None or speed is not None
    if live and not to_kafka:
        raise typer.BadParameter("--rate/--speed need Kafka (--bootstrap or --topic-mode)", param_hint="--rate")
    if rate is not None and speed is not None:
        raise typer.BadParameter("give --rate or --speed, not both", param_hint="--speed")
    if to_kafka and str(out) != "-":
        raise typer.BadParameter("--out writes a file; with --bootstrap/--topic-mode events go to Kafka",
                                 param_hint="--out")
    if end_now and (start or live):
        raise typer.BadParameter("--end-now sets the start; it goes with neither --start nor --rate/--speed",
                                 param_hint="--end-now")
    begin = parse_start(start) if start else (datetime.now(UTC) if live else DEFAULT_START)
    if end_now:
        begin = datetime.now(UTC) - timedelta(days=days)
    if not to_kafka:
        check_writable(out, "--out")
        _write(customers, days, seed, begin, out)
        return
    from streams.cli.base import run_with_kafka

    settings = settings_from(config, kafka_bootstrap=bootstrap, partitions=partitions)
    started = time.perf_counter()
    producing = _produce(settings, topic_mode or "mixed", customers, days, seed, begin, rate, speed)
    sent = run_with_kafka(settings, producing)
    topics = ", ".join(f"{name} {n:,}" for name, n in sent.items())
    err.print(f"produced {sum(sent.values()):,} events ({topics}) in {time.perf_counter() - started:.1f} s",
              markup=False, soft_wrap=True)


def _write(customers: int, days: float, seed: int, begin: datetime, out: Path) -> None:
    start_ms = to_ms(begin)
    with contextlib.ExitStack() as stack:
        sink: IO[str] = sys.stdout if str(out) == "-" else stack.enter_context(out.open("w"))
        try:
            for draft in drafts(seed, customers, days):
                sink.write(to_json(to_message(draft, seed, start_ms)) + "\n")
            sink.flush()
        except BrokenPipeError:  # `| head`: the reader has enough
            os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())


async def _produce(settings: Settings, mode: TopicMode, customers: int, days: float, seed: int, begin: datetime,
                   rate: float | None, speed: float | None) -> dict[str, int]:
    from streams.kafka import ensure_topics
    from streams.local.publish import Publisher

    await ensure_topics(settings)
    start_ms = to_ms(begin)
    stream = list(drafts(seed, customers, days))
    clock = None
    if rate is not None or speed is not None:
        speed = speed or speed_for_rate(len(stream) / days, rate or 1.0)
        clock = LiveClock(start_ms, time.time(), speed)
        err.print(f"live from {begin.isoformat()}: a simulated day every {day_seconds(speed):.2f} s "
                  f"(speed {speed:,.0f}); score it with `clock: event`, or `clock: wall` and clock_speed {speed:g}",
                  markup=False, soft_wrap=True)
    async with Publisher(settings, mode) as publisher:
        for draft in stream:
            if clock is not None:
                wait = clock.real_s(start_ms + draft.at_ms) - time.time()
                if wait > 0.005:
                    await publisher.flush()
                    await asyncio.sleep(wait)
            await publisher.send(to_message(draft, seed, start_ms))
    return publisher.by_topic
