"""One step of a customer's life: the function the stream and replay share.

`step(state, event_or_None, now_ms, customer_id, config)`:
1. refuses a bad event with a reason (state unchanged);
2. on a redelivered cause, resends the outputs it caused (from the outbox);
3. catches up on every review day that passed before today, in order, so the
   result does not depend on when the timer fired;
4. applies the event and evaluates as of today: tier (with hysteresis),
   segment, at-risk, and the contact plan;
5. returns the new state and the decisions, each with a deterministic id.
The clock never runs backwards: now = max(now_ms, state.clock_ms).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, NamedTuple

from scoring.btyd import btyd_summary
from scoring.config import ActionSpec, ScoringConfig
from scoring.decisions import ActionRequest, Alert, Decision, ScoreChanged, TierChange
from scoring.events import MS_PER_DAY, CoreEvent, Kind
from scoring.fold import Outcome, advance, apply
from scoring.ids import output_id
from scoring.lifecycle import Risk, assess_risk, segment
from scoring.plan import Trigger, matching_rules, roi_guard
from scoring.review import next_review_day
from scoring.rfm import Score, score
from scoring.state import OUTBOX_KEPT, CustomerState, OutboxEntry, evolve
from scoring.tiers import assign_tier, tier_rank

if TYPE_CHECKING:
    from scoring.valuemodel.model import ValueModel
    from scoring.valuemodel.scalar import CustomerValue

MAX_CATCH_UP = 5000  # review days evaluated in one step at most (then it evaluates as of today)


class Evaluation(NamedTuple):
    """The customer's published profile as of `score.day`."""

    score: Score
    tier: str
    segment: str
    risk: Risk


@dataclass(frozen=True, slots=True)
class StepResult:
    """A step's new state and decisions.

    `views` holds, for each cause whose score snapshot this step decided, the
    state and evaluation that snapshot shows: a catch-up review inside an event's
    step has its own (as of its day), not the step's final one.
    """

    state: CustomerState
    outcome: str  # applied | duplicate | rejected | reviewed
    reason: str
    decisions: tuple[Decision, ...]
    evaluation: Evaluation | None
    resent: bool = False
    views: tuple[tuple[str, CustomerState, Evaluation], ...] = ()

    def view(self, cause: str) -> tuple[CustomerState, Evaluation] | None:
        """The state and evaluation behind the snapshot of `cause`, when this step decided it."""
        for seen, state, evaluation in self.views:
            if seen == cause:
                return state, evaluation
        return None


def review_cause(day: int) -> str:
    """The cause id of a time-driven evaluation on epoch day `day`."""
    return f"review@{day}"


def evaluate(
    state: CustomerState,
    today: int,
    config: ScoringConfig,
    model: ValueModel | None = None,
) -> Evaluation:
    """Profile as of `today` without changing state (tier from the stored tier)."""
    s = score(state, today, config)
    tier = assign_tier(s.composite, state.tier, state.tier_since, today, config)
    return Evaluation(s, tier, segment(state, s, config), assess_risk(state, s, tier, config, model))


def value_of(
    state: CustomerState,
    today: int,
    config: ScoringConfig,
    model: ValueModel | None,
) -> CustomerValue | None:
    """The value model's figures for a customer as of `today`; None without a model or purchase."""
    summary = btyd_summary(state, today)
    if model is None or summary is None:
        return None
    from scoring.valuemodel.scalar import customer_value  # noqa: PLC0415 - keeps `import scoring` free of scipy

    return customer_value(
        model,
        summary.x,
        summary.t_x,
        summary.T,
        summary.mean_repeat_value,
        config.clv_horizon_months,
        config.clv_monthly_discount,
    )


