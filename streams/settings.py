"""Runtime settings: one frozen object from defaults < tierstream.yaml < environment.

Environment variables: every field as TIERSTREAM_<FIELD> (e.g.
TIERSTREAM_PARTITIONS=8), plus the short forms KAFKA_BOOTSTRAP and REDIS_URL.
The file's `scoring:` section holds the scoring rules (`scoring.config`).
Secrets are `SecretStr`: they never appear in logs, reprs or /health.

A bad config is one `ConfigError` line listing every error, each with where the value came from
(the file, the environment variable or the command-line option) and, for a misspelt name, the
nearest valid one; an unknown TIERSTREAM_* environment variable is a warning on stderr.
"""

from __future__ import annotations

import difflib
import errno
import os
import sys
import typing
from collections.abc import Mapping, Sequence
from contextvars import ContextVar
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

import yaml
from pydantic import AliasChoices, BaseModel, ConfigDict, Field, SecretStr, ValidationError
from pydantic_settings import (
    BaseSettings,
    PydanticBaseSettingsSource,
    SettingsConfigDict,
    YamlConfigSettingsSource,
)

from scoring.config import ScoringConfig
from scoring.errors import ConfigError

if TYPE_CHECKING:
    from importlib.resources.abc import Traversable

DEFAULT_CONFIG_FILE = "tierstream.yaml"
ENV_PREFIX = "TIERSTREAM_"
# TIERSTREAM_* variables that are not settings: the local services, the dev script and the test kits.
OTHER_ENV = frozenset({"TIERSTREAM_KEEP_SERVICE_LOGS", "TIERSTREAM_REDIS_SERVER", "TIERSTREAM_VENV",
                       "TIERSTREAM_FAULTS_REPORT", "TIERSTREAM_SOAK_SECONDS"})


class TopicNames(BaseModel):
    """Topic names; inputs are co-partitioned, keyed by customer id."""

    model_config = ConfigDict(frozen=True, extra="forbid")
    purchases: str = "purchases"
    returns: str = "returns"
    complaints: str = "complaints"
    enquiries: str = "enquiries"
    events: str = Field(default="customer-events", description=(
        "Mixed input topic (any event type, tagged by `type`): keeps one customer's order across types, "
        "e.g. for backfills; also where events found on a non-canonical partition are forwarded."))
    tier_changes: str = "customer-tier-changes"
    actions: str = "contact-plan-actions"
    holdouts: str = Field(default="contact-plan-holdouts", description=(
        "Held-out contact-plan actions (control groups): recorded here, never on the action topic."))
    outcomes: str = Field(default="contact-plan-outcomes", description="Outcomes of measured contact-plan decisions.")
    alerts: str = "customer-alerts"
    scores: str = "customer-scores"
    dlq: str = "tierstream-dlq"
    metrics: str = "tierstream-metrics"

    def inputs(self) -> dict[str, str]:
        """Event type -> input topic."""
        return {"purchase": self.purchases, "return": self.returns,
                "complaint": self.complaints, "enquiry": self.enquiries}

    def co_partitioned(self) -> list[str]:
        """Topics that must share the partition count (inputs and the forwarding hop)."""
        return [*self.inputs().values(), self.events]

    def outputs(self) -> list[str]:
        return [self.tier_changes, self.actions, self.holdouts, self.outcomes, self.alerts, self.scores, self.dlq,
                self.metrics]


