"""The simple job on Quix Streams: `python -m bench.peers.quix_peer --bootstrap B --topic T --out-topic O ...`.

Runs in the peers' virtualenv (`bench.peers.venv`). A StreamingDataFrame over the events topic (JSON
values), the job's step as a stateful `apply` (RocksDB state with its changelog topic, Quix's default),
tier changes filtered and produced to `--out-topic` keyed by customer. At-least-once (the test broker
has no transactions).
"""

from __future__ import annotations

import argparse
import logging
from typing import Any

from quixstreams import Application, State
from quixstreams.models.topics import Topic, TopicManager

from bench.peers.progress import Progress
from bench.peers.simple_job import step

# librdkafka's group join waits out the rebalance timeout (max.poll.interval.ms) on the test broker
FAST_JOIN = {"session.timeout.ms": 6000, "heartbeat.interval.ms": 500, "max.poll.interval.ms": 10000}
_fetch_topic = TopicManager._fetch_topic


def _fetch_topic_with_defaults(self: TopicManager, topic: Topic) -> Topic:
    """The test broker answers DescribeConfigs with no entries; Quix needs `retention.ms` to derive its
    changelog topics' config: Apache Kafka's default for the topics the bench creates (-1 is unlimited)."""
    fetched = _fetch_topic(self, topic)
    fetched.broker_config.extra_config.setdefault("retention.ms", "-1")
    return fetched


TopicManager._fetch_topic = _fetch_topic_with_defaults  # type: ignore[method-assign]


def main() -> None:
    parser = argparse.ArgumentParser(prog="python -m bench.peers.quix_peer")
    for name in ("--bootstrap", "--topic", "--out-topic", "--group", "--state-dir"):
        parser.add_argument(name, required=True)
    parser.add_argument("--partitions", type=int, required=True)
    parser.add_argument("--web-port", type=int, required=True)
    args = parser.parse_args()
    progress = Progress(args.partitions)
    progress.serve(args.web_port)
    app = Application(broker_address=args.bootstrap, consumer_group=args.group, auto_offset_reset="earliest",
                      state_dir=args.state_dir, consumer_extra_config=FAST_JOIN, loglevel=logging.WARNING,
                      processing_guarantee="at-least-once")
    events = app.topic(args.topic, value_deserializer="json", key_deserializer="str")
    changes = app.topic(args.out_topic, value_serializer="json", key_serializer="str")

    def rfm(event: dict[str, Any], state: State) -> dict[str, Any] | None:
        new, change = step(state.get("customer"), event)
        state.set("customer", new)
        progress.events += 1
        if change is not None:
            progress.changes += 1
        return change

    sdf = app.dataframe(events).apply(rfm, stateful=True)
    sdf = sdf.filter(lambda change: change is not None)
    sdf.to_topic(changes)
    app.run()


if __name__ == "__main__":
    main()