def step(
    state: CustomerState,
    event: CoreEvent | None,
    now_ms: int,
    customer_id: str,
    config: ScoringConfig,
    cause: str | None = None,
    model: ValueModel | None = None,
) -> StepResult:
    """Advance one customer by an event, or by time alone when `event` is None."""
    now = max(now_ms, state.clock_ms)
    today = now // MS_PER_DAY
    cause = event.event_id if event is not None else (cause or review_cause(today))
    if event is not None:
        applied = apply(state, event, now, config)
        if applied.outcome is Outcome.REJECTED:
            return StepResult(state, "rejected", applied.reason, (), None)
        if applied.outcome is Outcome.DUPLICATE:
            return _resend(state, cause, "duplicate")
    elif any(entry.cause == cause for entry in state.outbox):
        return _resend(state, cause, "duplicate")
    current, decisions, views = _catch_up(state, today, customer_id, config, model)
    if event is not None:
        current = applied.state if current is state else apply(current, event, now, config).state
    else:
        current = advance(current, now, config)
    at_ms = event.at_ms if event is not None else now
    current, evaluation, more = _decide(current, today, cause, at_ms, customer_id, config, event, model)
    decisions += more
    final = _remember(current, cause, now, tuple(decisions), config)
    if _has_snapshot(more):
        views.append((cause, final, evaluation))
    return StepResult(
        final,
        "applied" if event is not None else "reviewed",
        "",
        tuple(decisions),
        evaluation,
        views=tuple(views),
    )


def _has_snapshot(decisions: list[Decision]) -> bool:
    return any(d.kind == "score" for d in decisions)


def _resend(state: CustomerState, cause: str, outcome: str) -> StepResult:
    for entry in state.outbox:
        if entry.cause == cause:
            return StepResult(state, outcome, "", entry.decisions, None, resent=True)
    return StepResult(state, outcome, "already applied", (), None)


def _catch_up(
    state: CustomerState,
    today: int,
    customer_id: str,
    config: ScoringConfig,
    model: ValueModel | None,
) -> tuple[CustomerState, list[Decision], list[tuple[str, CustomerState, Evaluation]]]:
    decisions: list[Decision] = []
    views: list[tuple[str, CustomerState, Evaluation]] = []
    for _ in range(MAX_CATCH_UP):
        due = state.review_day  # cached by the step that last evaluated this state
        if due is None or due >= today:
            break
        state = advance(state, due * MS_PER_DAY, config)
        cause = review_cause(due)
        state, evaluation, more = _decide(state, due, cause, due * MS_PER_DAY, customer_id, config, None, model)
        decisions += more
        if _has_snapshot(more):
            views.append((cause, state, evaluation))
    return state, decisions, views


def _remember(
    state: CustomerState,
    cause: str,
    now: int,
    decisions: tuple[Decision, ...],
    config: ScoringConfig,
) -> CustomerState:
    ttl_ms = config.outbox_ttl_seconds * 1000
    kept = tuple(e for e in state.outbox if now - e.emitted_ms <= ttl_ms)
    if decisions:
        kept = (*kept, OutboxEntry.of(cause, now, decisions))[-OUTBOX_KEPT:]
    return state if kept == state.outbox else evolve(state, outbox=kept)


def _decide(
    state: CustomerState,
    today: int,
    cause: str,
    at_ms: int,
    customer_id: str,
    config: ScoringConfig,
    event: CoreEvent | None,
    model: ValueModel | None,
) -> tuple[CustomerState, Evaluation, list[Decision]]:
    ev = evaluate(state, today, config, model)
    maker = _Maker(customer_id, cause, at_ms, ev, config, lambda: value_of(state, today, config, model))
    triggers = _triggers(state, ev, event, config, maker)
    for trigger in triggers:
        for rule in matching_rules(trigger, config):
            maker.action(rule.name, trigger.on, rule.action)
    centi = round(ev.score.composite * 100)
    if (ev.tier, ev.segment, ev.risk.is_at_risk, centi) != (
        state.tier,
        state.segment,
        state.at_risk,
        state.score_centi,
    ):
        maker.out.append(ScoreChanged(output_id(customer_id, cause, "score", 0), cause, at_ms))
    since = today if ev.tier != state.tier else state.tier_since
    scored = evolve(
        state,
        scored_day=today,
        tier=ev.tier,
        tier_since=since,
        segment=ev.segment,
        at_risk=ev.risk.is_at_risk,
        score_centi=centi,
    )
    new_state = evolve(scored, review_day=next_review_day(scored, config, model, ev.risk))
    return new_state, ev, maker.out


