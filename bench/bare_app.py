"""The framework's floor: a Faust agent that only decodes each message's JSON.

Same Faust settings as the tierstream worker (`streams.worker.faust_options` from the
same YAML), same `stream.events()` iteration and quiet loggers; no outputs, no
Redis. With `--table` it also writes each message's bytes into a per-customer
Table (memory store + changelog, like the worker's): the floor of a stateful
Faust app. Run: `python -m bench.bare_app --config F --web-port P [--table]`.
/health answers like the worker's: owned `partitions` and `events_scored`.
"""

from __future__ import annotations

import argparse
import json
import logging
from pathlib import Path
from typing import Any

import faust
from faust.web import Request, Response

from streams.settings import Settings, load_settings
from streams.worker.faust_options import faust_options
from streams.worker.run import QUIET_LOGGERS


def raw_schema(key_type: type) -> Any:
    return faust.Schema(key_type=key_type, value_type=bytes, key_serializer="raw", value_serializer="raw")


def customers_table(app: faust.App, settings: Settings) -> Any:
    """A str -> bytes Table like the worker's, with its changelog topic declared raw explicitly.

    Left to itself, Faust derives the changelog topic's serializers from the table's
    key_type/value_type (json unless bytes) and writes them into the schema, so raw
    values come back from recovery as undecodable JSON.
    """
    changelog = app.topic(f"{settings.app_id}-customers-changelog", schema=raw_schema(str),
                          partitions=settings.partitions, internal=True, compacting=True, deleting=False,
                          acks=False, allow_empty=True, maxsize=131_072)
    return app.Table("customers", schema=raw_schema(str), partitions=settings.partitions, changelog_topic=changelog)


def build(settings: Settings, with_table: bool) -> faust.App:
    app = faust.App(**faust_options(settings))
    topic = app.topic(settings.topics.events, partitions=settings.partitions, schema=raw_schema(bytes))
    table = customers_table(app, settings) if with_table else None
    counts = {"decoded": 0, "bad": 0}

    async def decode(stream: faust.StreamT[bytes]) -> None:
        async for event in stream.events():
            try:
                json.loads(event.message.value)
            except ValueError:
                counts["bad"] += 1
                continue
            if table is not None:
                table[event.message.key.decode()] = event.message.value
            counts["decoded"] += 1

    async def health(web: Any, request: Request) -> Response:
        parts = sorted(tp.partition for tp in app.consumer.assignment() if tp.topic == settings.topics.events)
        response: Response = web.json({"partitions": parts, "events_scored": counts["decoded"],
                                       "dead_lettered": counts["bad"]})
        return response

    app.agent(topic, name="decode")(decode)
    app.page("/health")(health)
    return app


def main() -> None:
    parser = argparse.ArgumentParser(prog="python -m bench.bare_app")
    parser.add_argument("--config", type=Path, required=True)
    parser.add_argument("--web-port", type=int, required=True)
    parser.add_argument("--table", action="store_true", help="also write each message into a Table")
    args = parser.parse_args()
    settings = load_settings(args.config, web_port=args.web_port)
    app = build(settings, args.table)
    for name in QUIET_LOGGERS:
        logging.getLogger(name).setLevel(logging.WARNING)
    faust.Worker(app, loglevel="WARNING", quiet=True).execute_from_commandline()


if __name__ == "__main__":
    main()
