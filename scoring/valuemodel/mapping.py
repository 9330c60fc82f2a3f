"""Reading model parameters back from JSON-safe mappings."""

from __future__ import annotations

import math
from typing import Any

from scoring.valuemodel.errors import ValueModelError


def positive_fields(data: Any, names: tuple[str, ...]) -> dict[str, float]:
    """`data[name]` as floats for each name; raises ValueModelError unless all are finite and > 0."""
    try:
        values = {n: float(data[n]) for n in names}
    except (KeyError, TypeError, ValueError) as exc:
        raise ValueModelError(f"model parameters need numbers {names}: {exc!r}") from None
    if not all(math.isfinite(v) and v > 0 for v in values.values()):
        raise ValueModelError(f"model parameters {names} must be finite and > 0")
    return values


def floats(values: Any) -> tuple[float, ...]:
    """A sequence as a tuple of finite floats; raises ValueError otherwise."""
    result = tuple(float(v) for v in values)
    if not all(math.isfinite(v) for v in result):
        raise ValueError("values must be finite")
    return result
