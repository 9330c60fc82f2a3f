"""Money in the core: exact integers of 1/10,000 of the currency unit (4 decimals).

Every amount the core keeps (an event's amount, the day buckets, all-time totals, outcome windows) is an
`int` of ten-thousandths of its currency (names end in `_e4`): a unit price with 3 decimals times a
quantity, a 4-decimal price, or a cent amount is held and summed exactly, with no rounding per line.
Inputs with more decimals are refused, not rounded (the message schemas say "at most 4 decimals").
Cent-granular artefacts (calibration quantile tables, the dedupe content hash) take `cents_of`, half to even.
Outputs render an amount with 2 decimals when it is whole cents (12.50 as today) and up to 4 otherwise
(`money_text`); as a JSON number it is the float of that decimal (`money_float`).
"""

from __future__ import annotations

from decimal import Decimal
from typing import Final

SCALE: Final = 10_000  # ten-thousandths per currency unit
DECIMALS: Final = 4
PER_CENT: Final = SCALE // 100
MAX_UNITS: Final = 1_000_000_000  # the largest amount of one event, currency units (schemas.base.MAX_AMOUNT)
_QUANTUM: Final = Decimal(1).scaleb(-DECIMALS)


class MoneyError(ValueError):
    """An amount the core cannot hold exactly: not finite, more than 4 decimals, or beyond MAX_UNITS."""


def to_e4(amount: Decimal) -> int:
    """The exact ten-thousandths of `amount` (negative stays negative); MoneyError when it has none."""
    if not amount.is_finite():
        raise MoneyError("amount is not a finite number")
    if abs(amount) > MAX_UNITS:
        raise MoneyError("amount is implausibly large (> 1e9)")
    scaled = amount.scaleb(DECIMALS)
    if scaled != scaled.to_integral_value():
        raise MoneyError(f"amount {amount} has more than {DECIMALS} decimals")
    return int(scaled)


def from_e4(units: int) -> Decimal:
    """The exact decimal of `units` ten-thousandths, 4 decimals (`Decimal("12.5000")`)."""
    return Decimal(units).scaleb(-DECIMALS).quantize(_QUANTUM)


def money_float(units: int) -> float:
    """The float nearest the decimal amount (12.5 for 125000; the float of "0.0005" for 5)."""
    return units / SCALE


def money_text(units: int) -> str:
    """The amount as output text: 2 decimals for whole cents ("12.50"), else as many as it has, up to 4."""
    sign, whole, frac = "-" if units < 0 else "", abs(units) // SCALE, f"{abs(units) % SCALE:04d}"
    return f"{sign}{whole}.{frac[:2] if frac[2:] == '00' else frac.rstrip('0')}"


def cents_of(units: int) -> int:
    """Whole cents of `units`, half to even (for cent-granular tables and hashes)."""
    cents, rest = divmod(units, PER_CENT)
    twice = 2 * rest
    return cents + (1 if twice > PER_CENT or (twice == PER_CENT and cents % 2) else 0)


def e4_of_cents(cents: int) -> int:
    """Ten-thousandths of a cent amount (what state bytes before codec version 6 hold)."""
    return cents * PER_CENT
