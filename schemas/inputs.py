"""Messages tierstream consumes, keyed by customer id: on the mixed `customer-events` topic (any type), and
on a topic per event type (erasure requests come on the mixed topic only).

Inputs are read strictly where a lenient reading could change a figure: an object with a key twice is
refused (JSON parsers disagree on which one wins; `load_json`), amounts are JSON numbers or plain digit
strings, the severity is a JSON integer, ids have no control characters, line separators or whitespace
at either end, and `occurred_at` is from 1970 on (see docs/delivery.md, Inputs).
"""

from __future__ import annotations

import json
from collections import Counter
from typing import Annotated, Any, Literal

from pydantic import Field, StrictInt, TypeAdapter

from schemas.base import INPUT_ID_PATTERN, Amount, Currency, Id, InputCustomerId, Message, OccurredAt


class LineItem(Message):
    """One line of an order."""

    sku: str = Field(min_length=1, max_length=200, description="Product code.")
    quantity: StrictInt = Field(ge=1, le=1_000_000, description="Units.")
    unit_price: Amount
    category: str | None = Field(
        default=None,
        min_length=1,
        max_length=100,
        pattern=INPUT_ID_PATTERN,
        description="Product category, e.g. kitchen; absent: the product code stands for it (category affinity). "
        "No control characters or line separators, no whitespace at either end.",
    )


class PurchaseCompleted(Message):
    """A completed order (topic `purchases`)."""

    type: Literal["purchase"] = Field(default="purchase", description="Event type tag.")
    event_id: Id = Field(description="Unique id of this event; redeliveries repeat it.")
    customer_id: InputCustomerId
    occurred_at: OccurredAt
    amount: Amount
    currency: Currency
    order_id: str = Field(min_length=1, max_length=200, description="Order reference.")
    channel: str | None = Field(default=None, max_length=50, description="Sales channel, e.g. web, store.")
    items: list[LineItem] | None = Field(default=None, max_length=1000, description="Order lines.")


class OrderReturned(Message):
    """Goods returned and refunded (topic `returns`)."""

    type: Literal["return"] = Field(default="return", description="Event type tag.")
    event_id: Id = Field(description="Unique id of this event.")
    customer_id: InputCustomerId
    occurred_at: OccurredAt
    amount: Amount = Field(description="Amount refunded, >= 0, in `currency` units.")
    currency: Currency | None = Field(default=None, description="Currency; the base currency when absent.")
    order_id: str = Field(min_length=1, max_length=200, description="The order returned against.")
    reason: str = Field(default="", max_length=500, description="Why the goods came back.")


class ComplaintFiled(Message):
    """A complaint (topic `complaints`)."""

    type: Literal["complaint"] = Field(default="complaint", description="Event type tag.")
    event_id: Id = Field(description="Unique id of this event.")
    customer_id: InputCustomerId
    occurred_at: OccurredAt
    severity: StrictInt = Field(ge=1, le=5, description="1 (minor) to 5 (severe).")
    category: str = Field(min_length=1, max_length=100, description="e.g. delivery, quality, billing.")


class EnquiryReceived(Message):
    """A question or request for information (topic `enquiries`)."""

    type: Literal["enquiry"] = Field(default="enquiry", description="Event type tag.")
    event_id: Id = Field(description="Unique id of this event.")
    customer_id: InputCustomerId
    occurred_at: OccurredAt
    topic: str = Field(min_length=1, max_length=200, description="What the enquiry is about.")


class ErasureRequested(Message):
    """A request to erase a customer (topic `customer-events` only): tierstream forgets the customer at once,
    whatever `scoring.retention`, and answers with a CustomerForgotten. A request for a customer it holds no
    state for (never seen, forgotten already, or this request redelivered) has nothing to erase: no output.
    Events of the same customer id after it start a new customer."""

    type: Literal["erasure"] = Field(default="erasure", description="Event type tag.")
    event_id: Id = Field(description="Unique id of this request; redeliveries repeat it.")
    customer_id: InputCustomerId
    requested_at: OccurredAt = Field(
        description="When the request was made; ISO 8601 with a UTC offset. Orders it among the customer's "
        "events (event clock) and is checked against the clock like an event's occurred_at."
    )


EventMessage = PurchaseCompleted | OrderReturned | ComplaintFiled | EnquiryReceived | ErasureRequested
InputEvent = Annotated[EventMessage, Field(discriminator="type")]
INPUT_MODELS: dict[str, type[Message]] = {
    "purchase": PurchaseCompleted,
    "return": OrderReturned,
    "complaint": ComplaintFiled,
    "enquiry": EnquiryReceived,
    "erasure": ErasureRequested,
}

_ANY_INPUT: TypeAdapter[Any] = TypeAdapter(InputEvent)


class DuplicateKeyError(ValueError):
    """A JSON object with the same key twice."""


def _unique_keys(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    doc = dict(pairs)
    if len(doc) != len(pairs):
        twice = next(key for key, n in Counter(key for key, _ in pairs).items() if n > 1)
        raise DuplicateKeyError(f"{twice}: the key appears more than once")
    return doc


def load_json(raw: bytes | str) -> Any:
    """Parse JSON text, refusing an object with a duplicate key (DuplicateKeyError; a ValueError, as are
    invalid UTF-8 and invalid JSON)."""
    return json.loads(raw, object_pairs_hook=_unique_keys)


def parse_input(raw: bytes | str) -> EventMessage:
    """Any input event from its JSON text (by its `type`); ValueError or pydantic's ValidationError."""
    return _ANY_INPUT.validate_python(load_json(raw))  # type: ignore[no-any-return]
