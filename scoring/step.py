"""One step of a customer's life: the function the stream and replay share.

`step(state, event_or_None, now_ms, customer_id, config)`:
1. refuses a bad event with a reason (state unchanged), also one that would make
   the serialised state larger than `max_state_bytes`;
2. on a redelivered cause, resends the outputs it caused (from the outbox);
3. catches up on every review day that passed before today, in order, so the
   result does not depend on when the timer fired (each such day decides tier
   changes, actions and alerts under its own cause, `review@<day>`);
   A customer inactive for `retention.forget_after_days` by today is forgotten at that review (the
   catch-up stops there) and an event then starts a new customer; an erasure request forgets the
   customer after the catch-up (`scoring.retention`). A forgotten customer's step returns no state;
4. applies the event and evaluates as of today: tier (with hysteresis),
   segment, at-risk, and the contact plan;
5. returns the new state and the decisions, each with a deterministic id, and at
   most one score snapshot (`ScoreChanged`), of the step's final state, when the
   published profile changed anywhere in the step.
Outputs of a time-driven evaluation carry the start (00:00 UTC) of its day.
The clock never runs backwards: now = max(now_ms, state.clock_ms).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, NamedTuple

from scoring.btyd import btyd_summary
from scoring.codec import encode_state, size_bound
from scoring.config import ContactRule, ScoringConfig
from scoring.decisions import (
    ActionRequest,
    Alert,
    Decision,
    OutcomeObserved,
    PotentialChange,
    ScoreChanged,
    TierChange,
)
from scoring.events import MS_PER_DAY, CoreEvent, Kind
from scoring.fold import Outcome, advance, apply, check_time, to_base_e4
from scoring.holdout import is_held_out, is_measured
from scoring.ids import output_id
from scoring.lifecycle import Risk, assess_risk, segment
from scoring.money import money_text
from scoring.offering import Offering, assess_offering
from scoring.outcomes import next_close_day, observed, open_trial, record, settle
from scoring.plan import RoiVerdict, Trigger, matching_rules, roi_guard
from scoring.potential import Potential, assess_potential, high_value_tiers
from scoring.retention import forget_day, forgotten, is_forgotten_by
from scoring.review import review_day_after
from scoring.rfm import Score, score
from scoring.satisfaction import Satisfaction, grade, grade_rank
from scoring.state import NEW_STATE, OUTBOX_KEPT, CustomerState, OutboxEntry
from scoring.tiers import assign_tier, tier_rank
from scoring.trial import Trial

if TYPE_CHECKING:
    from scoring.affinity import Affinity
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
    """A step's new state (None: the customer is forgotten, delete it) and decisions; a `ScoreChanged` among
    them shows `state` as `evaluation`."""

    state: CustomerState | None
    outcome: str  # applied | duplicate | rejected | reviewed | forgotten
    reason: str
    decisions: tuple[Decision, ...]
    evaluation: Evaluation | None
    resent: bool = False

    @property
    def clock_ms(self) -> int:
        """The step's time (ms): its state's clock; without a state (forgotten), its latest decision's time."""
        if self.state is not None:
            return self.state.clock_ms
        return max((d.at_ms for d in self.decisions), default=0)


def review_cause(day: int) -> str:
    """The cause id of a time-driven evaluation on epoch day `day`."""
    return f"review@{day}"


