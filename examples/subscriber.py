"""A marketing-automation subscriber to tier changes: what a consumer of tierstream looks like.

Reads `customer-tier-changes`, skips messages it has already handled (by `id`:
tierstream delivers at least once), and decides what the marketing tool should
do. Handled ids live in a SQLite table with a unique key, so a restart or a
redelivery never sends the same email twice. Offsets are committed after the
messages are handled.

    python examples/subscriber.py --bootstrap 127.0.0.1:9092
    python examples/subscriber.py --bootstrap 127.0.0.1:9092 --seen-db seen.sqlite --from-beginning
"""

from __future__ import annotations

import argparse
import asyncio
import json
import sqlite3

from aiokafka import AIOKafkaConsumer


def campaign(change: dict) -> str | None:
    """The marketing step for a tier change, or None."""
    to, direction = change["to_tier"], change["direction"]
    if direction == "up" and to == "AAA":
        return "vip-welcome"
    if direction == "up":
        return "thank-you-upgrade"
    if direction == "down" and change.get("from_tier") in ("AAA", "A"):
        return "win-back-offer"
    if direction == "new":
        return f"onboarding-{to.lower()}"
    return None


class Seen:
    """Ids already handled: a SQLite table whose primary key makes a repeat a no-op."""

    def __init__(self, path: str) -> None:
        self.db = sqlite3.connect(path)
        self.db.execute("CREATE TABLE IF NOT EXISTS handled (id TEXT PRIMARY KEY)")

    def first_time(self, message_id: str) -> bool:
        with self.db:
            return self.db.execute("INSERT OR IGNORE INTO handled VALUES (?)", (message_id,)).rowcount == 1


async def run(args: argparse.Namespace) -> None:
    seen = Seen(args.seen_db)
    consumer = AIOKafkaConsumer(
        args.topic, bootstrap_servers=args.bootstrap, group_id=args.group, enable_auto_commit=False,
        auto_offset_reset="earliest" if args.from_beginning else "latest")
    await consumer.start()
    handled = duplicates = 0
    idle_since: float | None = None
    loop = asyncio.get_running_loop()
    try:
        while args.max_messages is None or handled + duplicates < args.max_messages:
            batches = await consumer.getmany(timeout_ms=500)
            if not batches and args.idle_exit and consumer.assignment():  # idle counts once we own partitions
                idle_since = idle_since or loop.time()
                if loop.time() - idle_since >= args.idle_exit:
                    break
            elif batches:
                idle_since = None
            for records in batches.values():
                for record in records:
                    change = json.loads(record.value)
                    if change.get("type", "TierChanged") != "TierChanged":
                        continue  # PotentialChanged shares the topic: this subscriber acts on tier changes only
                    if not seen.first_time(change["id"]):
                        duplicates += 1
                        print(f"duplicate {change['id']} skipped", flush=True)
                        continue
                    handled += 1
                    step = campaign(change)
                    print(f"{change['customer_id']}: {change.get('from_tier')} -> {change['to_tier']}"
                          f" => {step or 'no campaign'}", flush=True)
            await consumer.commit()
    finally:
        await consumer.stop()
    print(f"handled {handled}, duplicates skipped {duplicates}", flush=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--bootstrap", default="127.0.0.1:9092", help="Kafka host:port")
    parser.add_argument("--topic", default="customer-tier-changes")
    parser.add_argument("--group", default="marketing-automation", help="consumer group")
    parser.add_argument("--seen-db", default="subscriber-seen.sqlite", help="SQLite file of handled ids")
    parser.add_argument("--from-beginning", action="store_true", help="start at the earliest offset (new group)")
    parser.add_argument("--max-messages", type=int, default=None, help="stop after this many (tests)")
    parser.add_argument("--idle-exit", type=float, default=None, help="stop after this many idle seconds (tests)")
    asyncio.run(run(parser.parse_args()))


if __name__ == "__main__":
    main()