class Settings(BaseSettings):
    """Everything a worker needs besides the scoring rules."""

    model_config = SettingsConfigDict(env_prefix=ENV_PREFIX, frozen=True, extra="forbid",
                                      protected_namespaces=())  # model_path, model_poll_seconds

    app_id: str = Field(default="tierstream", description="Kafka consumer group and table prefix.")
    kafka_bootstrap: str = Field(
        default="127.0.0.1:9092", validation_alias=AliasChoices("KAFKA_BOOTSTRAP", "TIERSTREAM_KAFKA_BOOTSTRAP",
                                                                "kafka_bootstrap"),
        description="host:port[,host:port...] of the Kafka brokers.")
    kafka_security_protocol: Literal["PLAINTEXT", "SSL", "SASL_PLAINTEXT", "SASL_SSL"] = "PLAINTEXT"
    kafka_sasl_mechanism: Literal["PLAIN", "SCRAM-SHA-256", "SCRAM-SHA-512"] = "PLAIN"
    kafka_sasl_username: str | None = None
    kafka_sasl_password: SecretStr | None = None
    kafka_ssl_cafile: Path | None = None
    redis_url: SecretStr = Field(
        default=SecretStr("redis://127.0.0.1:6379/0"),
        validation_alias=AliasChoices("REDIS_URL", "TIERSTREAM_REDIS_URL", "redis_url"),
        description="redis:// or rediss:// URL; may hold a password, so it is secret.")
    redis_password: SecretStr | None = None
    redis_prefix: str = Field(default="tierstream:", description="Prefix of every Redis key.")
    partitions: int = Field(default=8, ge=1, le=10_000, description="Partitions of co-partitioned topics.")
    replication_factor: int = Field(default=1, ge=1)
    store: Literal["memory", "rocksdb"] = Field(default="memory", description="Table store.")
    data_dir: Path = Field(default=Path("./tierstream-data"), description="Faust data dir (RocksDB state).")
    web_host: str = Field(default="127.0.0.1", description="Web API bind address (localhost by default).")
    web_port: int = Field(default=6066, ge=0, le=65535)
    web_canonical_url: str | None = Field(
        default=None, description="URL other workers use to reach this one (default http://web_host:web_port); "
                                  "set it when binding to 0.0.0.0.")
    web_token: SecretStr | None = Field(default=None, description="Bearer token required by the web API.")
    clock: Literal["wall", "event"] = Field(
        default="wall", description="wall: live; event: event time, for backfills that must equal replay.")
    review_interval_seconds: float = Field(default=1.0, gt=0, description="How often due customers are swept.")
    flush_interval_seconds: float = Field(
        default=1.0, gt=0, description="How often states, score snapshots and Redis profiles are written "
                                       "(latest per customer; every offset commit flushes first).")
    event_clock_idle_seconds: float = Field(
        default=2.0, ge=0, description="clock: event: an input partition caught up for this long no longer "
                                       "holds the event clock back.")
    event_clock_max_jump_days: float = Field(
        default=366, gt=0, description="clock: event: an event this many days after the latest event time seen "
                                      "is refused (a typo'd year must not move the clock).")
    recovery_stall_seconds: float = Field(
        default=20.0, gt=0, description="Table recovery that has received nothing for this long is logged (what "
                                        "it waits for, where tasks are blocked) and its fetch started again.")
    redis_flush_seconds: float = Field(default=0.05, gt=0, description="Max delay of pipelined Redis writes.")
    clock_speed: float = Field(default=1.0, gt=0, description="Wall clock speed-up (demo: a day in seconds).")
    clock_control: bool = Field(default=False, description="Allow POST /clock to shift time (tests, demo).")
    sweep_limit: int = Field(default=100_000, ge=1, description="Most customers re-scored per partition per sweep.")
    standby_replicas: int = Field(default=0, ge=0, description="Faust standby table replicas.")
    commit_interval_seconds: float = Field(default=2.8, gt=0, description="Offset commit interval.")
    consumer_fetch_max_wait_ms: int = Field(
        default=50, ge=1, le=10_000, description="Longest a fetch waits for data (Faust fixes 1500 ms; brokers "
                                                 "that hold a fetch to its limit, like the test broker, add it "
                                                 "to every event's latency).")
    producer_linger_seconds: float = Field(default=0.005, ge=0)
    producer_max_batch_size: int = Field(
        default=65_536, ge=1, description="Bytes; 1 gives one-record batches (a workaround for test brokers).")
    model_path: Path | None = Field(
        default=None, description="Value model from `tierstream fit`; re-read when the file changes.")
    model_poll_seconds: float = Field(default=5.0, gt=0, description="How often the model, calibration and "
                                                                      "evidence files are checked.")
    calibration_path: Path | None = Field(
        default=None, description="Calibration from `tierstream calibrate` (calibrated tiering); re-read when the "
                                  "file changes.")
    evidence_path: Path | None = Field(
        default=None, description="Evidence from `tierstream plan-report --evidence-out` for the ROI guard on "
                                  "evidence (scoring.roi_evidence); re-read when the file changes.")
    recalibrate_interval_seconds: float = Field(
        default=0, ge=0, description="Calibrated tiering: every this many seconds the workers recalibrate from "
                                     "the population of all partitions (through Redis) and apply the result; a "
                                     "newer calibration file also applies when it changes. 0: never.")
    heartbeat_seconds: float = Field(
        default=5.0, gt=0, description="How often a worker sends a WorkerHeartbeat to the metrics topic.")
    log_level: Literal["debug", "info", "warning", "error"] = "info"
    log_format: Literal["text", "json"] = "text"
    fast_join: bool = Field(default=False, description="Short group-join timeouts (tests, demo, small brokers).")
    topics: TopicNames = Field(default_factory=TopicNames)
    scoring: ScoringConfig = Field(default_factory=ScoringConfig)

    @classmethod
    def settings_customise_sources(
        cls, settings_cls: type[BaseSettings], init_settings: PydanticBaseSettingsSource,
        env_settings: PydanticBaseSettingsSource, dotenv_settings: PydanticBaseSettingsSource,
        file_secret_settings: PydanticBaseSettingsSource,
    ) -> tuple[PydanticBaseSettingsSource, ...]:
        # Command-line overrides beat the environment, which beats the file (then the defaults).
        return init_settings, env_settings, _YamlFile(settings_cls, yaml_file=_CONFIG_FILE.get())


