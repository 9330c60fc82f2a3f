"""At-risk model: P(no purchase day in the next `horizon_days` days).

Trained without looking past the calibration end. Training examples come from
`n_windows` cut-offs inside the calibration period: the latest at
`cal_end - horizon_days`, the others `step_days` apart before it. At each
cut-off the features are built from the history up to it (BG/NBD refitted
there) and the label is "no purchase day in the next `horizon_days` days",
days which all lie inside the calibration period. The windows are stacked
into one logistic regression: more examples, and a model that has seen
customers at several ages and recencies.

The label horizon is the requested one when the history allows it, else
shorter (`label_horizon`): the latest cut-off keeps at least as much history
before it as the horizon after it. Every cut-off needs
min(horizon, `MIN_WINDOW_HISTORY`) days of history and enough repeat buyers
for the BG/NBD, which is fitted there as the value model fits it
(`purchasefit.fit_purchases`: where its likelihood has no interior maximum,
the NBD limit or a penalised fit, so the model never depends on the BG/NBD
converging); earlier ones that do not are left out, the latest one must.

Coefficients are kept to the sign of each feature's move while a customer
stays silent (`SILENCE_DIRECTION`), so the risk never falls without a
purchase. The L2 strength is chosen inside the calibration period: with two
or more windows, each candidate is fitted on the earlier windows and scored
on the latest one (ROC AUC and precision at the top 20 %, repeat buyers and
their top-value third, as `scoring.valuemodel.evaluate` judges); the best is
refitted on all windows.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
import numpy.typing as npt

from scoring.valuemodel.arrays import FloatArray
from scoring.valuemodel.bgnbd import BgNbdParams
from scoring.valuemodel.errors import ValueModelError
from scoring.valuemodel.features import FEATURE_NAMES, KNOWN_FEATURE_SETS, SILENCE_DIRECTION, at_risk_features
from scoring.valuemodel.logistic import fit_logistic, predict_logistic
from scoring.valuemodel.mapping import floats
from scoring.valuemodel.metrics import precision_at_top, roc_auc
from scoring.valuemodel.purchasefit import fit_purchases
from scoring.valuemodel.segments import segments
from scoring.valuemodel.summary import PurchaseLog, bought_between, summarise

DEFAULT_L2 = 0.1
L2_CANDIDATES = (0.01, 0.1, 1.0)
DEFAULT_WINDOWS = 3
DEFAULT_STEP_DAYS = 30
MIN_WINDOW_HISTORY = 90  # days of history before a training cut-off (less when the horizon is shorter)


@dataclass(frozen=True)
class AtRiskModel:
    """Standardised logistic regression over `feature_names` (one of the known feature sets).

    `weights` is [intercept, one coefficient per feature] on features
    standardised with `center` and `scale`; `horizon_days` is the period the
    risk refers to, and features must be built with the same horizon.
    `windows` and `step_days` record how it was trained (0 when unknown);
    `requested_horizon_days` is the horizon asked for when the history was
    too short for it and `horizon_days` had to be shorter (0 otherwise).
    """

    horizon_days: int
    center: tuple[float, ...]
    scale: tuple[float, ...]
    weights: tuple[float, ...]
    feature_names: tuple[str, ...] = FEATURE_NAMES
    l2: float = DEFAULT_L2
    windows: int = 0
    step_days: int = 0
    requested_horizon_days: int = 0

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
            "requested_horizon_days": self.requested_horizon_days,
        }

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> AtRiskModel:
        """Inverse of `to_dict`; raises ValueModelError on a malformed or incompatible mapping.

        `l2`, `windows`, `step_days` (format 1 had none) and
        `requested_horizon_days` (new in format 3) are optional.
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
                int(data.get("requested_horizon_days", 0)),
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
    if min(model.scale) <= 0 or model.horizon_days <= 0 or model.requested_horizon_days < 0:
        raise ValueModelError("at-risk model: scale and horizon_days must be > 0")


