"""Plain-text lines that say what `fit` fitted and how `evaluate` compared: no I/O, the CLI prints them."""

from __future__ import annotations

import json
import math

from scoring.valuemodel.evaluate import Evaluation
from scoring.valuemodel.model import ValueModel


def fit_lines(model: ValueModel) -> list[str]:
    """What was fitted and why: one line per part, the fit records and any warning (format-4 models)."""
    bg, gg, risk = model.bg, model.gg, model.at_risk
    if bg.drops_out:
        purchases = f"BG/NBD r={bg.r:.4f} alpha={bg.alpha:.4f} a={bg.a:.4g} b={bg.b:.4g}"
    else:
        purchases = f"NBD without drop-out (the BG/NBD's a -> 0 limit; P(alive) = 1) r={bg.r:.4f} alpha={bg.alpha:.4f}"
    lines = [f"purchases: {purchases}"]
    if model.bg_fit is not None:
        lines.append(f"  why: {model.bg_fit.reason}")
    lines.append(f"spend: Gamma-Gamma p={gg.p:.4f} q={gg.q:.4f} v={gg.v:.4f}")
    if model.gg_fit is not None and model.gg_fit.method != "mle":
        lines.append(f"  why: {model.gg_fit.reason}")
    check = model.spend_check
    if check is not None:
        if check.material:
            lines.append(f"  warning: {check.warning()}")
        else:
            lines.append(
                f"  spend/frequency check: Pearson r = {check.correlation:+.2f} over {check.customers:,} repeat "
                "buyers (the Gamma-Gamma assumes independence; flagged from |r| >= 0.3)"
            )
    shortened = (
        f" (history too short for the {risk.requested_horizon_days} days asked for)"
        if risk.requested_horizon_days
        else ""
    )
    lines.append(
        f"at-risk: P(no purchase in {risk.horizon_days} days){shortened}, "
        f"trained on {risk.windows} window{'s' if risk.windows != 1 else ''}"
        f"{f' {risk.step_days} days apart' if risk.windows > 1 else ''}, L2 {risk.l2:g}"
    )
    lines.append(f"thresholds (adopt in tierstream.yaml `scoring:`): {json.dumps(model.thresholds.to_dict())}")
    if (a := model.affinity) is not None:
        lines.append(
            f"category affinity: {len(a.related):,} of {len(a.popular):,}+ categories related to others "
            f"(pairs bought by at least {a.min_support} of {a.customers:,} customers)"
        )
    return lines


def evaluation_title(ev: Evaluation) -> str:
    """The table's title: the holdout, and a shortened label horizon when there was one."""
    trained = (
        f"; at-risk model trained on {ev.label_horizon_days}-day labels, the calibration period being too short "
        f"for {ev.horizon_days}"
        if ev.label_horizon_days != ev.horizon_days
        else ""
    )
    return f"who stops buying in the {ev.horizon_days} days after the calibration end{trained}"


def evaluation_rows(ev: Evaluation) -> list[list[str]]:
    """Rows: segment, method, customers, did not buy, ROC AUC, precision@20 %, and for each baseline the
    bootstrap intervals of model - baseline on both (blank for the model and without a bootstrap)."""
    rows = []
    for segment, methods in ev.scores.items():
        for method, score in methods.items():
            gap = ev.intervals.get(segment, {}).get(method, {})
            rows.append(
                [
                    segment,
                    method,
                    f"{score.customers:,}",
                    f"{score.positives:,}",
                    f"{score.roc_auc:.3f}",
                    f"{score.precision_at_20:.3f}",
                    _interval(gap.get("roc_auc")),
                    _interval(gap.get("precision_at_20")),
                ]
            )
    return rows


def evaluation_notes(ev: Evaluation) -> list[str]:
    """How each method was fitted, and what the intervals are."""
    if ev.baseline_penalizer:
        baseline = (
            f"1 - P(alive): the BG/NBD as lifetimes needs to fit it here: penalised, penalizer_coef "
            f"{ev.baseline_penalizer:g} (the unpenalised fit has no interior maximum)"
        )
    else:
        baseline = "1 - P(alive): the unpenalised BG/NBD (as lifetimes fits it)"
    notes = [baseline]
    if ev.model_fit is not None:
        notes.append(f"at-risk model's BG/NBD: {ev.model_fit.reason}")
    if ev.bootstrap_rounds:
        notes.append(
            f"model - this: the at-risk model's figure minus this baseline's, paired bootstrap 95 % interval "
            f"({ev.bootstrap_rounds:,} resamples of customers)"
        )
    return notes


def _interval(bounds: tuple[float, float] | None) -> str:
    if bounds is None or not all(math.isfinite(b) for b in bounds):
        return ""
    return f"[{bounds[0]:+.3f}, {bounds[1]:+.3f}]"