def describe_cause(event: CoreEvent | None, s: Score, config: ScoringConfig) -> str:
    """The cause of a step's decisions in words: "purchase 42.00", "return 12.00 USD" (an amount in
    another currency than the base one names it), "complaint, severity 4", "no purchase for 93 days"."""
    if event is None:
        days = s.recency_days
        if days is None:
            return "review: no purchase yet"
        return f"no purchase for {days} day{'' if days == 1 else 's'}"
    if event.kind in (Kind.PURCHASE, Kind.RETURN):
        currency = "" if event.currency in ("", config.base_currency) else f" {event.currency}"
        name = "purchase" if event.kind is Kind.PURCHASE else "return"
        return f"{name} {money_text(event.amount_e4)}{currency}"
    if event.kind is Kind.COMPLAINT:
        return f"complaint, severity {event.severity}"
    return "enquiry"


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
    if model is None:
        return None
    summary = btyd_summary(state, today)
    if summary is None:
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
    if is_forgotten_by(state, today, config):
        return _forget_then(state, event, now, customer_id, config, model)
    if event is not None and event.kind is Kind.ERASURE:
        return _erase(state, event, now, customer_id, config, model)
    cause = event.event_id if event is not None else (cause or review_cause(today))
    if event is not None:
        applied = apply(state, event, now, config)
        if applied.outcome is Outcome.REJECTED:
            return StepResult(state, "rejected", applied.reason, (), None)
        if applied.outcome is Outcome.DUPLICATE:
            return _resend(state, cause, "duplicate")
    elif any(entry.cause == cause for entry in state.outbox):
        return _resend(state, cause, "duplicate")
    current, decisions, changed = _catch_up(state, today, customer_id, config, model)
    before = current
    if event is not None:
        current = applied.state if current is state else apply(current, event, now, config).state
        if current.trials:  # outcome windows count the purchases and returns inside them
            current = current._replace(trials=record(current.trials, event, to_base_e4(event, config) or 0))
    else:
        current = advance(current, now, config)
    at_ms = event.at_ms if event is not None else today * MS_PER_DAY
    changes, evaluation, more = _decide(current, today, cause, at_ms, customer_id, config, event, model, before)
    # The snapshot shows the figures too: an applied event always changes them (and a review may, as days
    # leave the window), so the step publishes one even when tier, segment, risk and score stay; and when a
    # catch-up changed the profile. Reviews run apart (the stream's sweep) or caught up inside the next
    # event's step (replay) then end in the same latest snapshot.
    moved = changed or event is not None or current.figures != state.figures
    if moved and not any(d.kind == "score" for d in more):
        more.append(ScoreChanged(output_id(customer_id, cause, "score", 0), cause, at_ms))
    decisions += more
    done = tuple(decisions)
    outbox = _kept_outbox(current.outbox, cause, now, done, config)
    if outbox != current.outbox:
        changes["outbox"] = outbox
    final = current._replace(**changes)  # one copy of the state per step
    if event is not None and (too_big := _oversize(final, config)):
        return StepResult(state, "rejected", too_big, (), None)
    return StepResult(final, "applied" if event is not None else "reviewed", "", done, evaluation)


def _forget_then(
    state: CustomerState,
    event: CoreEvent | None,
    now: int,
    customer_id: str,
    config: ScoringConfig,
    model: ValueModel | None,
) -> StepResult:
    """The reviews before the forget day, the forget on it; then the event (if any) as a new customer's first."""
    day = forget_day(state, config)
    assert day is not None
    current, decisions, _ = _catch_up(state, day, customer_id, config, model)
    decisions.append(forgotten(current, customer_id, review_cause(day), day * MS_PER_DAY, "inactive", config))
    if event is None:
        return StepResult(None, "forgotten", "inactive", tuple(decisions), None)
    fresh = step(NEW_STATE, event, now, customer_id, config, model=model)
    if fresh.outcome == "rejected":
        return StepResult(state, "rejected", fresh.reason, (), None)
    done = (*decisions, *fresh.decisions)
    if fresh.state is None or fresh.outcome == "duplicate":  # an erasure request: nothing left to erase
        return StepResult(None, "forgotten", "inactive", done, None)
    # a redelivered event resends the forget too (same ids)
    kept = fresh.state._replace(outbox=_kept_outbox((), event.event_id, now, done, config))
    return StepResult(kept, fresh.outcome, fresh.reason, done, fresh.evaluation)


