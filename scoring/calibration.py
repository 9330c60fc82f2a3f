"""A calibration: where a customer stands in the population, as a versioned artefact.

Calibrated tiering (`tiering: calibrated`, the default) gives R, F and M points
by a customer's percentile position among the ACTIVE customers (those with a
purchase in the `window_days` to the as-of day), and tier thresholds that put
the configured shares of the active customers in each tier. Both come from a
`Calibration`, computed by `scoring.calibrate.calibrate` and applied to a config
with `ScoringConfig.calibrated` (or `scoring.calibrate.apply_calibration`).

Contents (the JSON file has the same fields, one a line):
- `recency_days`, `frequency`, `monetary_cents`: each figure's quantile table
  over the active customers: `points + 1` observed values, the lower quantiles
  at 0, 1/points, ..., 1 (the first is the minimum, the last the maximum).
  Recency is whole days since the last purchase day, frequency the purchases in
  the window, monetary the window's net spend (purchases - returns) in cents of
  the base currency (the exact 1/10,000 sums of the state, `scoring.money`, to
  whole cents half to even: a cut point finer than a cent separates nobody).
- `thresholds`: the composite score (0-100) that enters each tier, highest tier
  first, the last 0.
- `shares`, `customers` (all), `active`, `as_of`, `window_days`,
  `config_version`: what it was computed from and for.
- `version`: "cal-" + the first 12 hex digits of the SHA-256 of the canonical
  JSON of every other field: the same content has the same version, and it is
  stamped on outputs. `format` is the file format number (this code reads 1).

`position(table, value)` is a value's percentile position in [0, 1]: linear
between two neighbouring table points, the middle of the run for a value that
is a table point (tied customers share one position), 0 below the first point
and 1 above the last. Pure: no I/O; the shell reads and writes the file.
"""

from __future__ import annotations

import hashlib
import json
from bisect import bisect_left, bisect_right
from collections.abc import Sequence
from datetime import date, timedelta
from typing import Any, Final, Literal, Protocol

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from scoring.errors import CalibrationError

FORMAT = 1
KIND: Final = "tierstream-calibration"
_EPOCH = date(1970, 1, 1)
_SHARE_TOLERANCE = 1e-6


class PercentileTables(Protocol):
    """The three quantile tables (a `Calibration`, or `scoring.calibrate.CutTables` before thresholds exist)."""

    @property
    def recency_days(self) -> tuple[int, ...]: ...
    @property
    def frequency(self) -> tuple[int, ...]: ...
    @property
    def monetary_cents(self) -> tuple[int, ...]: ...


class Calibration(BaseModel):
    """A population's percentile tables and tier thresholds as of a day. Immutable."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    kind: Literal["tierstream-calibration"] = Field(default=KIND, description="What the file is.")
    format: int = Field(description="File format number.")
    version: str = Field(pattern=r"^cal-[0-9a-f]{12}$", description="Content version, stamped on outputs.")
    as_of: date = Field(description="The day the population was observed (its end), UTC.")
    config_version: str = Field(description="Version of the scoring rules it was computed under.")
    window_days: int = Field(ge=1, description="The rolling window of F and M (days).")
    customers: int = Field(ge=1, description="Customers in the population.")
    active: int = Field(ge=1, description="Active customers: a purchase in the window to `as_of`.")
    shares: dict[str, float] = Field(description="Share of the active customers in each tier, highest first.")
    thresholds: dict[str, float] = Field(description="Composite score (0-100) entering each tier, highest first.")
    recency_days: tuple[int, ...] = Field(description="Quantile table of days since the last purchase.")
    frequency: tuple[int, ...] = Field(description="Quantile table of purchases in the window.")
    monetary_cents: tuple[int, ...] = Field(description="Quantile table of the window's net spend, cents.")

    @field_validator("format")
    @classmethod
    def _known_format(cls, v: int) -> int:
        if v != FORMAT:
            raise ValueError(f"this tierstream reads calibration format {FORMAT}, not {v}")
        return v

    @field_validator("shares")
    @classmethod
    def _shares(cls, v: dict[str, float]) -> dict[str, float]:
        for tier, share in v.items():
            if not 0 < share <= 1:
                raise ValueError(f"share of {tier!r} must be > 0 and <= 1")
        if v and abs(sum(v.values()) - 1) > _SHARE_TOLERANCE:
            raise ValueError(f"shares must add up to 1, not {sum(v.values()):g}")
        return v

    @field_validator("thresholds")
    @classmethod
    def _thresholds(cls, v: dict[str, float]) -> dict[str, float]:
        scores = list(v.values())
        if not scores:
            raise ValueError("need at least one tier")
        if any(not 0 <= s <= 100 for s in scores):
            raise ValueError("every threshold must be a score in [0, 100]")
        if scores != sorted(scores, reverse=True):
            raise ValueError("list the highest tier first: thresholds must not increase")
        if scores[-1] != 0:
            raise ValueError("the last tier's threshold must be 0 so that every score has a tier")
        return v

    @field_validator("recency_days", "frequency", "monetary_cents")
    @classmethod
    def _table(cls, v: tuple[int, ...]) -> tuple[int, ...]:
        if len(v) < 2:
            raise ValueError("a quantile table needs at least 2 points")
        if list(v) != sorted(v):
            raise ValueError("a quantile table must be ascending")
        return v

    @model_validator(mode="after")
    def _consistent(self) -> Calibration:
        if list(self.shares) != list(self.thresholds):
            raise ValueError("shares: must name the same tiers as thresholds, in the same order")
        if not len(self.recency_days) == len(self.frequency) == len(self.monetary_cents):
            raise ValueError("frequency: every quantile table must have as many points as recency_days")
        if self.recency_days[0] < 0:
            raise ValueError("recency_days: days since a purchase cannot be negative")
        if self.active > self.customers:
            raise ValueError("active: cannot be more than customers")
        return self

    @property
    def as_of_day(self) -> int:
        """`as_of` as a UTC epoch day."""
        return (self.as_of - _EPOCH).days

    @property
    def points(self) -> int:
        """How many quantile steps each table has (its length - 1)."""
        return len(self.recency_days) - 1

    @property
    def tier_names(self) -> tuple[str, ...]:
        return tuple(self.thresholds)

    def to_json(self) -> str:
        """The file's text: one field a line, in field order (read back by `calibration_from_json`)."""
        doc = self.model_dump(mode="json")
        lines = [f"  {json.dumps(k)}: {json.dumps(v, separators=(', ', ': '))}" for k, v in doc.items()]
        return "{\n" + ",\n".join(lines) + "\n}\n"


