"""The BG/NBD fit the value model uses: the maximum-likelihood fit, or a choice made on held-out data.

When the unpenalised likelihood has an interior maximum, that is the fit
(and equals lifetimes'). When it runs to the edge of the parameter space (a
wholesaler's or subscription log: nobody is seen to drop out, a -> 0) there
is no such maximum, and the candidates are
- the limit the likelihood runs to when it is the no-drop-out direction: the
  NBD (`BgNbdParams.nbd`, P(alive) = 1), fitted by maximum likelihood;
- the BG/NBD penalised by a ridge on its log-parameters (`fit_bgnbd_ridge`),
  at each strength of `RIDGE_STRENGTHS`.
Each candidate is fitted on the history up to `end_day - heldout_days` and
scored by the log-likelihood of every customer's number of purchase days in
the remaining `heldout_days` (`log_p_purchase_days`); the best is refitted
on the whole history. Nothing after `end_day` is looked at. Without room for
such a check (a short history) the NBD is taken when it reaches the
boundary's likelihood, else the weakest penalty that fits.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from functools import partial

import numpy as np

from scoring.valuemodel.arrays import FloatArray
from scoring.valuemodel.bgnbd import (
    LIMIT_TOLERANCE,
    BgNbdParams,
    fit_bgnbd,
    fit_nbd,
    log_likelihood,
    log_p_purchase_days,
)
from scoring.valuemodel.choice import MLE, FitChoice
from scoring.valuemodel.errors import ValueModelError
from scoring.valuemodel.optimize import AtBoundaryError
from scoring.valuemodel.penalised import fit_bgnbd_ridge
from scoring.valuemodel.summary import PurchaseLog, Summary, summarise

RIDGE_STRENGTHS = (1e-4, 1e-3, 1e-2, 1e-1)
SELECTION_DAYS = 90  # held-out days at the end of the history that choose among the candidates
# Repeat buyers (a purchase on a second day) the BG/NBD needs to be fitted at all.
MIN_REPEAT_CUSTOMERS = 10

Fitter = Callable[[Summary], BgNbdParams]


class NotEnoughHistoryError(ValueModelError):
    """The history is too small for a fit; the message says how much is needed."""


def require_repeat_buyers(s: Summary, what: str = "fit") -> None:
    """Raise NotEnoughHistoryError unless `s` has `MIN_REPEAT_CUSTOMERS` customers with a repeat purchase day."""
    repeat = int(np.count_nonzero(s.x > 0))
    if repeat < MIN_REPEAT_CUSTOMERS:
        raise NotEnoughHistoryError(
            f"{what} needs at least {MIN_REPEAT_CUSTOMERS} customers with a repeat purchase (a purchase on a "
            f"second day); this history has {repeat} (of {s.x.size} customers)"
        )


def fit_purchases(log: PurchaseLog, end_day: int, heldout_days: int = SELECTION_DAYS) -> tuple[BgNbdParams, FitChoice]:
    """The BG/NBD (or its NBD limit) for purchase days up to `end_day`, and how it was chosen.

    Raises NotEnoughHistoryError when fewer than `MIN_REPEAT_CUSTOMERS` customers
    have a repeat purchase day by `end_day`, ValueModelError when no candidate fits.
    """
    s = summarise(log, end_day)
    require_repeat_buyers(s, "the BG/NBD")
    try:
        return fit_bgnbd(s.x, s.t_x, s.T), MLE
    except AtBoundaryError as exc:
        boundary = str(exc).removeprefix("no interior maximum: ")
    except ValueModelError:
        boundary = "the unpenalised search did not converge"
    candidates = _candidates()
    scores, days = _heldout_scores(log, end_day, heldout_days, candidates)
    order = sorted(scores, key=lambda name: -scores[name]) if scores else _fallback_order(s, candidates)
    for name in order:
        try:
            params = candidates[name](s)
        except ValueModelError:
            continue
        return params, _choice(name, boundary, days, scores)
    raise ValueModelError(
        f"the purchase model cannot be fitted: no interior maximum ({boundary}) and no candidate fits"
    )


def _candidates() -> dict[str, Fitter]:
    found: dict[str, Fitter] = {"nbd_limit": _fit_nbd}
    for strength in RIDGE_STRENGTHS:
        found[f"penalised {strength:g}"] = partial(_fit_ridge, strength)
    return found


def _fit_nbd(s: Summary) -> BgNbdParams:
    return fit_nbd(s.x, s.t_x, s.T)


def _fit_ridge(strength: float, s: Summary) -> BgNbdParams:
    return fit_bgnbd_ridge(s.x, s.t_x, s.T, strength)


def _heldout_scores(
    log: PurchaseLog, end_day: int, heldout_days: int, candidates: dict[str, Fitter]
) -> tuple[dict[str, float], int]:
    """Mean held-out log-likelihood per customer of each candidate that fits, and the held-out days.

    Empty when the history before `end_day` is shorter than twice the held-out
    days would need (halved as far as one day), or too small at the earlier cut.
    """
    first = int(log.day.min())
    days = min(heldout_days, (end_day - first) // 2)
    if days < 1:
        return {}, 0
    cut = end_day - days
    s = summarise(log, cut)
    if np.count_nonzero(s.x > 0) < MIN_REPEAT_CUSTOMERS:
        return {}, 0
    n = purchase_days_between(log, cut, end_day)[s.customer]
    scores = {}
    for name, fitter in candidates.items():
        try:
            params = fitter(s)
        except ValueModelError:
            continue
        score = float(np.mean(log_p_purchase_days(params, n, days, s.x, s.t_x, s.T)))
        if math.isfinite(score):
            scores[name] = score
    return scores, days


def purchase_days_between(log: PurchaseLog, start_day: int, end_day: int) -> FloatArray:
    """Per customer of the log: purchase days in (start_day, end_day]."""
    inside = (log.day > start_day) & (log.day <= end_day)
    return np.bincount(log.customer[inside], minlength=log.n_customers).astype(np.float64)


def _fallback_order(s: Summary, candidates: dict[str, Fitter]) -> list[str]:
    """Without a held-out check: the NBD when it is the boundary's limit, else the weakest penalty first."""
    penalised = [name for name in candidates if name != "nbd_limit"]
    try:
        nbd = candidates["nbd_limit"](s)
        weakest = candidates[penalised[0]](s)
    except ValueModelError:
        return ["nbd_limit", *penalised]
    gap = float(np.sum(log_likelihood(weakest, s.x, s.t_x, s.T)) - np.sum(log_likelihood(nbd, s.x, s.t_x, s.T)))
    return ["nbd_limit", *penalised] if gap <= LIMIT_TOLERANCE else [*penalised, "nbd_limit"]


def _choice(name: str, boundary: str, days: int, scores: dict[str, float]) -> FitChoice:
    heldout = tuple(sorted(scores.items(), key=lambda kv: -kv[1]))
    if name == "nbd_limit":
        what, method, penalty = "its no-drop-out limit, the NBD (P(alive) = 1)", "nbd_limit", 0.0
    else:
        penalty = float(name.split()[1])
        what, method = f"the BG/NBD with a ridge of {penalty:g} on its log-parameters", "penalised"
    if scores:
        why = (
            f"predicted the last {days} days of the history best "
            f"(held-out log-likelihood {scores[name]:.4f} per customer)"
        )
    else:
        why = "(the history is too short to compare the candidates on held-out days)"
    reason = f"the BG/NBD likelihood has no interior maximum ({boundary}); {what} {why}"
    return FitChoice(method, reason, penalty, boundary, days, heldout)
