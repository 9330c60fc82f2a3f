"""Topic checks: `ensure_topics` creates what is missing, refuses co-partitioned topics whose
partition count disagrees, and the worker refuses to start (one line on stderr) in that case."""

from __future__ import annotations

import uuid
from pathlib import Path

import pytest
from aiokafka.admin import AIOKafkaAdminClient

from streams.kafka import TopicMismatchError, ensure_topics, planned_topics, table_changelog
from streams.local.embedded import create_topics, free_port
from streams.settings import Settings, TopicNames
from tests.kits.stream import run_cli, topic_names, write_config

pytestmark = pytest.mark.integration


def settings_for(bootstrap: str, partitions: int = 4) -> Settings:
    return Settings(kafka_bootstrap=bootstrap, partitions=partitions, app_id=f"topics-{uuid.uuid4().hex[:8]}",
                    topics=TopicNames(**topic_names("topics")))


async def existing_topics(bootstrap: str) -> dict[str, int]:
    """{topic: partitions} of every topic (listing never auto-creates one, describing an unknown one would)."""
    admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap)
    await admin.start()
    try:
        names = [n for n in await admin.list_topics() if not n.startswith("__")]
        return {d["topic"]: len(d["partitions"]) for d in await admin.describe_topics(names)}
    finally:
        await admin.close()


async def test_missing_topics_are_created_with_the_configured_count(kafka_bootstrap: str) -> None:
    settings = settings_for(kafka_bootstrap, partitions=3)
    wanted = planned_topics(settings)
    await create_topics(kafka_bootstrap, [settings.topics.purchases], partitions=3)  # one exists already

    report = await ensure_topics(settings)
    assert set(report.created) == set(wanted) - {settings.topics.purchases}
    topics = await existing_topics(kafka_bootstrap)
    assert {name: topics[name] for name in wanted} == dict.fromkeys(wanted, 3)
    assert table_changelog(settings) in wanted

    again = await ensure_topics(settings)  # idempotent
    assert again.created == []
    assert {name: again.existing[name] for name in wanted} == dict.fromkeys(wanted, 3)


@pytest.mark.parametrize("which", ["purchases", "events", "changelog"])
async def test_a_co_partitioned_topic_with_another_count_is_refused(kafka_bootstrap: str, which: str) -> None:
    settings = settings_for(kafka_bootstrap, partitions=4)
    name = table_changelog(settings) if which == "changelog" else getattr(settings.topics, which)
    await create_topics(kafka_bootstrap, [name], partitions=2)

    with pytest.raises(TopicMismatchError) as caught:
        await ensure_topics(settings)
    message = str(caught.value)
    assert message.startswith(f"topic {name!r} has 2 partitions but partitions=4: ")
    assert "\n" not in message
    # Checked before anything is created: no other topic of this configuration appeared.
    assert set(await existing_topics(kafka_bootstrap)) & set(planned_topics(settings)) == {name}


async def test_output_topics_may_have_another_count(kafka_bootstrap: str) -> None:
    settings = settings_for(kafka_bootstrap, partitions=4)
    await create_topics(kafka_bootstrap, [settings.topics.dlq, settings.topics.scores], partitions=1)
    report = await ensure_topics(settings)
    assert settings.topics.dlq not in report.created
    assert (await existing_topics(kafka_bootstrap))[settings.topics.purchases] == 4


async def test_missing_topics_are_reported_when_creation_is_off(kafka_bootstrap: str) -> None:
    settings = settings_for(kafka_bootstrap)
    with pytest.raises(TopicMismatchError, match=r"^missing topics: "):
        await ensure_topics(settings, create=False)


async def test_the_worker_refuses_to_start_on_a_mismatch(kafka_bootstrap: str, redis_url: str,
                                                         key_prefix: str, tmp_path: Path) -> None:
    names = topic_names("refuse")
    config = tmp_path / "tierstream.yaml"
    write_config(config, {"kafka_bootstrap": kafka_bootstrap, "redis_url": redis_url, "partitions": 4,
                          "redis_prefix": f"{key_prefix}refuse:", "app_id": f"refuse-{uuid.uuid4().hex[:8]}",
                          "fast_join": True, "topics": names})
    await create_topics(kafka_bootstrap, [names["purchases"]], partitions=3)

    done = await run_cli("worker", "--config", str(config), "--web-port", str(free_port()), cwd=tmp_path,
                         limit=60)
    assert done.returncode != 0, done.stderr
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1, done.stderr
    assert f"topic {names['purchases']!r} has 3 partitions but partitions=4" in lines[0]
    assert lines[0].startswith("tierstream: ")