def label_horizon(log: PurchaseLog, cal_end_day: int, horizon_days: int) -> int:
    """The horizon the training labels can use: `horizon_days`, or less when the history is short.

    At most half the days from the first purchase day to `cal_end_day`, so the
    latest cut-off has at least as much history before it as label days after
    it. Raises ValueModelError when that leaves less than one day.
    """
    if horizon_days <= 0:
        raise ValueModelError("horizon_days must be > 0")
    span = cal_end_day - int(log.day.min()) if log.day.size else 0
    horizon = min(horizon_days, span // 2)
    if horizon < 1:
        raise ValueModelError(
            f"the at-risk model needs at least 2 days from the first purchase to the calibration end; "
            f"this history has {max(span, 0)}"
        )
    return horizon


def window_cuts(
    cal_end_day: int, horizon_days: int, n_windows: int, step_days: int, first_day: int | None = None
) -> list[int]:
    """The training cut-offs, latest first: cal_end - horizon - k step for k < n_windows.

    With `first_day` (the first purchase day), only cut-offs with at least
    min(horizon, MIN_WINDOW_HISTORY) days of history after it.
    """
    if horizon_days <= 0 or n_windows < 1 or step_days < 1:
        raise ValueModelError("horizon_days, n_windows and step_days must be > 0")
    cuts = [cal_end_day - horizon_days - k * step_days for k in range(n_windows)]
    if first_day is None:
        return cuts
    need = min(horizon_days, MIN_WINDOW_HISTORY)
    return [c for c in cuts if c - first_day >= need] or cuts[:1]


@dataclass(frozen=True)
class _Window:
    features: FloatArray
    lapsed: FloatArray
    masks: dict[str, npt.NDArray[np.bool_]]


def _windows(log: PurchaseLog, cuts: list[int], horizon_days: int, names: tuple[str, ...]) -> list[_Window]:
    windows: list[_Window] = []
    for k, cut in enumerate(cuts):
        try:
            windows.append(_window(log, cut, horizon_days, names))
        except ValueModelError as exc:
            if k == 0:
                raise ValueModelError(
                    f"the at-risk model learns from the history up to {horizon_days} days before the calibration "
                    f"end, and there {exc}"
                ) from None
            break  # an earlier cut-off has even less history
    return windows


def training_set(
    log: PurchaseLog,
    cal_end_day: int,
    horizon_days: int,
    n_windows: int = DEFAULT_WINDOWS,
    step_days: int = DEFAULT_STEP_DAYS,
    names: tuple[str, ...] = FEATURE_NAMES,
) -> tuple[FloatArray, FloatArray, int]:
    """Stacked features and labels (1 = no purchase day in the following horizon); and the windows used.

    `horizon_days` is the label horizon itself (see `label_horizon`).
    """
    first = int(log.day.min()) if log.day.size else None
    windows = _windows(log, window_cuts(cal_end_day, horizon_days, n_windows, step_days, first), horizon_days, names)
    X, y = _stack(windows)
    return X, y, len(windows)


def _stack(windows: list[_Window]) -> tuple[FloatArray, FloatArray]:
    return np.vstack([w.features for w in windows]), np.concatenate([w.lapsed for w in windows])


def _window(log: PurchaseLog, cut_day: int, horizon_days: int, names: tuple[str, ...]) -> _Window:
    s = summarise(log, cut_day)
    bg, _ = fit_purchases(log, cut_day)  # never the raw MLE: a boundary fit is a result, not a failure
    features = at_risk_features(bg, s.x, s.t_x, s.T, s.mean_repeat_value, horizon_days, names)
    lapsed = ~bought_between(log, cut_day, cut_day + horizon_days)[s.customer]
    return _Window(features, lapsed.astype(np.float64), segments(s))


@dataclass(frozen=True)
class _Fit:
    center: FloatArray
    scale: FloatArray
    weights: FloatArray

    def predict(self, features: FloatArray) -> FloatArray:
        return predict_logistic(self.weights, (features - self.center) / self.scale)


def _fit(windows: list[_Window], l2: float, names: tuple[str, ...]) -> _Fit:
    X, y = _stack(windows)
    center, scale = X.mean(axis=0), X.std(axis=0)
    scale = np.where(scale > 0, scale, 1.0)
    weights = fit_logistic((X - center) / scale, y, l2, [SILENCE_DIRECTION[n] for n in names])
    return _Fit(center, scale, weights)


def validation_score(window: _Window, risk: FloatArray) -> float:
    """Mean of ROC AUC and precision at the top 20 % over repeat buyers and their top-value third."""
    scores = []
    for name in ("repeat", "repeat_top_value_third"):
        mask = window.masks[name]
        labels = window.lapsed[mask] > 0
        if labels.all() or not labels.any():
            return float("nan")  # nothing to rank: the candidates cannot be told apart
        scores += [roc_auc(labels, risk[mask]), precision_at_top(labels, risk[mask], 0.2)]
    return float(np.mean(scores))


def select_l2(windows: list[_Window], names: tuple[str, ...], candidates: tuple[float, ...] = L2_CANDIDATES) -> float:
    """The candidate that ranks the latest window best when fitted on the earlier ones.

    `DEFAULT_L2` with fewer than two windows, or when the latest window cannot
    tell the candidates apart (scores equal to 4 decimals prefer it too).
    """
    if len(windows) < 2:
        return DEFAULT_L2
    scored = {}
    for l2 in candidates:
        try:
            fit = _fit(windows[1:], l2, names)
        except ValueModelError:
            return DEFAULT_L2
        scored[l2] = validation_score(windows[0], fit.predict(windows[0].features))
    if any(np.isnan(v) for v in scored.values()):
        return DEFAULT_L2
    return max(candidates, key=lambda l2: (round(scored[l2], 4), l2 == DEFAULT_L2))


def bgnbd_only(fit: _Fit, names: tuple[str, ...]) -> _Fit:
    """The model that is BG/NBD's own P(no purchase in the horizon): all weight on its log-odds.

    On standardised features, logit = center + scale * z, so intercept `center` and
    coefficient `scale` give back the probability itself (kept within `LOGIT_EPS`).
    """
    k = names.index("logit_no_purchase")
    weights = np.zeros(len(names) + 1)
    weights[0], weights[k + 1] = fit.center[k], fit.scale[k]
    return _Fit(fit.center, fit.scale, weights)


def prefers_bgnbd(windows: list[_Window], names: tuple[str, ...], l2: float) -> bool:
    """Whether BG/NBD's own P(no purchase) ranks the latest window better than the logistic model
    fitted with `l2` on the earlier ones (as for `select_l2`; on data that follow the BG/NBD story
    the extra features only add noise). False with fewer than two windows or on a tie."""
    if len(windows) < 2 or "logit_no_purchase" not in names:
        return False
    try:
        fit = _fit(windows[1:], l2, names)
    except ValueModelError:
        return False
    latest = windows[0]
    logistic = validation_score(latest, fit.predict(latest.features))
    bgnbd = validation_score(latest, bgnbd_only(fit, names).predict(latest.features))
    return not np.isnan(logistic) and not np.isnan(bgnbd) and round(bgnbd, 4) > round(logistic, 4)


def fit_at_risk(
    log: PurchaseLog,
    cal_end_day: int,
    horizon_days: int,
    l2: float | None = None,
    n_windows: int = DEFAULT_WINDOWS,
    step_days: int = DEFAULT_STEP_DAYS,
) -> AtRiskModel:
    """Fit the at-risk model using only purchase days on or before `cal_end_day`.

    `l2` None chooses it by validation inside the calibration period (`select_l2`),
    and with it whether the logistic layer earns its place over BG/NBD's own
    P(no purchase) (`prefers_bgnbd`; then `l2` is recorded as 0 and the weights
    pass that probability through).
    """
    horizon = label_horizon(log, cal_end_day, horizon_days)
    first = int(log.day.min())
    cuts = window_cuts(cal_end_day, horizon, n_windows, step_days, first)
    windows = _windows(log, cuts, horizon, FEATURE_NAMES)
    lapsed = _stack(windows)[1]
    if lapsed.min() == lapsed.max():
        raise ValueModelError(
            f"the at-risk model needs customers who bought and customers who did not in the {horizon} days after "
            f"its training cut-offs; in this history {'none' if lapsed.min() else 'all'} of them did"
        )
    chosen = select_l2(windows, FEATURE_NAMES) if l2 is None else l2
    fit = _fit(windows, chosen, FEATURE_NAMES)
    if l2 is None and prefers_bgnbd(windows, FEATURE_NAMES, chosen):
        fit, chosen = bgnbd_only(fit, FEATURE_NAMES), 0.0
    return AtRiskModel(
        horizon,
        floats(fit.center),
        floats(fit.scale),
        floats(fit.weights),
        FEATURE_NAMES,
        chosen,
        len(windows),
        step_days,
        horizon_days if horizon != horizon_days else 0,
    )
