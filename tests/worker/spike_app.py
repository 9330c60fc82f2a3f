"""Minimal Faust app for the Faust-on-Tansu spike, run as a subprocess worker.

Run it with::

    SPIKE_BROKER=127.0.0.1:PORT SPIKE_APP_ID=... SPIKE_IN=... SPIKE_OUT=... \\
        python -m faust -A spike_app worker -l warning \\
        --web-host 127.0.0.1 --web-port WEBPORT

(with this directory on PYTHONPATH).  Configuration comes from ``SPIKE_*``
environment variables so every test can use its own app id and topics.

- agent ``count`` consumes SPIKE_IN through ``stream.events()``, counts events
  per key in a changelog-backed memory Table and sends one JSON output per event
  to SPIKE_OUT (key = same key) carrying the count, the source partition and
  offset, and the worker name;
- when SPIKE_TIMER_PARTITION is set, an ``app.timer`` sends a tick to
  SPIKE_TICKS on exactly that partition;
- page ``/ready/`` reports readiness and the source partitions this worker owns.
"""

from __future__ import annotations

import json
import os
import time
from typing import Any, cast

import faust
from faust.tables import TableManager
from faust.web import Request, Response, View

BOOTSTRAP = os.environ["SPIKE_BROKER"]
APP_ID = os.environ["SPIKE_APP_ID"]
IN_TOPIC = os.environ["SPIKE_IN"]
OUT_TOPIC = os.environ["SPIKE_OUT"]
TICKS_TOPIC = os.environ.get("SPIKE_TICKS", "")
TIMER_PARTITION = os.environ.get("SPIKE_TIMER_PARTITION", "")
WORKER_NAME = os.environ.get("SPIKE_WORKER", "w1")
DATADIR = os.environ.get("SPIKE_DATADIR", "/tmp/tierstream-spike-data")
PARTITIONS = 4

#: Faust settings that make a worker start and rebalance quickly on Tansu.
FAST_TEST_SETTINGS: dict[str, Any] = {
    "store": "memory://",
    "topic_partitions": PARTITIONS,
    "topic_replication_factor": 1,
    "topic_allow_declare": True,  # Faust creates its changelog + leader topics
    "broker_session_timeout": 6,
    "broker_heartbeat_interval": 0.5,
    "broker_rebalance_timeout": 6,
    "broker_commit_interval": 0.5,
    "broker_commit_every": 100,
    "consumer_auto_offset_reset": "earliest",
    "table_standby_replicas": 0,
    "stream_wait_empty": False,
    "producer_linger": 0.005,
    # 1 byte => every record is its own batch (aiokafka always admits a batch's first
    # record), which sidesteps Tansu's ListOffsets defect on multi-record batches:
    # without it a worker taking over a partition can miss changelog updates.
    "producer_max_batch_size": 1,
    "web_enabled": True,
    "web_host": "127.0.0.1",
}
#: Experiments may override any setting: SPIKE_SETTINGS_JSON='{"broker_session_timeout": 3}'.
FAST_TEST_SETTINGS.update(json.loads(os.environ.get("SPIKE_SETTINGS_JSON") or "{}"))

app = faust.App(
    APP_ID,
    broker=f"kafka://{BOOTSTRAP}",
    datadir=DATADIR,
    **FAST_TEST_SETTINGS,
)

source = app.topic(IN_TOPIC, key_type=str, value_serializer="json", partitions=PARTITIONS)
output = app.topic(OUT_TOPIC, key_type=str, value_serializer="json", partitions=PARTITIONS)
counts = app.Table("counts", default=int, partitions=PARTITIONS)


@app.agent(source)
async def count(stream: faust.StreamT[Any]) -> None:
    """Count events per key and emit one output per event with its source position."""
    async for event in stream.events():
        key = event.key
        counts[key] += 1
        await output.send(
            key=key,
            value={
                "key": key,
                "seq": event.value.get("seq"),
                "count": counts[key],
                "partition": event.message.partition,
                "offset": event.message.offset,
                "worker": WORKER_NAME,
            },
        )


if TICKS_TOPIC and TIMER_PARTITION:
    ticks = app.topic(TICKS_TOPIC, key_type=str, value_serializer="json")

    @app.timer(interval=0.2)  # type: ignore[untyped-decorator]
    async def tick() -> None:
        """Send a tick to an explicit partition, to prove timers can target one."""
        await ticks.send(
            key=f"tick-{WORKER_NAME}",
            value={"worker": WORKER_NAME, "at": time.time()},
            partition=int(TIMER_PARTITION),
        )


def owned_source_partitions() -> list[int]:
    """Partitions of the source topic currently assigned to this worker."""
    assignment = app.consumer.assignment() if app.consumer else set()
    return sorted(tp.partition for tp in assignment if tp.topic == IN_TOPIC)


def is_ready() -> bool:
    """True once the group is joined, tables recovered and no rebalance is running."""
    return bool(
        not app.rebalancing
        and not app.in_recovery
        and cast(TableManager, app.tables).recovery.completed.is_set()
        and owned_source_partitions()
    )


@app.page("/ready/")
async def ready(web: View, request: Request) -> Response:
    """Readiness probe: {"ready": bool, "partitions": [...], "worker": name}."""
    return web.json(
        {
            "ready": is_ready(),
            "partitions": owned_source_partitions(),
            "worker": WORKER_NAME,
            "pid": os.getpid(),
        }
    )
