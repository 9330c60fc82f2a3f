"""Log setup: plain text (default) or one JSON object a line, for log shippers.

Customer ids are the only personal data tierstream logs. Secrets never appear:
they are `SecretStr` (shown as "**********"), and as a second line of defence
any `scheme://user:password@` in a message is masked before it is written.

The dict from `logging_config` is also what `faust.Worker(logging_config=...)`
takes, so Faust's own set-up installs the same handlers instead of its colours.
"""

from __future__ import annotations

import logging
import logging.config
import re
from datetime import date, datetime
from typing import Any, Literal

from pydantic import SecretBytes, SecretStr

LogFormat = Literal["text", "json"]
TEXT_FORMAT = "%(asctime)s %(levelname)s %(name)s: %(message)s"
# Fields every JSON line has, renamed to the usual names of log shippers.
JSON_FIELDS = "%(levelname)s %(name)s %(message)s"
JSON_RENAMES = {"levelname": "level", "name": "logger"}
_URL_PASSWORD = re.compile(r"(?P<head>[a-zA-Z][a-zA-Z0-9+.-]*://[^:/@\s]*:)[^@\s]+@")


class RedactSecrets(logging.Filter):
    """Masks passwords in URLs (`redis://:pw@host` -> `redis://:***@host`) in a record's message."""

    def filter(self, record: logging.LogRecord) -> bool:
        message = record.getMessage()
        if "@" in message and "://" in message:
            record.msg, record.args = _URL_PASSWORD.sub(r"\g<head>***@", message), None
        return True


def json_default(value: Any) -> Any:
    """JSON for values the encoder does not know: secrets stay masked, times are ISO 8601, the rest str()."""
    if isinstance(value, (SecretStr, SecretBytes)):
        return "**********"
    if isinstance(value, (datetime, date)):
        return value.isoformat()
    return str(value)


def logging_config(level: str, fmt: LogFormat = "text") -> dict[str, Any]:
    """A `logging.config.dictConfig` document: one stderr handler at `level` in `fmt` (JSON time: ISO 8601 UTC)."""
    formatter: dict[str, Any] = {"format": TEXT_FORMAT}
    if fmt == "json":
        formatter = {"()": "pythonjsonlogger.json.JsonFormatter", "fmt": JSON_FIELDS,
                     "rename_fields": JSON_RENAMES, "timestamp": "time", "json_default": json_default}
    return {
        "version": 1,
        "disable_existing_loggers": False,
        "filters": {"redact": {"()": RedactSecrets}},
        "formatters": {"default": formatter},
        "handlers": {"default": {"class": "logging.StreamHandler", "stream": "ext://sys.stderr",
                                 "formatter": "default", "filters": ["redact"]}},
        "root": {"level": level.upper(), "handlers": ["default"]},
    }


def configure_logging(level: str, fmt: LogFormat = "text") -> dict[str, Any]:
    """Set up the root logger; returns the config (pass it to `faust.Worker(logging_config=...)`)."""
    logging.config.dictConfig(logging_config(level, fmt))  # dictConfig consumes its argument
    return logging_config(level, fmt)
