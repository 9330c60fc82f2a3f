"""Kafka plumbing shared by the worker and the CLI: client options, topic checks."""

from __future__ import annotations

import asyncio
import logging
import ssl
from collections.abc import Coroutine
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, TypeVar

from streams.settings import Settings

if TYPE_CHECKING:  # aiokafka is imported where it is used: every `tierstream` command imports this module
    from aiokafka.admin import AIOKafkaAdminClient

TOPIC_ALREADY_EXISTS = 36
T = TypeVar("T")


class TopicMismatchError(Exception):
    """Existing topics disagree with the configured partition count."""


class KafkaUnavailableError(Exception):
    """Kafka cannot be reached or failed a request (one line naming the bootstrap servers)."""


def quiet_kafka_logs() -> None:
    """Keep aiokafka's connection-error log records off the terminal: commands report one line instead."""
    for name in ("aiokafka", "kafka"):
        logging.getLogger(name).setLevel(logging.CRITICAL)


def one_line(exc: BaseException) -> str:
    """An exception as one line: type and message, whitespace collapsed."""
    text, name = " ".join(str(exc).split()), type(exc).__name__
    if text.startswith(name):
        return text
    return f"{name}: {text}" if text else name


def run_kafka(settings: Settings, main: Coroutine[Any, Any, T]) -> T:
    """asyncio.run(main); a Kafka or network error becomes KafkaUnavailableError (one line)."""
    from aiokafka.errors import KafkaConnectionError, KafkaError  # noqa: PLC0415 - see the TYPE_CHECKING import

    quiet_kafka_logs()
    try:
        return asyncio.run(main)
    except KafkaConnectionError:
        raise KafkaUnavailableError(
            f"Kafka at {settings.kafka_bootstrap}: cannot connect to any broker (is one running there? "
            "set --bootstrap, KAFKA_BOOTSTRAP or kafka_bootstrap in the config)") from None
    except (KafkaError, OSError) as exc:
        raise KafkaUnavailableError(f"Kafka at {settings.kafka_bootstrap}: {one_line(exc)}") from None


def table_changelog(settings: Settings) -> str:
    """Name of the customers table's changelog topic (Faust's naming)."""
    return f"{settings.app_id}-customers-changelog"


# A forgotten customer's remnant in the customers table (`streams.worker.remnants`): no customer. Customer ids
# never hold control characters (`schemas.inputs`), so the key never meets a customer's.
REMNANT_PREFIX = "\x00remnant\x00"


def is_remnant_key(key: str) -> bool:
    return key.startswith(REMNANT_PREFIX)


def client_options(settings: Settings) -> dict[str, Any]:
    """aiokafka keyword arguments for bootstrap and security."""
    opts: dict[str, Any] = {"bootstrap_servers": settings.kafka_bootstrap,
                            "security_protocol": settings.kafka_security_protocol}
    if "SSL" in settings.kafka_security_protocol:
        opts["ssl_context"] = ssl_context(settings)
    if settings.kafka_security_protocol.startswith("SASL"):
        password = settings.kafka_sasl_password
        opts.update(sasl_mechanism=settings.kafka_sasl_mechanism, sasl_plain_username=settings.kafka_sasl_username,
                    sasl_plain_password=password.get_secret_value() if password else None)
    return opts


def ssl_context(settings: Settings) -> ssl.SSLContext:
    cafile = str(settings.kafka_ssl_cafile) if settings.kafka_ssl_cafile else None
    return ssl.create_default_context(cafile=cafile)


@dataclass(frozen=True)
class TopicReport:
    created: list[str]
    existing: dict[str, int]


def planned_topics(settings: Settings) -> dict[str, int]:
    """Every topic tierstream uses -> its partition count."""
    n = settings.partitions
    names = [*settings.topics.co_partitioned(), table_changelog(settings), *settings.topics.outputs()]
    return dict.fromkeys(names, n)


async def ensure_topics(settings: Settings, create: bool = True) -> TopicReport:
    """Create missing topics (when `create`); raise TopicMismatchError when co-partitioned ones disagree."""
    from aiokafka.admin import AIOKafkaAdminClient  # noqa: PLC0415 - see the TYPE_CHECKING import

    admin = AIOKafkaAdminClient(**client_options(settings))
    await admin.start()
    try:
        existing = await _partition_counts(admin)
        _check(settings, existing)
        wanted = planned_topics(settings)
        missing = [name for name in wanted if name not in existing]
        if missing and create:
            await _create(admin, missing, settings)
        elif missing:
            raise TopicMismatchError(f"missing topics: {', '.join(missing)} (run: tierstream topics create)")
        return TopicReport(missing if create else [], existing)
    finally:
        await admin.close()


async def _partition_counts(admin: AIOKafkaAdminClient) -> dict[str, int]:
    names = [n for n in await admin.list_topics() if not n.startswith("__")]
    if not names:
        return {}
    described = await admin.describe_topics(names)
    return {d["topic"]: len(d["partitions"]) for d in described if d.get("error_code", 0) == 0}


def _check(settings: Settings, existing: dict[str, int]) -> None:
    must_match = [*settings.topics.co_partitioned(), table_changelog(settings)]
    for name in must_match:
        have = existing.get(name)
        if have is not None and have != settings.partitions:
            raise TopicMismatchError(
                f"topic {name!r} has {have} partitions but partitions={settings.partitions}: "
                "co-partitioned topics must agree (set partitions to match, or see deploy/OPERATIONS.md)")


async def _create(admin: AIOKafkaAdminClient, names: list[str], settings: Settings) -> None:
    from aiokafka.admin import NewTopic  # noqa: PLC0415 - see the TYPE_CHECKING import

    changelog = table_changelog(settings)
    topics = [NewTopic(name, settings.partitions, settings.replication_factor,
                       topic_configs={"cleanup.policy": "compact"} if name == changelog else {})
              for name in names]
    response = await admin.create_topics(topics)
    for error in response.topic_errors:
        name, code = error[0], error[1]
        if code not in (0, TOPIC_ALREADY_EXISTS):
            raise TopicMismatchError(f"creating topic {name!r} failed with Kafka error code {code}")
