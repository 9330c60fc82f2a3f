"""Held-out evaluation of the at-risk model against two baselines.

Calibrate on purchase days up to `cal_end_day` (inclusive), then score who
makes no purchase day in (cal_end_day, cal_end_day + horizon_days]. The label
is 1 for "did not buy" (at risk came true). Methods compared:
- `model`: the at-risk model (`fit_at_risk`), with the value model's own
  BG/NBD (`fit_purchases`: the maximum-likelihood fit, or its limit or a
  penalised fit chosen on held-out days when the likelihood has no interior
  maximum);
- `one_minus_p_alive`: 1 - P(alive) of the BG/NBD fitted on the calibration
  period as lifetimes would need to fit it (`fit_bgnbd_as_lifetimes`:
  unpenalised when that has an interior maximum, else with the smallest
  `penalizer_coef` lifetimes converges with; recorded in `baseline_penalizer`);
- `recency_days`: plain days since the last purchase day.
Segments: `repeat` (x > 0 at calibration end), `repeat_top_value_third`
(the third of repeat buyers with the highest calibration spend, ties by
input order) and `all` (every customer with a purchase by calibration end;
1 - P(alive) is 0 for all one-time buyers there). A segment in which every
customer bought again, or none did, has nothing to rank and is left out.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import asdict, dataclass, field
from typing import Any

import numpy as np

from scoring.valuemodel.arrays import BoolArray, FloatArray
from scoring.valuemodel.atrisk import DEFAULT_STEP_DAYS, DEFAULT_WINDOWS, fit_at_risk
from scoring.valuemodel.bgnbd import p_alive
from scoring.valuemodel.bootstrap import paired_intervals
from scoring.valuemodel.choice import FitChoice
from scoring.valuemodel.errors import ValueModelError
from scoring.valuemodel.metrics import precision_at_top, roc_auc
from scoring.valuemodel.penalised import fit_bgnbd_as_lifetimes
from scoring.valuemodel.purchasefit import fit_purchases, require_repeat_buyers
from scoring.valuemodel.segments import segments
from scoring.valuemodel.summary import History, PurchaseLog, bought_between, log_of, summarise

METHODS = ("model", "one_minus_p_alive", "recency_days")
BASELINES = METHODS[1:]
# segment -> baseline -> metric -> (low, high) of model - baseline
Intervals = dict[str, dict[str, dict[str, tuple[float, float]]]]


@dataclass(frozen=True)
class Score:
    """Ranking quality of one method on one segment; `positives` = customers who did not buy."""

    roc_auc: float
    precision_at_20: float
    customers: int
    positives: int


@dataclass(frozen=True)
class Evaluation:
    """Scores by segment, then by method (see module docstring).

    `label_horizon_days` is the horizon the at-risk model was trained on:
    `horizon_days`, or shorter when the calibration period is too short for
    training windows of the full holdout length; `l2` the strength it chose.
    `model_fit` says how the model's BG/NBD was fitted; `baseline_penalizer`
    is the lifetimes `penalizer_coef` the 1 - P(alive) baseline needed (0:
    none). `intervals` holds the paired bootstrap 95 % intervals of model -
    baseline (`bootstrap_rounds` resamples of customers; empty with 0).
    """

    cal_end_day: int
    horizon_days: int
    scores: dict[str, dict[str, Score]]
    label_horizon_days: int = 0
    l2: float = 0.0
    model_fit: FitChoice | None = None
    baseline_penalizer: float = 0.0
    bootstrap_rounds: int = 0
    intervals: Intervals = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        """JSON-safe mapping (intervals as [low, high] lists)."""
        return asdict(self)


def evaluate(
    transactions_by_customer: Mapping[Any, History] | PurchaseLog,
    cal_end_day: int,
    horizon_days: int | None = None,
    l2: float | None = None,
    n_windows: int = DEFAULT_WINDOWS,
    step_days: int = DEFAULT_STEP_DAYS,
    bootstrap_rounds: int = 0,
    seed: int = 0,
) -> Evaluation:
    """Evaluate on per-customer sorted (epoch day, amount) purchase lists, or their `purchase_log`.

    `horizon_days` defaults to the days from `cal_end_day` to the last
    purchase day in the data. The at-risk model's own training labels come
    from inside the calibration period (see `scoring.valuemodel.atrisk`).
    `bootstrap_rounds` > 0 adds paired bootstrap intervals (seeded by `seed`).
    Raises ValueModelError (NotEnoughHistoryError saying how much is needed) when
    the history cannot be evaluated.
    """
    log = log_of(transactions_by_customer)
    horizon = _horizon(log, cal_end_day, horizon_days)
    s = summarise(log, cal_end_day)
    require_repeat_buyers(s, "evaluate")
    lapsed = ~bought_between(log, cal_end_day, cal_end_day + horizon)[s.customer]
    model = fit_at_risk(log, cal_end_day, horizon, l2, n_windows, step_days)
    bg, model_fit = fit_purchases(log, cal_end_day)
    try:
        baseline, penalizer = fit_bgnbd_as_lifetimes(s.x, s.t_x, s.T)
    except ValueModelError as exc:
        repeat = int(np.count_nonzero(s.x > 0))
        raise ValueModelError(
            f"the 1 - P(alive) baseline cannot be fitted: {exc}; this history is likely too small for it "
            f"({s.x.size:,} customers, {repeat:,} with a repeat purchase): evaluate one with more repeat buyers"
        ) from None
    risk = {
        "model": model.risk(bg, s.x, s.t_x, s.T, s.mean_repeat_value),
        "one_minus_p_alive": 1.0 - p_alive(baseline, s.x, s.t_x, s.T),
        "recency_days": s.recency,
    }
    masks = {name: mask for name, mask in segments(s).items() if _rankable(lapsed[mask])}
    if not masks:
        raise ValueModelError(
            f"nothing to rank: in the {horizon} days after the calibration end "
            f"{'no customer' if lapsed.all() else 'every customer'} bought again"
        )
    scores = {name: {m: _score(lapsed[mask], risk[m][mask]) for m in METHODS} for name, mask in masks.items()}
    intervals = _intervals(lapsed, risk, masks, bootstrap_rounds, seed) if bootstrap_rounds > 0 else {}
    return Evaluation(
        cal_end_day, horizon, scores, model.horizon_days, model.l2, model_fit, penalizer, bootstrap_rounds, intervals
    )


def _horizon(log: PurchaseLog, cal_end_day: int, horizon_days: int | None) -> int:
    horizon = int(log.day.max()) - cal_end_day if horizon_days is None and log.day.size else horizon_days
    if horizon is None or horizon <= 0:
        raise ValueModelError("evaluate needs purchase days after cal_end_day or horizon_days > 0")
    return horizon


def _intervals(
    lapsed: BoolArray, risk: dict[str, FloatArray], masks: dict[str, BoolArray], rounds: int, seed: int
) -> Intervals:
    return {
        name: paired_intervals(lapsed[mask], {m: risk[m][mask] for m in METHODS}, "model", rounds, seed)
        for name, mask in masks.items()
    }


def _rankable(labels: BoolArray) -> bool:
    """Both outcomes occur (else the segment is left out of the scores)."""
    return bool(labels.any() and not labels.all())


_segments = segments  # the name the tests used before segments had a module


def _score(labels: BoolArray, scores: FloatArray) -> Score:
    return Score(roc_auc(labels, scores), precision_at_top(labels, scores, 0.2), int(labels.size), int(labels.sum()))
