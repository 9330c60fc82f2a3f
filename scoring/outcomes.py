"""Outcomes of measured contact-plan decisions: bounded windows kept in the customer's state.

A decision of a rule with a control group (`scoring.holdout.is_measured`), treated (approved or
downgraded) or held out, opens a `Trial` of the rule's `outcome_days`. Purchases and returns whose
event time falls in the window are added to it as they are applied (a redelivered event is refused
as a duplicate before, so it never counts twice; an event that arrives after the window closed is
not counted). The evaluation of the first day at or after the window's end closes it: an
`OutcomeObserved` decision is made and the state forgets the trial. At most `max_open_outcomes`
windows are open at once; a decision beyond them is not tracked, whichever its group, so both
groups lose alike.

Churned: no purchase in the window, and at risk or lapsed when it closes.
"""

from __future__ import annotations

from collections.abc import Callable

from scoring.config import ContactRule, ScoringConfig
from scoring.decisions import ActionRequest, OutcomeObserved
from scoring.events import CoreEvent, Kind
from scoring.money import SCALE, money_float
from scoring.tiers import tier_rank
from scoring.trial import Trial


def open_trial(action: ActionRequest, rule: ContactRule) -> Trial:
    """The window a treated or held-out action opens (its cost is 0 when held out)."""
    cost = 0 if action.roi_decision == "held_out" else round(action.cost * SCALE)
    return Trial(
        action.id,
        action.rule,
        action.action_type,
        action.channel,
        action.roi_decision == "held_out",
        action.tier,
        action.at_ms,
        rule.outcome_days,
        cost,
    )


def record(trials: tuple[Trial, ...], event: CoreEvent, base_e4: int) -> tuple[Trial, ...]:
    """The trials after an applied event: a purchase or return inside a window counts in it."""
    if event.kind is Kind.PURCHASE:
        return tuple(
            t._replace(purchases=t.purchases + 1, revenue_e4=t.revenue_e4 + base_e4)
            if t.start_ms <= event.at_ms < t.end_ms
            else t
            for t in trials
        )
    if event.kind is Kind.RETURN:
        return tuple(
            t._replace(return_e4=t.return_e4 + base_e4) if t.start_ms <= event.at_ms < t.end_ms else t for t in trials
        )
    return trials


def settle(
    trials: tuple[Trial, ...],
    opened: list[Trial],
    today: int,
    tier: str,
    at_risk: bool,
    make: Callable[[Trial, str, bool], OutcomeObserved],
    config: ScoringConfig,
) -> tuple[tuple[Trial, ...], list[OutcomeObserved]]:
    """Close the windows that end by `today` (as `make(trial, tier_move, churned)`), then open `opened`
    while fewer than `max_open_outcomes` are open. `tier` and `at_risk` are today's evaluation."""
    kept: list[Trial] = []
    closed: list[OutcomeObserved] = []
    for trial in trials:
        if trial.close_day > today:
            kept.append(trial)
            continue
        closed.append(make(trial, tier_move(trial.tier, tier, config), trial.purchases == 0 and at_risk))
    room = config.max_open_outcomes - len(kept)
    kept += opened[: max(room, 0)]
    return tuple(kept), closed


def tier_move(before: str, after: str, config: ScoringConfig) -> str:
    """up, down or same between two tiers."""
    if before == after or before not in config.tier_names or after not in config.tier_names:
        return "same"
    return "up" if tier_rank(after, config) < tier_rank(before, config) else "down"


def next_close_day(trials: tuple[Trial, ...]) -> int | None:
    return min((t.close_day for t in trials), default=None)


def observed(
    trial: Trial, output_id: str, cause: str, at_ms: int, tier_after: str, move: str, churned: bool
) -> OutcomeObserved:
    """The outcome decision of a closed window."""
    return OutcomeObserved(
        output_id,
        cause,
        at_ms,
        trial.action_id,
        trial.rule,
        trial.action_type,
        trial.channel,
        "held_out" if trial.held_out else "treated",
        trial.tier,
        trial.start_ms,
        trial.days,
        trial.purchases,
        money_float(trial.revenue_e4),
        money_float(trial.return_e4),
        money_float(trial.cost_e4),
        tier_after,
        move,  # type: ignore[arg-type]
        churned,
    )