def _erase(
    state: CustomerState,
    event: CoreEvent,
    now: int,
    customer_id: str,
    config: ScoringConfig,
    model: ValueModel | None,
) -> StepResult:
    """An erasure request: the reviews due before its day (as any event has them), then forget the customer.
    One with no state (never seen, forgotten already, or the request redelivered after its forget was
    written) has nothing to erase: nothing is sent, as for any redelivered input. Nor has one dated before
    the day of the state's first event: that state is a relationship begun after the request (the customer
    came back after its forget, and the request was read again, e.g. by a worker that took over from one
    killed before committing it); replay, stepping in time order, never meets such a request."""
    if reason := check_time(event, now, config):
        return StepResult(state, "rejected", reason, (), None)
    if state.last_seen_day is None and state.scored_day is None:
        return StepResult(state, "duplicate", "nothing to erase", (), None)
    if state.first_seen_day is not None and event.at_ms // MS_PER_DAY < state.first_seen_day:
        return StepResult(
            state, "duplicate", "nothing to erase: the request predates the state's first event", (), None
        )
    current, decisions, _ = _catch_up(state, now // MS_PER_DAY, customer_id, config, model)
    decisions.append(forgotten(current, customer_id, event.event_id, event.at_ms, "erasure", config))
    return StepResult(None, "forgotten", "erasure", tuple(decisions), None)


def due_reviews(
    state: CustomerState,
    until_day: int,
    customer_id: str,
    config: ScoringConfig,
    model: ValueModel | None = None,
) -> list[StepResult]:
    """The reviews a state is due by the end of `until_day`, each stepped as of the end of its own due day.

    What time alone does to a customer, independent of when anyone looks: the stream's sweep with the
    event clock and `replay --exact` after a customer's last event both review this way, so they agree.
    """
    results: list[StepResult] = []
    while (due := due_day(state, config)) is not None and due <= until_day:
        result = step(state, None, (due + 1) * MS_PER_DAY - 1, customer_id, config, model=model)
        results.append(result)
        if result.state is None:  # forgotten: nothing more is due
            break
        after = result.state.review_day
        if after is not None and after <= due:  # no progress (a review already done): nothing more is due
            break
        state = result.state
    return results


def due_day(state: CustomerState, config: ScoringConfig) -> int | None:
    """The next day time alone changes the customer: its cached review day, or its forget day when earlier
    (a state cached before retention was set does not know of it)."""
    return _earlier(state.review_day, forget_day(state, config))


def _oversize(state: CustomerState, config: ScoringConfig) -> str:
    """Why a state is too large to keep ("" when it fits): encoded only when its size bound is over the limit."""
    limit = config.max_state_bytes
    if size_bound(state) <= limit or (size := len(encode_state(state))) <= limit:
        return ""
    return f"the customer's state would take {size} bytes, over scoring.max_state_bytes ({limit})"


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
) -> tuple[CustomerState, list[Decision], bool]:
    """Every review day before `today`, in order: its tier changes, actions and alerts; and whether any
    of them changed the published profile (the step's one snapshot then shows the final state)."""
    decisions: list[Decision] = []
    changed = False
    for _ in range(MAX_CATCH_UP):
        due = state.review_day  # cached by the step that last evaluated this state
        if due is None or due >= today:
            break
        before, state = state, advance(state, due * MS_PER_DAY, config)
        changes, _, more = _decide(
            state, due, review_cause(due), due * MS_PER_DAY, customer_id, config, None, model, before
        )
        state = state._replace(**changes)
        for decision in more:
            if decision.kind == "score":
                changed = True
            else:
                decisions.append(decision)
    return state, decisions, changed


def _kept_outbox(
    outbox: tuple[OutboxEntry, ...],
    cause: str,
    now: int,
    decisions: tuple[Decision, ...],
    config: ScoringConfig,
) -> tuple[OutboxEntry, ...]:
    """The outbox after a step: entries younger than the TTL, and this cause's decisions (when any)."""
    ttl_ms = config.outbox_ttl_seconds * 1000
    kept = tuple([e for e in outbox if now - e.emitted_ms <= ttl_ms]) if outbox else outbox
    if decisions:
        kept = (*kept, OutboxEntry.of(cause, now, decisions))[-OUTBOX_KEPT:]
    return kept


def _decide(
    state: CustomerState,
    today: int,
    cause: str,
    at_ms: int,
    customer_id: str,
    config: ScoringConfig,
    event: CoreEvent | None,
    model: ValueModel | None,
    before: CustomerState | None = None,
) -> tuple[dict[str, Any], Evaluation, list[Decision]]:
    """Evaluate `state` as of `today`: what the scored state changes (fields of `state` to replace, its
    review day included), the evaluation, and the decisions. `before` is the state as last evaluated (the
    offering it published is recomputed from it, only when needed to tell a transition)."""
    ev = evaluate(state, today, config, model)
    known: list[CustomerValue | None] = []  # the model's figures, computed once when first needed

    def valuation() -> CustomerValue | None:
        if not known:
            known.append(value_of(state, today, config, model))
        return known[0]

    maker = _Maker(customer_id, cause, at_ms, ev, config, valuation, event, state)
    maker.affinity = model.affinity if model is not None else None
    triggers = _triggers(state, ev, event, config, maker)
    triggers += _offering_triggers(state, ev, config, maker, lambda: previous_offering(before, config, model))
    opened: list[Trial] = []
    for trigger in triggers:
        for rule in matching_rules(trigger, config):
            action = maker.action(rule, trigger.on)
            if action.roi_decision != "skipped" and is_measured(rule, config):
                opened.append(open_trial(action, rule))
    trials, closed = (
        settle(
            state.trials, opened, today, ev.tier, ev.risk.is_at_risk or ev.segment == "lapsed", maker.outcome, config
        )
        if state.trials or opened
        else ((), [])
    )
    maker.out += closed
    centi = round(ev.score.composite * 100)
    if (ev.tier, ev.segment, ev.risk.is_at_risk, centi) != (
        state.tier,
        state.segment,
        state.at_risk,
        state.score_centi,
    ) or any(d.kind == "potential_change" for d in maker.out):  # a new cell entered: the profile shows it
        maker.out.append(ScoreChanged(output_id(customer_id, cause, "score", 0), cause, at_ms))
    since = today if ev.tier != state.tier else state.tier_since
    changes = {
        "scored_day": today,
        "tier": ev.tier,
        "tier_since": since,
        "segment": ev.segment,
        "at_risk": ev.risk.is_at_risk,
        "score_centi": centi,
        # only the scored day, tier and its day of the scored state are read, besides what `state` has
        "review_day": _earlier(
            _earlier(
                review_day_after(state, today, ev.tier, since, config, ev.risk, ev.score),
                next_close_day(trials) if trials else None,  # a window's close is a review
            ),
            forget_day(state, config),  # so is the day retention forgets the customer
        ),
        "trials": trials,
    }
    return changes, ev, maker.out


