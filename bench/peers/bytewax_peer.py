"""The simple job on bytewax: `python -m bench.peers.bytewax_peer --bootstrap B --topic T --out-topic O ...`.

Runs in the peers' virtualenv (`bench.peers.venv`), one worker (`run_main`). bytewax's Kafka source
assigns the partitions itself (no consumer group) and reads them from the start; the job's step is a
`stateful_map` keyed by customer (state in memory: no recovery configured), tier changes are produced
to `--out-topic` keyed by customer.
"""

from __future__ import annotations

import argparse
import json
from typing import Any

import bytewax.operators as op
from bytewax.connectors.kafka import KafkaSinkMessage, KafkaSourceMessage
from bytewax.connectors.kafka import operators as kop
from bytewax.dataflow import Dataflow
from bytewax.testing import run_main

from bench.peers.progress import Progress
from bench.peers.simple_job import State, step


def build(args: argparse.Namespace, progress: Progress) -> Dataflow:
    flow = Dataflow("simple-job")
    source = kop.input("events", flow, brokers=[args.bootstrap], topics=[args.topic])

    def keyed(message: KafkaSourceMessage[bytes, bytes]) -> tuple[str, dict[str, Any]]:
        return message.key.decode(), json.loads(message.value)

    def rfm(state: State | None, event: dict[str, Any]) -> tuple[State, dict[str, Any] | None]:
        new, change = step(state, event)
        progress.events += 1
        if change is not None:
            progress.changes += 1
        return new, change

    changes = op.stateful_map("rfm", op.map("decode", source.oks, keyed), rfm)
    changes = op.filter("changed", changes, lambda item: item[1] is not None)
    out = op.map("encode", changes, lambda item: KafkaSinkMessage(item[0].encode(), json.dumps(item[1]).encode()))
    kop.output("changes", out, brokers=[args.bootstrap], topic=args.out_topic)
    return flow


def main() -> None:
    parser = argparse.ArgumentParser(prog="python -m bench.peers.bytewax_peer")
    for name in ("--bootstrap", "--topic", "--out-topic"):
        parser.add_argument(name, required=True)
    parser.add_argument("--partitions", type=int, required=True)
    parser.add_argument("--web-port", type=int, required=True)
    args = parser.parse_args()
    progress = Progress(args.partitions)
    progress.serve(args.web_port)
    run_main(build(args, progress))


if __name__ == "__main__":
    main()
