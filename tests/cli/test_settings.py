"""`load_settings`: pydantic-settings' YAML source under the environment and the command-line options, and
config errors that say where each bad value came from. No service is needed."""

from __future__ import annotations

import os
import uuid
from pathlib import Path

import pytest
from pydantic import ValidationError

from scoring.errors import ConfigError
from streams import settings as settings_module
from streams.settings import Settings, load_settings, warn_unknown_env


@pytest.fixture(autouse=True)
def clean_env(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    """No TIERSTREAM_*, KAFKA_BOOTSTRAP or REDIS_URL from the caller, and no ./tierstream.yaml."""
    for name in list(os.environ):
        if name.upper().startswith("TIERSTREAM_") or name in ("KAFKA_BOOTSTRAP", "REDIS_URL"):
            monkeypatch.delenv(name)
    monkeypatch.chdir(tmp_path)


def config(tmp_path: Path, text: str, name: str = "config.yaml") -> Path:
    path = tmp_path / name
    path.write_text(text)
    return path


def test_options_beat_the_environment_which_beats_the_file_which_beats_the_defaults(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    path = config(tmp_path, "partitions: 3\nweb_port: 7001\napp_id: from-file\ntopics:\n  purchases: p-file\n")
    monkeypatch.setenv("TIERSTREAM_PARTITIONS", "5")
    monkeypatch.setenv("TIERSTREAM_WEB_PORT", "7002")
    settings = load_settings(path, partitions=7, store=None)  # None: an option not given
    assert (settings.partitions, settings.web_port, settings.app_id) == (7, 7002, "from-file")
    assert settings.topics.purchases == "p-file" and settings.topics.returns == "returns"
    assert settings.store == "memory"  # the default


@pytest.mark.parametrize("env", ["KAFKA_BOOTSTRAP", "TIERSTREAM_KAFKA_BOOTSTRAP"])
def test_an_alias_in_the_environment_beats_the_name_in_the_file(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                                                env: str) -> None:
    path = config(tmp_path, "kafka_bootstrap: file:9092\nredis_url: redis://file:6379/0\n")
    assert load_settings(path).kafka_bootstrap == "file:9092"
    monkeypatch.setenv(env, "env:9092")
    monkeypatch.setenv("REDIS_URL", "redis://env:6379/0")
    settings = load_settings(path)
    assert settings.kafka_bootstrap == "env:9092"
    assert settings.redis_url.get_secret_value() == "redis://env:6379/0"
    assert load_settings(path, kafka_bootstrap="option:9092").kafka_bootstrap == "option:9092"


def test_the_file_is_the_one_given_else_tierstream_yaml_here_and_settings_alone_reads_none(tmp_path: Path) -> None:
    config(tmp_path, "partitions: 2\n", name="tierstream.yaml")
    other = config(tmp_path, "partitions: 6\n")
    assert load_settings().partitions == 2
    assert load_settings(other).partitions == 6
    assert Settings().partitions == 8
    assert "partitions" in load_settings(other).model_fields_set


def test_an_empty_file_or_an_empty_scoring_section_means_the_defaults(tmp_path: Path) -> None:
    assert load_settings(config(tmp_path, "")) == Settings()
    assert load_settings(config(tmp_path, "scoring:\n", "empty-scoring.yaml")).scoring == Settings().scoring


def test_settings_are_frozen(tmp_path: Path) -> None:
    settings = load_settings(config(tmp_path, "partitions: 3\n"))
    with pytest.raises(ValidationError, match="frozen"):
        settings.partitions = 4  # type: ignore[misc]


def test_every_error_of_the_file_names_the_file_the_path_and_a_near_name(tmp_path: Path) -> None:
    path = config(tmp_path, "partitons: 4\nweb_port: abc\nredis_url: 5\nscoring:\n  window_dayz: 30\n"
                            "  frequency_caps:\n    call:\n      per_dayz: 1\n")
    with pytest.raises(ConfigError) as err:
        load_settings(path)
    message = str(err.value)
    assert message.startswith("config: 5 errors: ") and "\n" not in message
    parts = message.removeprefix("config: 5 errors: ").split("; ")
    assert all(part.startswith(f"{path}: ") for part in parts), parts
    assert f"{path}: partitons: unknown setting (did you mean partitions?)" in parts
    assert f"{path}: scoring.window_dayz: unknown setting (did you mean window_days?)" in parts
    assert f"{path}: scoring.frequency_caps.call.per_dayz: unknown setting (did you mean per_days?)" in parts
    assert any(part.startswith(f"{path}: web_port: Input should be a valid integer") for part in parts)
    assert any(part.startswith(f"{path}: redis_url: ") for part in parts), parts  # its name, not REDIS_URL


def test_an_error_names_the_environment_variable_or_the_option(tmp_path: Path,
                                                                monkeypatch: pytest.MonkeyPatch) -> None:
    path = config(tmp_path, "web_port: 7001\n")
    monkeypatch.setenv("TIERSTREAM_WEB_PORT", "abc")
    with pytest.raises(ConfigError, match=r"^config: env TIERSTREAM_WEB_PORT: web_port: Input should be"):
        load_settings(path)
    with pytest.raises(ConfigError, match=r"^config: option --partitions: partitions: Input should be greater"):
        load_settings(path, partitions=0, web_port=7003)


@pytest.mark.parametrize(("text", "problem"), [
    ("- 1\n- 2\n", "{path}: the top level must be a mapping of settings"),
    ("just words\n", "{path}: the top level must be a mapping of settings"),
    ("a: [\nb: 2\n", "{path} is not valid YAML at line 3"),
])
def test_a_file_that_is_no_mapping_of_settings_is_one_line(tmp_path: Path, text: str, problem: str) -> None:
    path = config(tmp_path, text)
    with pytest.raises(ConfigError) as err:
        load_settings(path)
    assert str(err.value) == "config: " + problem.format(path=path)


def test_a_missing_file_or_a_directory_is_an_error_not_the_defaults(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match=r"^config: cannot read .*nope\.yaml: No such file or directory$"):
        load_settings(tmp_path / "nope.yaml")
    with pytest.raises(ConfigError, match=r"^config: cannot read .*: Is a directory$"):
        load_settings(tmp_path)


def test_an_unknown_tierstream_variable_is_a_warning_with_the_near_name(capsys: pytest.CaptureFixture[str]) -> None:
    typo = f"TIERSTREAM_PARTITIONZ{uuid.uuid4().hex[:4].upper()}"
    assert warn_unknown_env({typo: "3", "TIERSTREAM_PARTITIONS": "3", "TIERSTREAM_KEEP_SERVICE_LOGS": "1"}) == [typo]
    assert capsys.readouterr().err == (f"tierstream: warning: unknown environment variable {typo} "
                                       "(did you mean TIERSTREAM_PARTITIONS?); ignored\n")


@pytest.mark.parametrize(("suffix", "hint"), [
    ("FOOQ", ""),  # nothing near: no guess (the shared prefix alone made every name look alike)
    ("REDIS_UR", " (did you mean TIERSTREAM_REDIS_URL?)"),
    ("SCORING__WINDOW_DAYZ", " (scoring rules are set in the config file's `scoring:` section)"),
])
def test_the_hint_compares_names_without_the_prefix(capsys: pytest.CaptureFixture[str], suffix: str,
                                                    hint: str) -> None:
    name = f"TIERSTREAM_{suffix}"
    settings_module._WARNED.discard(name)  # each name is warned about once per process
    assert warn_unknown_env({name: "1"}) == [name]
    assert capsys.readouterr().err == f"tierstream: warning: unknown environment variable {name}{hint}; ignored\n"
