"""At-risk model: P(no purchase day in the next `horizon_days` days).

Trained without looking past the calibration end: the calibration period is
cut at `cal_end - horizon_days` (and, with more windows, at earlier cut-offs
`step_days` apart); features are built at each cut-off from the history up to
it (BG/NBD refitted there) and the label is "no purchase day in the next
`horizon_days` days", which all lie inside the calibration period.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from scoring.valuemodel.arrays import FloatArray
from scoring.valuemodel.bgnbd import fit_bgnbd
from scoring.valuemodel.errors import ValueModelError
from scoring.valuemodel.features import FEATURE_NAMES, at_risk_features
from scoring.valuemodel.logistic import fit_logistic, predict_logistic
from scoring.valuemodel.mapping import floats
from scoring.valuemodel.summary import PurchaseLog, bought_between, summarise


@dataclass(frozen=True)
class AtRiskModel:
    """Standardised logistic regression over `FEATURE_NAMES`.

    `weights` is [intercept, one coefficient per feature] on features
    standardised with `center` and `scale`; `horizon_days` is the period the
    risk refers to, and features must be built with the same horizon.
    """

    horizon_days: int
    center: tuple[float, ...]
    scale: tuple[float, ...]
    weights: tuple[float, ...]
    feature_names: tuple[str, ...] = FEATURE_NAMES

    def predict(self, features: FloatArray) -> FloatArray:
        """Risk in [0, 1] per row of `features` (customers x feature_names)."""
        z = (features - np.asarray(self.center)) / np.asarray(self.scale)
        return predict_logistic(np.asarray(self.weights), z)

    def to_dict(self) -> dict[str, Any]:
        """JSON-safe mapping of the model."""
        return {
            "horizon_days": self.horizon_days,
            "feature_names": list(self.feature_names),
            "center": list(self.center),
            "scale": list(self.scale),
            "weights": list(self.weights),
        }

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> AtRiskModel:
        """Inverse of `to_dict`; raises ValueModelError on a malformed or incompatible mapping."""
        try:
            names = tuple(str(n) for n in data["feature_names"])
            model = cls(
                int(data["horizon_days"]), floats(data["center"]), floats(data["scale"]), floats(data["weights"]), names
            )
        except (KeyError, TypeError, ValueError) as exc:
            raise ValueModelError(f"at-risk model: malformed mapping: {exc}") from None
        _check_shape(model)
        return model


def _check_shape(model: AtRiskModel) -> None:
    if model.feature_names != FEATURE_NAMES:
        raise ValueModelError(f"at-risk model: features {model.feature_names} are not {FEATURE_NAMES}")
    n = len(FEATURE_NAMES)
    if (len(model.center), len(model.scale), len(model.weights)) != (n, n, n + 1):
        raise ValueModelError("at-risk model: center, scale and weights do not match the features")
    if min(model.scale) <= 0 or model.horizon_days <= 0:
        raise ValueModelError("at-risk model: scale and horizon_days must be > 0")


def training_set(
    log: PurchaseLog, cal_end_day: int, horizon_days: int, n_windows: int = 1, step_days: int = 30
) -> tuple[FloatArray, FloatArray]:
    """Features at each cut-off and labels (1 = no purchase day in the following horizon)."""
    blocks = [_window(log, cal_end_day - horizon_days - k * step_days, horizon_days) for k in range(n_windows)]
    return np.vstack([b[0] for b in blocks]), np.concatenate([b[1] for b in blocks])


def _window(log: PurchaseLog, cut_day: int, horizon_days: int) -> tuple[FloatArray, FloatArray]:
    s = summarise(log, cut_day)
    bg = fit_bgnbd(s.x, s.t_x, s.T)
    features = at_risk_features(bg, s.x, s.t_x, s.T, s.mean_repeat_value, horizon_days)
    lapsed = ~bought_between(log, cut_day, cut_day + horizon_days)[s.customer]
    return features, lapsed.astype(np.float64)


def fit_at_risk(
    log: PurchaseLog, cal_end_day: int, horizon_days: int, l2: float = 0.1, n_windows: int = 1, step_days: int = 30
) -> AtRiskModel:
    """Fit the at-risk model using only purchase days on or before `cal_end_day`."""
    if horizon_days <= 0:
        raise ValueModelError("horizon_days must be > 0")
    X, y = training_set(log, cal_end_day, horizon_days, n_windows, step_days)
    center, scale = X.mean(axis=0), X.std(axis=0)
    scale = np.where(scale > 0, scale, 1.0)
    weights = fit_logistic((X - center) / scale, y, l2)
    return AtRiskModel(horizon_days, floats(center), floats(scale), floats(weights))
