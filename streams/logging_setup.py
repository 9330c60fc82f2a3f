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
# The password runs to the last "@" before the host (a password may hold "@" itself).
_URL_PASSWORD = re.compile(r"(?P<head>[a-zA-Z][a-zA-Z0-9+.-]*://[^:/@\s]*:)\S+@(?=[^@\s]*(?:\s|$|['\"),]))")
_FORMATTER = logging.Formatter()


def redact(text: str) -> str:
    """`text` with the password of every `scheme://user:password@host` masked."""
    return _URL_PASSWORD.sub(r"\g<head>***@", text) if "@" in text and "://" in text else text


class RedactSecrets(logging.Filter):
    """Masks passwords in URLs (`redis://:pw@host` -> `redis://:***@host`) in a record's message and in
    its traceback (an exception's message may quote a URL)."""

    def filter(self, record: logging.LogRecord) -> bool:
        message = record.getMessage()
        masked = redact(message)
        if masked != message:
            record.msg, record.args = masked, None
        if record.exc_info and record.exc_info[0] is not None:
            text = record.exc_text or _FORMATTER.formatException(record.exc_info)
            if (clean := redact(text)) != text:  # formatters print exc_text (text and JSON)
                record.exc_text, record.exc_info = clean, None
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
