"""How a part of the value model was fitted: the record a model file and `fit` report."""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

from scoring.valuemodel.errors import ValueModelError

METHODS = ("mle", "nbd_limit", "penalised")


@dataclass(frozen=True)
class FitChoice:
    """Which fit a part of the model is, and why.

    `method`: "mle" (the unpenalised maximum, an interior one), "nbd_limit"
    (the BG/NBD's no-drop-out limit, where its likelihood has no interior
    maximum) or "penalised" (ridge on the log-parameters with `penalty`).
    `boundary` says where the unpenalised likelihood ran off ("" for "mle").
    `heldout` holds each candidate's mean held-out log-likelihood per customer
    over the last `heldout_days` of the history (fitted on what came before),
    the choice being the best; empty when there was no such comparison.
    `reason` is the one-line explanation `fit` prints.
    """

    method: str
    reason: str
    penalty: float = 0.0
    boundary: str = ""
    heldout_days: int = 0
    heldout: tuple[tuple[str, float], ...] = ()

    def to_dict(self) -> dict[str, Any]:
        """JSON-safe mapping."""
        return {
            "method": self.method,
            "reason": self.reason,
            "penalty": self.penalty,
            "boundary": self.boundary,
            "heldout_days": self.heldout_days,
            "heldout_log_likelihood": dict(self.heldout),
        }

    @classmethod
    def from_dict(cls, data: Any) -> FitChoice:
        """Inverse of `to_dict`; raises ValueModelError on a malformed mapping or an unknown method."""
        try:
            choice = cls(
                str(data["method"]),
                str(data["reason"]),
                float(data.get("penalty", 0.0)),
                str(data.get("boundary", "")),
                int(data.get("heldout_days", 0)),
                tuple((str(k), float(v)) for k, v in dict(data.get("heldout_log_likelihood", {})).items()),
            )
        except (AttributeError, KeyError, TypeError, ValueError) as exc:
            raise ValueModelError(f"fit record: malformed mapping: {exc!r}") from None
        if choice.method not in METHODS or not math.isfinite(choice.penalty) or choice.penalty < 0:
            raise ValueModelError(f"fit record: unknown method {choice.method!r} or bad penalty")
        return choice


MLE = FitChoice("mle", "the likelihood has an interior maximum: the unpenalised fit")