def _triggers(
    state: CustomerState,
    ev: Evaluation,
    event: CoreEvent | None,
    config: ScoringConfig,
    maker: _Maker,
) -> list[Trigger]:
    found: list[Trigger] = []
    if ev.tier != state.tier:
        direction = maker.tier_change(state)
        found.append(Trigger("tier_changed", ev.tier, state.tier, direction, ev.segment))
    if ev.segment != state.segment and (state.segment is not None or ev.segment != "new"):
        found.append(Trigger("segment_changed", ev.tier, state.tier, "", ev.segment))
    if ev.risk.is_at_risk and not state.at_risk:
        maker.alert(
            "at_risk", f"{ev.score.recency_days} days since last purchase, typical gap {ev.risk.gap_days:.1f} days"
        )
        found.append(Trigger("at_risk", ev.tier, state.tier, "", ev.segment))
    standing = state.tier or ev.tier
    if event is not None and event.kind is Kind.COMPLAINT and standing in config.top_tiers:
        maker.alert("top_tier_complaint", f"severity {event.severity} complaint from tier {standing}")
        found.append(Trigger("top_tier_complaint", ev.tier, state.tier, "", ev.segment))
    return found


class _Maker:
    """Builds decisions with deterministic ids, numbered per kind within one cause."""

    def __init__(
        self,
        customer_id: str,
        cause: str,
        at_ms: int,
        ev: Evaluation,
        config: ScoringConfig,
        valuation: Callable[[], CustomerValue | None],
    ) -> None:
        self.customer_id, self.cause, self.at_ms, self.ev, self.config = customer_id, cause, at_ms, ev, config
        self._valuation = valuation
        self._value: tuple[float, str] | None = None
        self.out: list[Decision] = []

    def value(self) -> tuple[float, str]:
        """What the customer is worth and on which basis: the model's CLV, else the annual value."""
        if self._value is None:
            v = self._valuation()
            self._value = (round(v.clv, 2), "clv") if v is not None else (self.ev.score.annual_value, "annual_value")
        return self._value

    def _id(self, kind: str) -> str:
        seq = sum(1 for d in self.out if d.kind == kind)
        return output_id(self.customer_id, self.cause, kind, seq)

    def tier_change(self, state: CustomerState) -> str:
        ev, c = self.ev, self.config
        if state.tier is None:
            direction = "new"
        else:
            direction = "up" if tier_rank(ev.tier, c) < tier_rank(state.tier, c) else "down"
        touch = c.touch_patterns[ev.tier]
        previous = None if state.score_centi is None else state.score_centi / 100
        self.out.append(
            TierChange(
                self._id("tier_change"),
                self.cause,
                self.at_ms,
                state.tier,
                ev.tier,
                direction,  # type: ignore[arg-type]
                ev.score.composite,
                previous,
                touch.channel,
                touch.cadence_days,
                touch.owner,
            )
        )
        return direction

    def alert(self, kind: str, reason: str) -> None:
        ev = self.ev
        worth, basis = self.value()
        self.out.append(
            Alert(
                self._id("alert"),
                self.cause,
                self.at_ms,
                kind,  # type: ignore[arg-type]
                ev.tier,
                ev.score.composite,
                ev.risk.score,
                worth,
                reason,
                value_basis=basis,
            )
        )

    def action(self, rule: str, trigger: str, spec: ActionSpec) -> None:
        worth, basis = self.value()
        verdict = roi_guard(spec.channel, worth, self.config, basis)
        self.out.append(
            ActionRequest(
                self._id("action"),
                self.cause,
                self.at_ms,
                rule,
                trigger,
                spec.type,
                verdict.channel,
                spec.channel,
                spec.priority,
                spec.owner,
                self.at_ms + round(spec.due_in_days * MS_PER_DAY),
                verdict.cost,
                worth,
                verdict.decision,
                verdict.reason,
                self.ev.tier,
                value_basis=basis,
            )
        )
