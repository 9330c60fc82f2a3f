"""At-risk model: P(no purchase day in the next `horizon_days` days).

Trained without looking past the calibration end. Training examples come from
`n_windows` cut-offs inside the calibration period: the latest at
`cal_end - horizon_days`, the others `step_days` apart before it. At each
cut-off the features are built from the history up to it (BG/NBD refitted
there) and the label is "no purchase day in the next `horizon_days` days",
days which all lie inside the calibration period. The windows are stacked
into one logistic regression: more examples, and a model that has seen
customers at several ages and recencies. An earlier cut-off with too little
history to fit the BG/NBD is left out; the latest one must fit.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
import numpy.typing as npt

from scoring.valuemodel.arrays import FloatArray
from scoring.valuemodel.bgnbd import BgNbdParams, fit_bgnbd
from scoring.valuemodel.errors import ValueModelError
from scoring.valuemodel.features import FEATURE_NAMES, KNOWN_FEATURE_SETS, at_risk_features
from scoring.valuemodel.logistic import fit_logistic, predict_logistic
from scoring.valuemodel.mapping import floats
from scoring.valuemodel.summary import PurchaseLog, bought_between, summarise

DEFAULT_L2 = 0.1
DEFAULT_WINDOWS = 3
DEFAULT_STEP_DAYS = 30


@dataclass(frozen=True)
class AtRiskModel:
    """Standardised logistic regression over `feature_names` (one of the known feature sets).

    `weights` is [intercept, one coefficient per feature] on features
    standardised with `center` and `scale`; `horizon_days` is the period the
    risk refers to, and features must be built with the same horizon.
    `windows` and `step_days` record how it was trained (0 when unknown).
    """

    horizon_days: int
    center: tuple[float, ...]
    scale: tuple[float, ...]
    weights: tuple[float, ...]
    feature_names: tuple[str, ...] = FEATURE_NAMES
    l2: float = DEFAULT_L2
    windows: int = 0
    step_days: int = 0

    def predict(self, features: FloatArray) -> FloatArray:
        """Risk in [0, 1] per row of `features` (customers x feature_names)."""
        z = (features - np.asarray(self.center)) / np.asarray(self.scale)
        return predict_logistic(np.asarray(self.weights), z)

    def risk(
        self, bg: BgNbdParams, x: npt.ArrayLike, t_x: npt.ArrayLike, T: npt.ArrayLike, mean_value: npt.ArrayLike
    ) -> FloatArray:
        """Risk of customers given their summaries (days) and the BG/NBD fitted with them."""
        return self.predict(at_risk_features(bg, x, t_x, T, mean_value, self.horizon_days, self.feature_names))

    def to_dict(self) -> dict[str, Any]:
        """JSON-safe mapping of the model."""
        return {
            "horizon_days": self.horizon_days,
            "feature_names": list(self.feature_names),
            "center": list(self.center),
            "scale": list(self.scale),
            "weights": list(self.weights),
            "l2": self.l2,
            "windows": self.windows,
            "step_days": self.step_days,
        }

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> AtRiskModel:
        """Inverse of `to_dict`; raises ValueModelError on a malformed or incompatible mapping.

        `l2`, `windows` and `step_days` are optional (format 1 had none).
        """
        try:
            names = tuple(str(n) for n in data["feature_names"])
            model = cls(
                int(data["horizon_days"]),
                floats(data["center"]),
                floats(data["scale"]),
                floats(data["weights"]),
                names,
                float(data.get("l2", DEFAULT_L2)),
                int(data.get("windows", 0)),
                int(data.get("step_days", 0)),
            )
        except (AttributeError, KeyError, TypeError, ValueError) as exc:
            raise ValueModelError(f"at-risk model: malformed mapping: {exc}") from None
        _check_shape(model)
        return model


def _check_shape(model: AtRiskModel) -> None:
    if model.feature_names not in KNOWN_FEATURE_SETS:
        raise ValueModelError(f"at-risk model: unknown feature set {model.feature_names}")
    n = len(model.feature_names)
    if (len(model.center), len(model.scale), len(model.weights)) != (n, n, n + 1):
        raise ValueModelError("at-risk model: center, scale and weights do not match the features")
    if min(model.scale) <= 0 or model.horizon_days <= 0:
        raise ValueModelError("at-risk model: scale and horizon_days must be > 0")


def window_cuts(cal_end_day: int, horizon_days: int, n_windows: int, step_days: int) -> list[int]:
    """The training cut-offs, latest first: cal_end - horizon - k step for k < n_windows."""
    if horizon_days <= 0 or n_windows < 1 or step_days < 1:
        raise ValueModelError("horizon_days, n_windows and step_days must be > 0")
    return [cal_end_day - horizon_days - k * step_days for k in range(n_windows)]


def training_set(
    log: PurchaseLog,
    cal_end_day: int,
    horizon_days: int,
    n_windows: int = DEFAULT_WINDOWS,
    step_days: int = DEFAULT_STEP_DAYS,
    names: tuple[str, ...] = FEATURE_NAMES,
) -> tuple[FloatArray, FloatArray, int]:
    """Stacked features and labels (1 = no purchase day in the following horizon); and the windows used."""
    blocks: list[tuple[FloatArray, FloatArray]] = []
    for k, cut in enumerate(window_cuts(cal_end_day, horizon_days, n_windows, step_days)):
        try:
            blocks.append(_window(log, cut, horizon_days, names))
        except ValueModelError:
            if k == 0:
                raise
            break  # an earlier cut-off has even less history
    return np.vstack([b[0] for b in blocks]), np.concatenate([b[1] for b in blocks]), len(blocks)


def _window(log: PurchaseLog, cut_day: int, horizon_days: int, names: tuple[str, ...]) -> tuple[FloatArray, FloatArray]:
    s = summarise(log, cut_day)
    bg = fit_bgnbd(s.x, s.t_x, s.T)
    features = at_risk_features(bg, s.x, s.t_x, s.T, s.mean_repeat_value, horizon_days, names)
    lapsed = ~bought_between(log, cut_day, cut_day + horizon_days)[s.customer]
    return features, lapsed.astype(np.float64)


def fit_at_risk(
    log: PurchaseLog,
    cal_end_day: int,
    horizon_days: int,
    l2: float = DEFAULT_L2,
    n_windows: int = DEFAULT_WINDOWS,
    step_days: int = DEFAULT_STEP_DAYS,
) -> AtRiskModel:
    """Fit the at-risk model using only purchase days on or before `cal_end_day`."""
    X, y, used = training_set(log, cal_end_day, horizon_days, n_windows, step_days)
    center, scale = X.mean(axis=0), X.std(axis=0)
    scale = np.where(scale > 0, scale, 1.0)
    weights = fit_logistic((X - center) / scale, y, l2)
    return AtRiskModel(horizon_days, floats(center), floats(scale), floats(weights), FEATURE_NAMES, l2, used, step_days)