# The file `load_settings` was given. pydantic-settings builds its sources in a classmethod that sees no
# argument of the call (pydantic/pydantic-settings#259: no per-call yaml_file), so the path travels here;
# `Settings()` alone reads no file.
_CONFIG_FILE: ContextVar[Path | None] = ContextVar("tierstream_config_file", default=None)


class _YamlFile(YamlConfigSettingsSource):
    """pydantic-settings' YAML source, with a config error naming the file where the library would raise
    yaml's or the OS's exception, or fail obscurely on a file that is not a mapping of settings."""

    def _read_file(self, file_path: Path | Traversable) -> dict[str, Any]:
        try:
            data = super()._read_file(file_path)
        except OSError as exc:
            raise ConfigError(f"config: cannot read {file_path}: {exc.strerror}") from None
        except yaml.YAMLError as exc:
            mark = getattr(exc, "problem_mark", None)
            where = f" at line {mark.line + 1}" if mark is not None else ""
            raise ConfigError(f"config: {file_path} is not valid YAML{where}") from None
        if not isinstance(data, dict):
            raise ConfigError(f"config: {file_path}: the top level must be a mapping of settings")
        if "scoring" in data and data["scoring"] is None:  # `scoring:` with nothing under it: the defaults
            del data["scoring"]
        return data


def load_settings(path: Path | None = None, **overrides: Any) -> Settings:
    """Settings from `path` (or ./tierstream.yaml when present), the environment and overrides.

    Raises ConfigError: one line with every error, each naming where its value came from.
    """
    if path is None and Path(DEFAULT_CONFIG_FILE).is_file():
        path = Path(DEFAULT_CONFIG_FILE)
    if path is not None and not path.is_file():  # the YAML source skips a missing file without a word
        reason = os.strerror(errno.EISDIR if path.is_dir() else errno.ENOENT)
        raise ConfigError(f"config: cannot read {path}: {reason}")
    warn_unknown_env(os.environ)
    given = {k: v for k, v in overrides.items() if v is not None}
    token = _CONFIG_FILE.set(path)
    try:
        return Settings(**given)
    except ValidationError as exc:
        raise ConfigError(config_errors(exc, path, given, os.environ)) from None
    finally:
        _CONFIG_FILE.reset(token)


def config_errors(exc: ValidationError, path: Path | None, overrides: Mapping[str, Any],
                  environ: Mapping[str, str]) -> str:
    """Every validation error on one line: `config: 2 errors: FILE: scoring.window_days: ...; env X: ...`."""
    errors = exc.errors()
    parts = []
    for error in errors:
        loc = _field_loc(error["loc"])
        parts.append(f"{_source(loc, path, overrides, environ)}{_where(loc)}: {_message(error, loc)}")
    count = f"{len(errors)} errors: " if len(errors) > 1 else ""
    return f"config: {count}" + "; ".join(parts)


