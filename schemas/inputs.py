"""Messages tierstream consumes, one topic per type, keyed by customer id."""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import Field

from schemas.base import Amount, Currency, CustomerId, Id, Message, OccurredAt


class LineItem(Message):
    """One line of an order."""

    sku: str = Field(min_length=1, max_length=200, description="Product code.")
    quantity: int = Field(ge=1, le=1_000_000, description="Units.")
    unit_price: Amount


class PurchaseCompleted(Message):
    """A completed order (topic `purchases`)."""

    type: Literal["purchase"] = Field(default="purchase", description="Event type tag.")
    event_id: Id = Field(description="Unique id of this event; redeliveries repeat it.")
    customer_id: CustomerId
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
    customer_id: CustomerId
    occurred_at: OccurredAt
    amount: Amount = Field(description="Amount refunded, >= 0, in `currency` units.")
    currency: Currency | None = Field(default=None, description="Currency; the base currency when absent.")
    order_id: str = Field(min_length=1, max_length=200, description="The order returned against.")
    reason: str = Field(default="", max_length=500, description="Why the goods came back.")


class ComplaintFiled(Message):
    """A complaint (topic `complaints`)."""

    type: Literal["complaint"] = Field(default="complaint", description="Event type tag.")
    event_id: Id = Field(description="Unique id of this event.")
    customer_id: CustomerId
    occurred_at: OccurredAt
    severity: int = Field(ge=1, le=5, description="1 (minor) to 5 (severe).")
    category: str = Field(min_length=1, max_length=100, description="e.g. delivery, quality, billing.")


class EnquiryReceived(Message):
    """A question or request for information (topic `enquiries`)."""

    type: Literal["enquiry"] = Field(default="enquiry", description="Event type tag.")
    event_id: Id = Field(description="Unique id of this event.")
    customer_id: CustomerId
    occurred_at: OccurredAt
    topic: str = Field(min_length=1, max_length=200, description="What the enquiry is about.")


InputEvent = Annotated[
    PurchaseCompleted | OrderReturned | ComplaintFiled | EnquiryReceived, Field(discriminator="type")
]
INPUT_MODELS: dict[str, type[Message]] = {
    "purchase": PurchaseCompleted,
    "return": OrderReturned,
    "complaint": ComplaintFiled,
    "enquiry": EnquiryReceived,
}
