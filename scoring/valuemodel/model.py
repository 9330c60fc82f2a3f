"""The fitted customer value model as one JSON-safe value, and the pure function that fits it."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, replace
from typing import Any

import numpy.typing as npt

from scoring.affinity import Affinity
from scoring.valuemodel.arrays import FloatArray
from scoring.valuemodel.atrisk import DEFAULT_STEP_DAYS, DEFAULT_WINDOWS, AtRiskModel, fit_at_risk
from scoring.valuemodel.bgnbd import BgNbdParams
from scoring.valuemodel.choice import FitChoice
from scoring.valuemodel.clv import clv
from scoring.valuemodel.errors import ValueModelError
from scoring.valuemodel.gammagamma import GammaGammaParams
from scoring.valuemodel.purchasefit import fit_purchases, require_repeat_buyers
from scoring.valuemodel.spendfit import SpendCheck, fit_spend, spend_check
from scoring.valuemodel.summary import History, PurchaseLog, log_of, summarise, window_activity
from scoring.valuemodel.thresholds import RfmThresholds, quantile_thresholds

MODEL_FORMAT = "tierstream.valuemodel/4"
# Format 4 adds how BG/NBD and Gamma-Gamma were fitted (`fits`), the spend /
# frequency correlation check (`spend_check`) and the BG/NBD's no-drop-out
# limit (`"kind": "nbd"`). Formats 1-3 lack those records (read as unknown)
# and differ in the at-risk model's feature set (`FEATURE_NAMES_V1`,
# `FEATURE_NAMES_V2`) and training metadata; such files are still read and
# scored as they were fitted.
READABLE_FORMATS = (MODEL_FORMAT, "tierstream.valuemodel/3", "tierstream.valuemodel/2", "tierstream.valuemodel/1")


@dataclass(frozen=True)
class ValueModel:
    """BG/NBD, Gamma-Gamma, at-risk model and R/F/M cut points fitted on history up to `as_of_day`.

    `version` is stamped on outputs; `window_days` is the F/M window the
    thresholds were computed over (compare with `ScoringConfig.window_days`).
    `bg_fit` and `gg_fit` say how the two were fitted and why, `spend_check`
    is the Gamma-Gamma's independence check (all None in files of format < 4);
    `affinity` is the categories' co-purchase affinity (`scoring.affinity`; None when the history had no items).
    """

    version: str
    as_of_day: int
    window_days: int
    bg: BgNbdParams
    gg: GammaGammaParams
    at_risk: AtRiskModel
    thresholds: RfmThresholds
    bg_fit: FitChoice | None = None
    gg_fit: FitChoice | None = None
    spend_check: SpendCheck | None = None
    affinity: Affinity | None = None  # category affinity, when fitted on purchases with items

    def risk(self, x: npt.ArrayLike, t_x: npt.ArrayLike, T: npt.ArrayLike, mean_value: npt.ArrayLike) -> FloatArray:
        """P(no purchase day in the next `at_risk.horizon_days` days), in [0, 1]; inputs in days."""
        return self.at_risk.risk(self.bg, x, t_x, T, mean_value)

    def value(
        self,
        x: npt.ArrayLike,
        t_x: npt.ArrayLike,
        T: npt.ArrayLike,
        mean_value: npt.ArrayLike,
        horizon_months: int = 12,
        monthly_discount: float = 0.01,
    ) -> FloatArray:
        """Discounted expected spend over `horizon_months` months (see `clv`)."""
        return clv(self.bg, self.gg, x, t_x, T, mean_value, horizon_months, monthly_discount)

    def to_dict(self) -> dict[str, Any]:
        """JSON-safe mapping, tagged with `MODEL_FORMAT`; the fit records only when known."""
        data: dict[str, Any] = {
            "format": MODEL_FORMAT,
            "version": self.version,
            "as_of_day": self.as_of_day,
            "window_days": self.window_days,
            "bgnbd": self.bg.to_dict(),
            "gamma_gamma": self.gg.to_dict(),
            "at_risk": self.at_risk.to_dict(),
            "thresholds": self.thresholds.to_dict(),
        }
        fits = {k: v.to_dict() for k, v in (("bgnbd", self.bg_fit), ("gamma_gamma", self.gg_fit)) if v is not None}
        if fits:
            data["fits"] = fits
        if self.spend_check is not None:
            data["spend_check"] = self.spend_check.to_dict()
        if self.affinity is not None:
            data["affinity"] = self.affinity.to_dict()
        return data

    def with_affinity(self, affinity: Affinity | None) -> ValueModel:
        return replace(self, affinity=affinity)

    @classmethod
    def from_dict(cls, data: Any) -> ValueModel:
        """Inverse of `to_dict`, also of formats 1-3; raises ValueModelError on another format or a bad mapping."""
        if not isinstance(data, dict) or data.get("format") not in READABLE_FORMATS:
            raise ValueModelError(f"value model: expected a mapping with format {MODEL_FORMAT!r}")
        try:
            head = (str(data["version"]), int(data["as_of_day"]), int(data["window_days"]))
            parts = (data["bgnbd"], data["gamma_gamma"], data["at_risk"], data["thresholds"])
            fits, check = dict(data.get("fits", {})), data.get("spend_check")
            affinity = Affinity.from_dict(data["affinity"]) if "affinity" in data else None
        except (KeyError, TypeError, ValueError) as exc:
            raise ValueModelError(f"value model: malformed mapping: {exc!r}") from None
        return cls(
            *head,
            BgNbdParams.from_dict(parts[0]),
            GammaGammaParams.from_dict(parts[1]),
            AtRiskModel.from_dict(parts[2]),
            RfmThresholds.from_dict(parts[3]),
            FitChoice.from_dict(fits["bgnbd"]) if "bgnbd" in fits else None,
            FitChoice.from_dict(fits["gamma_gamma"]) if "gamma_gamma" in fits else None,
            SpendCheck.from_dict(check) if check is not None else None,
            affinity,
        )


def fit_value_model(
    transactions_by_customer: Mapping[Any, History] | PurchaseLog,
    as_of_day: int,
    horizon_days: int = 90,
    window_days: int = 365,
    version: str | None = None,
    l2: float | None = None,
    n_windows: int = DEFAULT_WINDOWS,
    step_days: int = DEFAULT_STEP_DAYS,
) -> ValueModel:
    """Fit every part on purchase days up to `as_of_day` (inclusive); later days are ignored.

    Input: per customer a list of (epoch day, amount) purchases, or their `purchase_log`. BG/NBD and
    Gamma-Gamma are the maximum-likelihood fits when their likelihoods have an
    interior maximum, else the limit or penalised fit chosen on held-out days
    (`fit_purchases`, `fit_spend`; recorded in `bg_fit`, `gg_fit`). The at-risk
    model is trained on cuts from `as_of_day - horizon_days` back (see
    `scoring.valuemodel.atrisk`); with less than twice `horizon_days` of
    history its label horizon is shortened (recorded in the model). `l2` None
    chooses the at-risk model's L2 strength by validation inside the history.
    Raises ValueModelError when a part cannot be fitted (NotEnoughHistoryError,
    saying how much is needed, when the history is too small).
    """
    log = log_of(transactions_by_customer)
    s = summarise(log, as_of_day)
    require_repeat_buyers(s)
    bg, bg_fit = fit_purchases(log, as_of_day)
    gg, gg_fit = fit_spend(log, as_of_day)
    at_risk = fit_at_risk(log, as_of_day, horizon_days, l2, n_windows, step_days)
    thresholds = window_thresholds(log, as_of_day, window_days)
    check = spend_check(s.x, s.mean_repeat_value)
    name = version or f"valuemodel-{as_of_day}"
    return ValueModel(name, as_of_day, window_days, bg, gg, at_risk, thresholds, bg_fit, gg_fit, check)


def window_thresholds(log: PurchaseLog, as_of_day: int, window_days: int) -> RfmThresholds:
    """Quintile R/F/M cut points over customers with a purchase day in (as_of - window, as_of].

    R: days since the last purchase day; F: purchase days in the window;
    M: spend in the window.
    """
    s = summarise(log, as_of_day)
    counts, spend = window_activity(log, as_of_day, window_days)
    active = counts[s.customer] > 0
    if not active.any():
        raise ValueModelError("thresholds need customers with purchases inside the window")
    return quantile_thresholds(s.recency[active], counts[s.customer][active], spend[s.customer][active])