def _earlier(day: int | None, other: int | None) -> int | None:
    return day if other is None else other if day is None else min(day, other)


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
        found.append(Trigger("tier_changed", ev.tier, state.tier, direction, ev.segment, maker.cell))
    if ev.segment != state.segment and (state.segment is not None or ev.segment != "new"):
        found.append(Trigger("segment_changed", ev.tier, state.tier, "", ev.segment, maker.cell))
    if ev.risk.is_at_risk and not state.at_risk:
        maker.alert(
            "at_risk", f"{ev.score.recency_days} days since last purchase, typical gap {ev.risk.gap_days:.1f} days"
        )
        found.append(Trigger("at_risk", ev.tier, state.tier, "", ev.segment, maker.cell))
    standing = state.tier or ev.tier
    if event is not None and event.kind is Kind.COMPLAINT and standing in config.top_tiers:
        maker.alert("top_tier_complaint", f"severity {event.severity} complaint from tier {standing}")
        found.append(Trigger("top_tier_complaint", ev.tier, state.tier, "", ev.segment, maker.cell))
    return found


def previous_offering(before: CustomerState | None, config: ScoringConfig, model: ValueModel | None) -> Offering | None:
    """The offering `before` published at its last evaluation (None before a first one)."""
    if before is None or before.scored_day is None or before.tier is None:
        return None
    day = before.scored_day
    value = value_of(before, day, config, model)
    s = score(before, day, config)
    affinity = model.affinity if model is not None else None
    return assess_offering(
        before, s, before.tier, before.segment or "", before.at_risk, value, config, affinity=affinity
    )


def _offering_triggers(
    state: CustomerState,
    ev: Evaluation,
    config: ScoringConfig,
    maker: _Maker,
    previous: Callable[[], Offering | None],
) -> list[Trigger]:
    """Entering the low value, high potential cell; a top-tier customer sliding to `satisfaction.alert_grade` or
    worse (unless the same evaluation raised a top_tier_complaint alert: people already look at the customer)."""
    found: list[Trigger] = []
    before = None
    if ev.tier not in high_value_tiers(config) and maker.cell == config.potential.cells.low_value_high_potential:
        before = previous()
        if before is None or before.potential.cell != maker.cell:
            maker.potential_change(before)
            found.append(Trigger("potential_changed", ev.tier, state.tier, "", ev.segment, maker.cell))
    standing = state.tier or ev.tier
    if standing not in config.top_tiers:
        return found
    worst = grade_rank(config.satisfaction.alert_grade)
    alerted = any(isinstance(d, Alert) and d.alert_kind == "top_tier_complaint" for d in maker.out)
    if not alerted and grade_rank((now := maker.satisfaction).grade) >= worst:
        before = before or previous()
        if before is None or grade_rank(before.satisfaction.grade) < worst:
            was = "no grade" if before is None else before.satisfaction.grade
            maker.alert("satisfaction_drop", f"tier {standing} from {was} to {now.explanation()}")
            found.append(Trigger("satisfaction_dropped", ev.tier, state.tier, "", ev.segment, maker.cell))
    return found


