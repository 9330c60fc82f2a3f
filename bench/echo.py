"""The latency floor of part 3: a process that does nothing but forward each input record to the output topic.

It reads the worker's input topics with the worker's fetch wait (`consumer_fetch_max_wait_ms`) and sends
each record, key and value unchanged, to the tier-changes topic with the worker's producer linger and batch
size; part 3 times its probes exactly as it times the worker's. What it measures is what the broker, the
clients and their settings add to any event's latency on this box, before any scoring: the part of the
p99 target that no worker can go below. Its /health reports `partitions` and `events_scored` (records
forwarded) as the worker's does, so the bench waits for it the same way.

    python -m bench.echo --config worker.yaml --web-port PORT
"""

from __future__ import annotations

import argparse
import asyncio
import json
from pathlib import Path

import yaml
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer

from streams.settings import Settings


class Echo:
    def __init__(self, settings: Settings) -> None:
        bootstrap, t = settings.kafka_bootstrap, settings.topics
        self.inputs = [*t.inputs().values(), t.events]
        self.output = t.tier_changes
        self.consumer = AIOKafkaConsumer(*self.inputs, bootstrap_servers=bootstrap, group_id=None,
                                         auto_offset_reset="latest", enable_auto_commit=False,
                                         fetch_max_wait_ms=settings.consumer_fetch_max_wait_ms)
        self.producer = AIOKafkaProducer(bootstrap_servers=bootstrap, acks="all",
                                         linger_ms=int(settings.producer_linger_seconds * 1000),
                                         max_batch_size=settings.producer_max_batch_size)
        self.forwarded = 0
        self.partitions: list[int] = []

    async def run(self) -> None:
        await self.consumer.start()
        await self.producer.start()
        try:
            await self.consumer.seek_to_end()
            self.partitions = sorted({tp.partition for tp in self.consumer.assignment()})
            while True:
                batch = await self.consumer.getmany(timeout_ms=1000)
                for records in batch.values():
                    for record in records:
                        await self.producer.send(self.output, record.value, key=record.key)  # not awaited: batched
                        self.forwarded += 1
        finally:
            await self.consumer.stop()
            await self.producer.stop()

    async def health(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await reader.readuntil(b"\r\n\r\n")
        body = json.dumps({"partitions": self.partitions, "events_scored": self.forwarded}).encode()
        writer.write(b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nConnection: close\r\n"
                     b"Content-Length: %d\r\n\r\n%s" % (len(body), body))
        await writer.drain()
        writer.close()


async def serve(settings: Settings, port: int) -> None:
    echo = Echo(settings)
    server = await asyncio.start_server(echo.health, "127.0.0.1", port)
    async with server:
        await echo.run()


def main() -> None:
    parser = argparse.ArgumentParser(prog="python -m bench.echo")
    parser.add_argument("--config", type=Path, required=True)
    parser.add_argument("--web-port", type=int, required=True)
    args = parser.parse_args()
    asyncio.run(serve(Settings(**yaml.safe_load(args.config.read_text())), args.web_port))


if __name__ == "__main__":
    main()
