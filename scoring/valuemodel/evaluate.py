"""Held-out evaluation of the at-risk model against two baselines.

Calibrate on purchase days up to `cal_end_day` (inclusive), then score who
makes no purchase day in (cal_end_day, cal_end_day + horizon_days]. The label
is 1 for "did not buy" (at risk came true). Methods compared:
- `model`: the at-risk model (`fit_at_risk`);
- `one_minus_p_alive`: 1 - BG/NBD P(alive) fitted on the calibration period;
- `recency_days`: plain days since the last purchase day.
Segments: `repeat` (x > 0 at calibration end), `repeat_top_value_third`
(the third of repeat buyers with the highest calibration spend, ties by
input order) and `all` (every customer with a purchase by calibration end;
1 - P(alive) is 0 for all one-time buyers there).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import asdict, dataclass
from typing import Any

from scoring.valuemodel.arrays import BoolArray, FloatArray
from scoring.valuemodel.atrisk import DEFAULT_STEP_DAYS, DEFAULT_WINDOWS, AtRiskModel, fit_at_risk
from scoring.valuemodel.bgnbd import fit_bgnbd, p_alive
from scoring.valuemodel.errors import ValueModelError
from scoring.valuemodel.metrics import precision_at_top, roc_auc
from scoring.valuemodel.segments import segments
from scoring.valuemodel.summary import History, PurchaseLog, Summary, bought_between, purchase_log, summarise

METHODS = ("model", "one_minus_p_alive", "recency_days")


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
    """

    cal_end_day: int
    horizon_days: int
    scores: dict[str, dict[str, Score]]
    label_horizon_days: int = 0
    l2: float = 0.0

    def to_dict(self) -> dict[str, Any]:
        """JSON-safe mapping."""
        return asdict(self)


def evaluate(
    transactions_by_customer: Mapping[Any, History],
    cal_end_day: int,
    horizon_days: int | None = None,
    l2: float | None = None,
    n_windows: int = DEFAULT_WINDOWS,
    step_days: int = DEFAULT_STEP_DAYS,
) -> Evaluation:
    """Evaluate on per-customer sorted (epoch day, amount) purchase lists.

    `horizon_days` defaults to the days from `cal_end_day` to the last
    purchase day in the data. The at-risk model's own training labels come
    from inside the calibration period (see `scoring.valuemodel.atrisk`).
    """
    log = purchase_log(list(transactions_by_customer.values()))
    horizon = _horizon(log, cal_end_day, horizon_days)
    s = summarise(log, cal_end_day)
    lapsed = ~bought_between(log, cal_end_day, cal_end_day + horizon)[s.customer]
    model = fit_at_risk(log, cal_end_day, horizon, l2, n_windows, step_days)
    risk = _method_scores(model, s)
    masks = segments(s)
    scores = {name: {m: _score(lapsed[mask], risk[m][mask]) for m in METHODS} for name, mask in masks.items()}
    return Evaluation(cal_end_day, horizon, scores, model.horizon_days, model.l2)


def _horizon(log: PurchaseLog, cal_end_day: int, horizon_days: int | None) -> int:
    horizon = int(log.day.max()) - cal_end_day if horizon_days is None and log.day.size else horizon_days
    if horizon is None or horizon <= 0:
        raise ValueModelError("evaluate needs purchase days after cal_end_day or horizon_days > 0")
    return horizon


def _method_scores(model: AtRiskModel, s: Summary) -> dict[str, FloatArray]:
    bg = fit_bgnbd(s.x, s.t_x, s.T)
    return {
        "model": model.risk(bg, s.x, s.t_x, s.T, s.mean_repeat_value),
        "one_minus_p_alive": 1.0 - p_alive(bg, s.x, s.t_x, s.T),
        "recency_days": s.recency,
    }


_segments = segments  # the name the tests used before segments had a module


def _score(labels: BoolArray, scores: FloatArray) -> Score:
    return Score(roc_auc(labels, scores), precision_at_top(labels, scores, 0.2), int(labels.size), int(labels.sum()))
