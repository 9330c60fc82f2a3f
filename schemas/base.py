"""Shared pieces of every message model."""

from __future__ import annotations

from decimal import Decimal
from typing import Annotated

from pydantic import AwareDatetime, BaseModel, ConfigDict, Field

MAX_AMOUNT = Decimal("1000000000")

Id = Annotated[str, Field(min_length=1, max_length=200, pattern=r"^[^\x00-\x1f]+$")]
CustomerId = Annotated[
    str,
    Field(
        min_length=1,
        max_length=200,
        pattern=r"^[^\x00-\x1f]+$",
        description="Customer id; also the Kafka message key (UTF-8 bytes).",
    ),
]
Amount = Annotated[
    Decimal,
    Field(
        ge=0,
        le=MAX_AMOUNT,
        allow_inf_nan=False,
        max_digits=18,
        decimal_places=4,
        description="Money, >= 0, at most 4 decimals, in `currency` units.",
    ),
]
Currency = Annotated[str, Field(pattern=r"^[A-Z]{3}$", description="ISO 4217 code, e.g. USD.")]
OccurredAt = Annotated[AwareDatetime, Field(description="When it happened; ISO 8601 with a UTC offset.")]


class Message(BaseModel):
    """Base of all messages: unknown fields are refused, instances are immutable."""

    model_config = ConfigDict(extra="forbid", frozen=True)