def content_version(calibration: Calibration) -> str:
    """ "cal-" + 12 hex digits of the SHA-256 of the canonical JSON of every field but `version`."""
    doc = calibration.model_dump(mode="json", exclude={"version"})
    canonical = json.dumps(doc, separators=(",", ":"), ensure_ascii=True, allow_nan=False)
    return "cal-" + hashlib.sha256(canonical.encode()).hexdigest()[:12]


def make_calibration(
    *,
    as_of_day: int,
    config_version: str,
    window_days: int,
    customers: int,
    active: int,
    shares: dict[str, float],
    thresholds: dict[str, float],
    tables: tuple[tuple[int, ...], tuple[int, ...], tuple[int, ...]],
) -> Calibration:
    """A validated calibration with its content version. Raises CalibrationError (one line)."""
    recency, frequency, monetary = tables
    fields: dict[str, Any] = {
        "kind": KIND,
        "format": FORMAT,
        "version": "cal-000000000000",
        "as_of": _EPOCH + timedelta(days=as_of_day),
        "config_version": config_version,
        "window_days": window_days,
        "customers": customers,
        "active": active,
        "shares": shares,
        "thresholds": thresholds,
        "recency_days": recency,
        "frequency": frequency,
        "monetary_cents": monetary,
    }
    draft = _validated(fields)
    return draft.model_copy(update={"version": content_version(draft)})


def parse_calibration(data: Any) -> Calibration:
    """Validate a mapping (a parsed file) into a calibration whose version matches its content.

    Raises CalibrationError with one line naming the bad field.
    """
    if not isinstance(data, dict):
        raise CalibrationError("calibration: the top level must be a JSON object")
    calibration = _validated(data)
    expected = content_version(calibration)
    if calibration.version != expected:
        raise CalibrationError(
            f"calibration: version: {calibration.version} does not match the content ({expected}): "
            "the file was changed after it was made"
        )
    return calibration


def calibration_from_json(text: str) -> Calibration:
    """Parse a calibration file's text; CalibrationError (one line naming the field) when it is not one."""
    try:
        data = json.loads(text)
    except json.JSONDecodeError as exc:
        raise CalibrationError(f"calibration: not valid JSON (line {exc.lineno}: {exc.msg})") from None
    return parse_calibration(data)


def _validated(data: dict[str, Any]) -> Calibration:
    try:
        return Calibration.model_validate(data)
    except ValidationError as exc:
        err = exc.errors()[0]
        where = ".".join(str(p) for p in err["loc"])
        message = err["msg"].removeprefix("Value error, ")
        raise CalibrationError(f"calibration: {where}: {message}" if where else f"calibration: {message}") from None


def position(table: Sequence[int], value: float) -> float:
    """`value`'s percentile position in [0, 1] against an ascending quantile table (see the module doc).

    Non-decreasing in `value`; tied values get the middle of their run of table points.
    """
    steps = len(table) - 1
    low = bisect_left(table, value)
    if low > steps:
        return 1.0
    high = bisect_right(table, value)
    if high > low:  # a table point: the middle of its run
        return (low + high - 1) / (2 * steps)
    if low == 0:
        return 0.0
    below, above = table[low - 1], table[low]
    return (low - 1 + (value - below) / (above - below)) / steps


def quintile_rank(share: float) -> int:
    """The 1-5 rank of a position in [0, 1]: 1 for the bottom fifth, ..., 5 for the top."""
    return 1 + min(4, int(share * 5))
