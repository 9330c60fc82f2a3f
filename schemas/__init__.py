"""Message formats: pydantic v2 models of everything tierstream reads and writes."""

from schemas.inputs import (
    INPUT_MODELS,
    ComplaintFiled,
    EnquiryReceived,
    ErasureRequested,
    InputEvent,
    LineItem,
    OrderReturned,
    PurchaseCompleted,
)
from schemas.outputs import (
    OUTPUT_MODELS,
    ContactActionRequested,
    CustomerAlert,
    CustomerForgotten,
    CustomerScore,
    DeadLetter,
    PotentialChanged,
    ScoreComponent,
    TierChanged,
    TouchPlan,
)

__all__ = [
    "INPUT_MODELS",
    "OUTPUT_MODELS",
    "ComplaintFiled",
    "ContactActionRequested",
    "CustomerAlert",
    "CustomerForgotten",
    "CustomerScore",
    "DeadLetter",
    "EnquiryReceived",
    "ErasureRequested",
    "InputEvent",
    "LineItem",
    "OrderReturned",
    "PotentialChanged",
    "PurchaseCompleted",
    "ScoreComponent",
    "TierChanged",
    "TouchPlan",
]