def _field_loc(loc: Sequence[int | str]) -> tuple[int | str, ...]:
    """`loc` with a setting's alias (KAFKA_BOOTSTRAP, under which the sources pass its value) as its name."""
    if not loc:
        return ()
    names = {str(alias): name for name, field in Settings.model_fields.items()
             for alias in getattr(field.validation_alias, "choices", [])}
    return (names.get(str(loc[0]), loc[0]), *loc[1:])


def _where(loc: Sequence[int | str]) -> str:
    return ".".join(str(p) for p in loc) or "settings"


def _message(error: Mapping[str, Any], loc: Sequence[int | str]) -> str:
    if error["type"] != "extra_forbidden":
        return str(error["msg"])
    near = difflib.get_close_matches(str(loc[-1]), field_names(loc[:-1]), n=1, cutoff=0.6)
    return "unknown setting" + (f" (did you mean {near[0]}?)" if near else "")


def _source(loc: Sequence[int | str], path: Path | None, overrides: Mapping[str, Any],
            environ: Mapping[str, str]) -> str:
    """Where the value at `loc` came from: a command-line option, an environment variable or the file."""
    name = str(loc[0]) if loc else ""
    if name in overrides:
        return f"option --{name.replace('_', '-')}: "
    upper = {k.upper() for k in environ}
    for env in _env_names(name):
        if env in upper:
            return f"env {env}: "
    return f"{path}: " if path is not None else ""


def _env_names(name: str) -> list[str]:
    field = Settings.model_fields.get(name)
    aliases = getattr(field.validation_alias, "choices", []) if field is not None else []
    return [f"{ENV_PREFIX}{name.upper()}", *(str(a).upper() for a in aliases if str(a).isupper())]


def field_names(loc: Sequence[int | str]) -> list[str]:
    """The setting names valid at `loc` (e.g. ("scoring", "frequency_caps", "call") -> a cap's fields)."""
    model: type[BaseModel] | None = Settings
    for part in loc:
        field = model.model_fields.get(part) if model is not None and isinstance(part, str) else None
        if field is not None:  # else a list index or a mapping key: its items are of the same model
            model = _model_in(field.annotation)
    return sorted(model.model_fields) if model is not None else []


def _model_in(annotation: Any) -> type[BaseModel] | None:
    """The pydantic model inside an annotation (`X`, `X | None`, `list[X]`, `dict[str, X]`), if any."""
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        return annotation
    for arg in typing.get_args(annotation):
        if (found := _model_in(arg)) is not None:
            return found
    return None


_WARNED: set[str] = set()


def warn_unknown_env(environ: Mapping[str, str]) -> list[str]:
    """Warn once on stderr about each TIERSTREAM_* variable that is no setting (a typo is otherwise silently
    ignored); returns the unknown names."""
    known = {f"{ENV_PREFIX}{name.upper()}" for name in Settings.model_fields} | OTHER_ENV
    unknown = sorted(k.upper() for k in environ if k.upper().startswith(ENV_PREFIX) and k.upper() not in known)
    for name in unknown:
        if name not in _WARNED:
            _WARNED.add(name)
            hint = _env_hint(name, known)
            print(f"tierstream: warning: unknown environment variable {name}{hint}; ignored", file=sys.stderr)
    return unknown


def _env_hint(name: str, known: set[str]) -> str:
    """A near known name for a misspelt TIERSTREAM_* variable (compared without the shared prefix, which would
    make every name look alike), or where nested scoring rules go."""
    if name.startswith(f"{ENV_PREFIX}SCORING__"):
        return " (scoring rules are set in the config file's `scoring:` section)"
    suffixes = {k[len(ENV_PREFIX):]: k for k in known if k.startswith(ENV_PREFIX)}
    near = difflib.get_close_matches(name[len(ENV_PREFIX):], sorted(suffixes), n=1, cutoff=0.75)
    return f" (did you mean {suffixes[near[0]]}?)" if near else ""
