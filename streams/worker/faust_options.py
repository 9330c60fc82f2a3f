"""Faust App keyword arguments from Settings."""

from __future__ import annotations

from typing import Any

import faust
from faust.transport.drivers import aiokafka as driver

from streams.kafka import ssl_context
from streams.settings import Settings

# Group join in ~4.5 s instead of ~31 s on small clusters and the embedded broker.
FAST_JOIN = {"broker_session_timeout": 6, "broker_heartbeat_interval": 0.5, "broker_rebalance_timeout": 6}


def credentials(settings: Settings) -> Any:
    protocol = settings.kafka_security_protocol
    if protocol.startswith("SASL"):
        password = settings.kafka_sasl_password
        return faust.SASLCredentials(
            username=settings.kafka_sasl_username, password=password.get_secret_value() if password else None,
            mechanism=settings.kafka_sasl_mechanism,
            ssl_context=ssl_context(settings) if protocol == "SASL_SSL" else None)
    if protocol == "SSL":
        return faust.SSLCredentials(ssl_context(settings))
    return None


def faust_options(settings: Settings) -> dict[str, Any]:
    brokers = [f"kafka://{host.strip()}" for host in settings.kafka_bootstrap.split(",") if host.strip()]
    options: dict[str, Any] = {
        "id": settings.app_id,
        "broker": brokers,
        "broker_credentials": credentials(settings),
        "store": "rocksdb://" if settings.store == "rocksdb" else "memory://",
        "datadir": str(settings.data_dir),
        "topic_partitions": settings.partitions,
        "topic_replication_factor": settings.replication_factor,
        "topic_allow_declare": True,
        "table_standby_replicas": settings.standby_replicas,
        "consumer_auto_offset_reset": "earliest",
        "broker_commit_interval": settings.commit_interval_seconds,
        "producer_linger": settings.producer_linger_seconds,
        "producer_max_batch_size": settings.producer_max_batch_size,
        "stream_wait_empty": False,
        "web_enabled": True,
        "web_host": settings.web_host,
        "web_port": settings.web_port,
        "web_bind": settings.web_host,
        "canonical_url": settings.web_canonical_url or f"http://{settings.web_host}:{settings.web_port}",
        # Faust's own pages (table contents, router, graph, stats) are off: they expose raw state.
        "web_tables_enabled": False, "web_router_enabled": False, "web_graph_enabled": False,
        "web_stats_enabled": False, "web_metrics_enabled": False,
        # Commits are driven by the worker's flushes (streams.worker.consumer); never by a message count.
        "broker_commit_every": 1_000_000_000,
        # Faust's check that a RocksDB store's persisted offsets are not past the changelog's end. With the
        # memory store there are none, yet Faust compares the offsets its last recovery read to: a broker whose
        # ListOffsets answers short (the test broker after a worker was killed mid-flush, KAFKA_TEST_BROKER.md)
        # then crashed the worker at the next rebalance. Kept for RocksDB, where it guards against stale files.
        "recovery_consistency_check": settings.store == "rocksdb",
    }
    if settings.fast_join:
        options.update(FAST_JOIN)
    return options


def set_fetch_max_wait(ms: int) -> None:
    """Make the consumer Faust creates use `fetch_max_wait_ms=ms`: Faust passes a fixed 1500 ms
    (faust/transport/drivers/aiokafka.py) and offers no setting for it."""
    create = driver.AIOKafkaConsumerThread._create_worker_consumer
    if getattr(create, "tierstream_fetch_wait", None) == ms:
        return
    original = getattr(create, "tierstream_original", create)

    def create_worker_consumer(self: Any, transport: Any) -> Any:
        consumer = original(self, transport)
        consumer._fetch_max_wait_ms = ms
        return consumer

    create_worker_consumer.tierstream_fetch_wait = ms  # type: ignore[attr-defined]
    create_worker_consumer.tierstream_original = original  # type: ignore[attr-defined]
    driver.AIOKafkaConsumerThread._create_worker_consumer = create_worker_consumer  # type: ignore[method-assign]
