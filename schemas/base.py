"""Shared pieces of every message model."""

from __future__ import annotations

import re
from datetime import UTC, datetime
from decimal import Decimal
from typing import Annotated, Any

from pydantic import AfterValidator, AwareDatetime, BaseModel, BeforeValidator, ConfigDict, Field, WithJsonSchema

MAX_AMOUNT = Decimal("1000000000")
EARLIEST = datetime(1970, 1, 1, tzinfo=UTC)  # epoch days and times are never negative

# An input id: no control characters (C0, DEL, C1), no line or paragraph separators, and no whitespace at
# either end (" 42" and "42" would be two customers; an id of spaces only is no id).
_CONTROLS = r"\x00-\x1f\x7f-\x9f\u2028\u2029"  # regex escapes (readable in the JSON Schema)
INPUT_ID_PATTERN = rf"^[^\s{_CONTROLS}]([^{_CONTROLS}]*[^\s{_CONTROLS}])?$"
_PLAIN_DECIMAL = re.compile(r"-?[0-9]+(\.[0-9]+)?")  # a sign only to say "must be >= 0" clearly

Id = Annotated[
    str,
    Field(
        min_length=1,
        max_length=200,
        pattern=INPUT_ID_PATTERN,
        description="No control characters or line separators, no whitespace at either end.",
    ),
]
CustomerId = Annotated[
    str,
    Field(
        min_length=1,
        max_length=200,
        pattern=r"^[^\x00-\x1f]+$",
        description="Customer id; also the Kafka message key (UTF-8 bytes).",
    ),
]
InputCustomerId = Annotated[
    str,
    Field(
        min_length=1,
        max_length=200,
        pattern=INPUT_ID_PATTERN,
        description="Customer id; also the Kafka message key (UTF-8 bytes). No control characters or line "
        "separators, no whitespace at either end.",
    ),
]


def _plain_amount(value: Any) -> Any:
    """A JSON number, or a string of ASCII digits with an optional fraction: nothing a reader could misread."""
    if isinstance(value, bool):
        raise ValueError("amount must be a number, not true/false")
    if isinstance(value, str) and not _PLAIN_DECIMAL.fullmatch(value):
        raise ValueError("amount as a string must be plain ASCII digits with an optional .fraction, e.g. '12.50'")
    return value


def _from_1970(value: datetime) -> datetime:
    """On or after 1970-01-01T00:00:00Z, and a time that exists in UTC (years 1970-9999)."""
    try:
        utc = value.astimezone(UTC)
    except OverflowError:
        raise ValueError("occurred_at must be before year 10000 in UTC") from None
    if utc < EARLIEST:
        raise ValueError("occurred_at must be on or after 1970-01-01T00:00:00Z")
    return value


_AMOUNT_TEXT = (
    "Money, >= 0 and <= 1e9, at most 4 decimals (kept exactly, in 1/10,000 of the unit; more decimals are "
    "refused, never rounded), in `currency` units: a JSON number, or a string of ASCII digits with an optional "
    "fraction ('12.50', '0.125'; no sign, exponent, spaces or other digits)."
)
# What the validator takes, said in JSON Schema terms (pydantic's own rendering of a Decimal field is
# `anyOf number, string` with its constraints as keywords no validator knows, so "abc" and "-5" passed).
# A string's digits: up to 999999999 with up to 4 significant decimals (trailing zeros are no decimals), or
# 1000000000 exactly; a number: the range (4 decimals cannot be said of a binary float: the description says it).
_AMOUNT_STRING = r"^0*([0-9]{1,9}(\.[0-9]{1,4}0*)?|1000000000(\.0+)?)$"
AMOUNT_JSON_SCHEMA = {
    "anyOf": [
        {"type": "number", "minimum": 0, "maximum": int(MAX_AMOUNT)},
        {"type": "string", "pattern": _AMOUNT_STRING},
    ],
    "description": _AMOUNT_TEXT,
}

Amount = Annotated[
    Decimal,
    BeforeValidator(_plain_amount),
    Field(ge=0, le=MAX_AMOUNT, allow_inf_nan=False, max_digits=18, decimal_places=4, description=_AMOUNT_TEXT),
    WithJsonSchema(AMOUNT_JSON_SCHEMA),
]
Currency = Annotated[str, Field(pattern=r"^[A-Z]{3}$", description="ISO 4217 code, e.g. USD.")]
_NUMBER_TEXT = re.compile(r"\s*[+-]?\d+(\.\d*)?\s*")


def _iso_time(value: Any) -> Any:
    """A time is ISO 8601 text: pydantic's lax reading of a number (or digits in a string) as Unix seconds or
    milliseconds would turn a wrong field into a plausible date."""
    if isinstance(value, (int, float, Decimal)) or (isinstance(value, str) and _NUMBER_TEXT.fullmatch(value)):
        raise ValueError("occurred_at must be ISO 8601 text with a UTC offset, not a number")
    return value


OccurredAt = Annotated[
    AwareDatetime,
    BeforeValidator(_iso_time),
    AfterValidator(_from_1970),
    Field(description="When it happened; ISO 8601 with a UTC offset, from 1970-01-01T00:00:00Z on."),
]


class Message(BaseModel):
    """Base of all messages: unknown fields are refused, instances are immutable."""

    # protected_namespaces: outputs carry `model_version`, which pydantic < 2.10 warns about on every start
    model_config = ConfigDict(extra="forbid", frozen=True, protected_namespaces=())