class _Maker:
    """Builds decisions with deterministic ids, numbered per kind within one cause."""

    __slots__ = (
        "_cause_text",
        "_event",
        "_made",
        "_offer",
        "_potential",
        "_satisfaction",
        "_valuation",
        "_value",
        "affinity",
        "at_ms",
        "cause",
        "config",
        "customer_id",
        "ev",
        "out",
        "state",
    )

    def __init__(
        self,
        customer_id: str,
        cause: str,
        at_ms: int,
        ev: Evaluation,
        config: ScoringConfig,
        valuation: Callable[[], CustomerValue | None],
        event: CoreEvent | None,
        state: CustomerState,
    ) -> None:
        self.customer_id, self.cause, self.at_ms, self.ev, self.config = customer_id, cause, at_ms, ev, config
        self._valuation = valuation
        self._value: tuple[float, str] | None = None
        self.out: list[Decision] = []
        self._event = event
        self._cause_text: str | None = None  # `describe_cause`, made when a decision first needs it
        self._made: dict[str, int] = {}  # decisions of each kind made so far
        # the offering answers, each assessed once when first needed (the potential may need the model)
        self.state = state
        self._potential: Potential | None = None
        self._satisfaction: Satisfaction | None = None
        self._offer: Offering | None = None
        self.affinity: Affinity | None = None  # the value model's, when it has one

    @property
    def cause_text(self) -> str:
        """The cause in words (`describe_cause`): only decisions other than the score snapshot carry it."""
        if self._cause_text is None:
            self._cause_text = describe_cause(self._event, self.ev.score, self.config)
        return self._cause_text

    @property
    def potential(self) -> Potential:
        if self._potential is None:
            self._potential = assess_potential(self.ev.score, self.ev.tier, self._valuation(), self.config)
        return self._potential

    @property
    def cell(self) -> str:
        return self.potential.cell

    @property
    def satisfaction(self) -> Satisfaction:
        if self._satisfaction is None:
            self._satisfaction = grade(self.state, self.ev.score, self.config)
        return self._satisfaction

    def offer(self) -> Offering:
        """The offering answers: potential and cell, satisfaction, proposition."""
        if self._offer is None:
            ev = self.ev
            self._offer = assess_offering(
                self.state,
                ev.score,
                ev.tier,
                ev.segment,
                ev.risk.is_at_risk,
                self._valuation(),
                self.config,
                self.potential,
                self.satisfaction,
                self.affinity,
            )
        return self._offer

    def potential_change(self, before: Offering | None) -> None:
        now, proposal = self.potential, self.offer().proposition
        self.out.append(
            PotentialChange(
                self._id("potential_change"),
                self.cause,
                self.at_ms,
                None if before is None else before.potential.cell,
                now.cell,
                now.score,
                None if before is None else before.potential.score,
                self.ev.tier,
                now.basis,
                proposal.name,
                proposal.reason,
                cause_text=self.cause_text,
                category=proposal.category,
            )
        )

    def value(self) -> tuple[float, str]:
        """What the customer is worth and on which basis: the model's CLV, else the annual value."""
        if self._value is None:
            v = self._valuation()
            self._value = (round(v.clv, 2), "clv") if v is not None else (self.ev.score.annual_value, "annual_value")
        return self._value

    def _id(self, kind: str) -> str:
        """The id of the next decision of `kind` (they are numbered from 0 within the cause)."""
        seq = self._made.get(kind, 0)
        self._made[kind] = seq + 1
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
                cause_text=self.cause_text,
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
                cause_text=self.cause_text,
            )
        )

    def action(self, rule: ContactRule, trigger: str) -> ActionRequest:
        """The rule's action after the ROI guard; held out (not sent) when the customer is in the rule's control
        group and the guard would send it."""
        spec = rule.action
        worth, basis = self.value()
        verdict = roi_guard(spec.channel, worth, self.config, basis, rule.name, self.ev.tier)
        if verdict.decision != "skipped" and is_held_out(self.customer_id, rule, self.config):
            verdict = RoiVerdict(
                "held_out",
                verdict.channel,
                0.0,
                f"held out: control group of {rule.name}; else {verdict.decision}: {verdict.reason}",
                verdict.roi_basis,
            )
        action = ActionRequest(
            self._id("action"),
            self.cause,
            self.at_ms,
            rule.name,
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
            cause_text=self.cause_text,
            proposition=self.offer().proposition.name,
            proposition_reason=self.offer().proposition.reason,
            proposition_category=self.offer().proposition.category,
            roi_basis=verdict.roi_basis or "",
        )
        self.out.append(action)
        return action

    def outcome(self, trial: Trial, move: str, churned: bool) -> OutcomeObserved:
        return observed(trial, self._id("outcome"), self.cause, self.at_ms, self.ev.tier, move, churned)
