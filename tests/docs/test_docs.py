"""Docs that are copies of code stay copies: Redis key layout, the config example, topic names."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

import streams.serving.redis_view
from scoring.config import ScoringConfig
from streams.cli.config_example import config_example
from streams.settings import Settings, TopicNames, load_settings

ROOT = Path(__file__).resolve().parents[2]
EXAMPLE = ROOT / "tierstream.yaml.example"


def key_layout() -> str:
    """The 'Key layout' paragraph of streams/serving/redis_view.py's docstring."""
    doc = streams.serving.redis_view.__doc__ or ""
    match = re.search(r"^Key layout.*?(?=\n\s*\n)", doc, re.S | re.M)
    assert match, "streams/serving/redis_view.py's docstring lost its 'Key layout' paragraph"
    return match.group(0)


def test_redis_md_holds_the_key_layout_of_the_code() -> None:
    assert key_layout() in (ROOT / "docs" / "redis.md").read_text(), "copy the new key layout into docs/redis.md"


def test_delivery_md_names_real_topics_and_the_promise() -> None:
    text = (ROOT / "docs" / "delivery.md").read_text()
    assert "at-least-once" in text and "deduplicate" in text and "`id`" in text
    topics = TopicNames()
    named = set(re.findall(r"^\| `([a-z]+-[a-z-]+)` \|", text, re.M))  # topic names have a hyphen
    assert named == {topics.tier_changes, topics.actions, topics.holdouts, topics.outcomes, topics.alerts,
                     topics.scores, topics.dlq}


def test_config_example_is_in_sync_with_the_models() -> None:
    assert EXAMPLE.read_text() == config_example(), (
        "regenerate: python -m streams.cli.config_example > tierstream.yaml.example")


@pytest.fixture
def no_settings_env(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    import os

    for name in list(os.environ):
        if name.startswith(("TIERSTREAM_", "KAFKA_BOOTSTRAP", "REDIS_URL")):
            monkeypatch.delenv(name)
    monkeypatch.chdir(tmp_path)  # no ./tierstream.yaml


@pytest.mark.usefixtures("no_settings_env")
def test_loading_the_example_gives_the_defaults() -> None:
    assert load_settings(EXAMPLE) == Settings()


def test_the_example_documents_every_setting() -> None:
    text = EXAMPLE.read_text()
    for name in Settings.model_fields:
        assert re.search(rf"^# .+\n(# .*\n)*{name}:", text, re.M), f"{name} is not documented"
    for name in ScoringConfig.model_fields:
        assert re.search(rf"^  # .+\n(  # .*\n)*  {name}:", text, re.M), f"scoring.{name} is not documented"
    for name in TopicNames.model_fields:
        assert re.search(rf"^  {name}: ", text, re.M)


def test_the_readme_walks_a_record_through_files_that_exist() -> None:
    """README "How it works": a record's path in three files, and every module it names is real."""
    readme = (ROOT / "README.md").read_text()
    section = readme.split("## How it works", 1)[1].split("\n## ", 1)[0]
    path = ["streams/worker/app.py", "streams/worker/handler.py", "scoring/step.py"]
    assert [section.index(f"`{p}`") for p in path] == sorted(section.index(f"`{p}`") for p in path)
    named = set(re.findall(r"`((?:streams|scoring|schemas)/[\w/]+\.py)`", section))
    assert set(path) <= named
    assert [p for p in sorted(named) if not (ROOT / p).is_file()] == []
    for folder in ("serving/", "offline/", "local/", "cli/"):
        assert f"- `{folder}`" in section
