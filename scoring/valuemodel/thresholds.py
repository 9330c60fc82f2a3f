"""Data-driven R/F/M cut points (quintiles) in the form `ScoringConfig` adopts.

Convention, matching `scoring.config.ScoringConfig`:
- `recency_days` (R): ascending "at most N days since the last purchase day";
  R = 5 when recency <= first cut, 4 when <= second, ..., 1 above the last.
- `frequency_counts` (F) and `monetary_amounts` (M): ascending "at least";
  score = 1 + number of cut points the value reaches (value >= cut).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
import numpy.typing as npt

from scoring.valuemodel.arrays import IntArray, as_float
from scoring.valuemodel.errors import ValueModelError

QUINTILES = (0.2, 0.4, 0.6, 0.8)


@dataclass(frozen=True)
class RfmThresholds:
    """Four ascending cut points for each of R (days), F (purchase days) and M (money)."""

    recency_days: tuple[int, int, int, int]
    frequency_counts: tuple[float, float, float, float]
    monetary_amounts: tuple[float, float, float, float]

    def to_dict(self) -> dict[str, list[float]]:
        """JSON-safe; the keys are the `ScoringConfig` field names."""
        return {
            "recency_days": list(self.recency_days),
            "frequency_counts": list(self.frequency_counts),
            "monetary_amounts": list(self.monetary_amounts),
        }

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> RfmThresholds:
        """Inverse of `to_dict`; raises ValueModelError unless each list has 4 ascending numbers."""
        try:
            r, f, m = (_four(data[k]) for k in ("recency_days", "frequency_counts", "monetary_amounts"))
        except (KeyError, TypeError, ValueError) as exc:
            raise ValueModelError(f"thresholds need 4 ascending numbers each: {exc}") from None
        return cls(_ints(r), f, m)


def _four(values: Any) -> tuple[float, float, float, float]:
    a, b, c, d = (float(v) for v in values)
    if not a <= b <= c <= d:
        raise ValueError("not ascending")
    return a, b, c, d


def _ints(values: tuple[float, float, float, float]) -> tuple[int, int, int, int]:
    a, b, c, d = (int(v) for v in values)
    return a, b, c, d


def quantile_thresholds(
    recency_days: npt.ArrayLike, frequency: npt.ArrayLike, monetary: npt.ArrayLike
) -> RfmThresholds:
    """Quintile cut points: about a fifth of the customers get each score, ties permitting.

    Recency cuts are floored to whole days (recency is in whole days, so
    "<= q" and "<= floor(q)" agree); frequency cuts are ceiled (counts are
    whole, ">= q" equals ">= ceil(q)"); monetary cuts are rounded to cents.
    """
    r, f, m = as_float(recency_days), as_float(frequency), as_float(monetary)
    if min(r.size, f.size, m.size) == 0:
        raise ValueModelError("quantile_thresholds needs at least one customer")
    r_cut = np.floor(np.quantile(r, QUINTILES))
    f_cut = np.ceil(np.quantile(f, QUINTILES))
    m_cut = np.round(np.quantile(m, QUINTILES), 2)
    return RfmThresholds(_ints(_four(r_cut)), _four(f_cut), _four(m_cut))


def rfm_scores(
    th: RfmThresholds, recency_days: npt.ArrayLike, frequency: npt.ArrayLike, monetary: npt.ArrayLike
) -> tuple[IntArray, IntArray, IntArray]:
    """R, F, M scores 1-5 under the module's convention."""
    r = 5 - np.searchsorted(np.asarray(th.recency_days, dtype=np.float64), as_float(recency_days), side="left")
    f = 1 + np.searchsorted(np.asarray(th.frequency_counts), as_float(frequency), side="right")
    m = 1 + np.searchsorted(np.asarray(th.monetary_amounts), as_float(monetary), side="right")
    return r.astype(np.int64), f.astype(np.int64), m.astype(np.int64)
