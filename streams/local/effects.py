"""A synthetic history in which contact-plan actions work: a known true effect per action type and tier.

`simulate` steps each generated customer through the scoring core exactly as `replay --exact` does
(events in event-time order, each due review as of its own day). When an action of a type and tier
with an effect is sent (approved or downgraded, not held out), a customer who would not have bought
in the rule's outcome window buys once in it with probability `effect`: an extra purchase, from the
next day on, of the customer's usual size. Held-out customers get nothing. So the true uplift of the
purchase rate is `effect` x the share of treated windows without a purchase otherwise; the
simulation knows that share (it knows the customer's future), and reports the truth per rule and tier,
with the customer as the unit, as `plan-report` measures it.

Decisions depend on purchases, so the history can only be made in this loop; replaying it with the
same config (absolute tiering, or the same calibration) makes the same decisions.
"""

from __future__ import annotations

import heapq
import math
import random
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import datetime
from decimal import Decimal

from schemas.inputs import PurchaseCompleted
from scoring.config import ScoringConfig
from scoring.decisions import ActionRequest, Decision, OutcomeObserved
from scoring.events import MS_PER_DAY, from_ms, to_ms
from scoring.state import NEW_STATE, CustomerState
from scoring.step import StepResult, step
from streams.convert import InputMessage, to_core
from streams.local.generator import CURRENCY, DEFAULT_START, customer_drafts, personas, to_message

Effects = dict[tuple[str, str], float]  # (action type, tier) -> probability a would-be non-buyer buys


@dataclass
class Simulation:
    """The history (time order) and, per (rule, tier), each treated customer's true uplift of the purchase
    rate (the mean over their treated windows of effect x no purchase otherwise)."""

    messages: list[InputMessage] = field(default_factory=list)
    truth_by_customer: dict[tuple[str, str], dict[str, list[float]]] = field(default_factory=dict)
    extra_purchases: int = 0
    outcomes: list[tuple[str, OutcomeObserved]] = field(default_factory=list)  # (customer, outcome) as decided
    decision_ids: set[str] = field(default_factory=set)  # every tier change, action, alert and outcome

    def truth(self, rule: str, tier: str = "*") -> float:
        """The true uplift of the purchase rate of a rule (and tier; "*": every tier), per customer."""
        units: dict[str, list[float]] = {}
        for (r, t), by_customer in self.truth_by_customer.items():
            if r == rule and tier in ("*", t):
                for customer, values in by_customer.items():
                    units.setdefault(customer, []).extend(values)
        means = [sum(v) / len(v) for v in units.values()]
        return sum(means) / len(means) if means else 0.0


class _Customer:
    """One customer's pending events (a heap by event order) and the simulation's random draws."""

    def __init__(self, messages: list[InputMessage], seed: int, index: int, median: float) -> None:
        self.pending = [(to_core(m).at_ms, m.event_id, m) for m in messages]
        heapq.heapify(self.pending)
        self.rng = random.Random(f"tierstream/{seed}/{index}/effects")
        self.median, self.extra = median, 0
        self.added: list[InputMessage] = []

    def buys_between(self, start_ms: int, end_ms: int) -> bool:
        return any(start_ms <= at < end_ms and m.type == "purchase" for at, _, m in self.pending)


def simulate(seed: int, customers: int, days: float, config: ScoringConfig, effects: Effects,
             start: datetime = DEFAULT_START) -> Simulation:
    """The generated history of `customers` over `days`, with the effects of the actions `config` sends."""
    sim = Simulation()
    start_ms = to_ms(start)
    last_day = (start_ms + round(days * MS_PER_DAY) - 1) // MS_PER_DAY
    # without the latent potential: a customer buying more from a day of their own, whatever the contact
    # plan did, only adds noise to the effects measured here (and the tests' seeds were drawn without it)
    for persona in personas(seed, customers, growth=False):
        messages = [to_message(d, seed, start_ms) for d in customer_drafts(persona, seed, days)]
        one = _Customer(messages, seed, persona.index, persona.spend_median)
        for result in _steps(one, persona.customer_id, config, last_day):
            _respond(one, persona.customer_id, result.decisions, config, effects, sim)
        sim.extra_purchases += one.extra
        sim.messages += messages + one.added
    sim.messages.sort(key=lambda m: (to_core(m).at_ms, m.customer_id, m.event_id))
    return sim


def _steps(one: _Customer, customer: str, config: ScoringConfig, last_day: int) -> Iterator[StepResult]:
    """Step the customer as replay --exact does: each due review before the next event's day, then the event;
    reviews up to `last_day` after the last event. Responses may add events while it runs."""
    state: CustomerState = NEW_STATE
    stalled: int | None = None  # a review day that made no progress (as due_reviews, it is not run again)
    while True:
        due = state.review_day
        next_day = one.pending[0][0] // MS_PER_DAY if one.pending else last_day + 1
        if state is not NEW_STATE and due is not None and due != stalled and due < next_day and due <= last_day:
            result = step(state, None, (due + 1) * MS_PER_DAY - 1, customer, config)
            after = None if result.state is None else result.state.review_day
            stalled = due if after is not None and after <= due else None
            state = NEW_STATE if result.state is None else result.state  # forgotten (retention): a new one
            yield result
            continue
        if not one.pending:
            return
        _, _, message = heapq.heappop(one.pending)
        event = to_core(message)
        result = step(state, event, event.at_ms, customer, config)
        state, stalled = NEW_STATE if result.state is None else result.state, None
        yield result


def _respond(one: _Customer, customer: str, decisions: tuple[Decision, ...], config: ScoringConfig,
             effects: Effects, sim: Simulation) -> None:
    rules = {r.name: r for r in config.contact_rules}
    for d in decisions:
        if d.kind != "score":
            sim.decision_ids.add(d.id)
        if isinstance(d, OutcomeObserved):
            sim.outcomes.append((customer, d))
        if not isinstance(d, ActionRequest) or d.roi_decision not in ("approved", "downgraded"):
            continue
        effect = effects.get((d.action_type, d.tier), 0.0)
        days = rules[d.rule].outcome_days
        would_buy = one.buys_between(d.at_ms, d.at_ms + days * MS_PER_DAY)
        truth = sim.truth_by_customer.setdefault((d.rule, d.tier), {})
        truth.setdefault(customer, []).append(0.0 if would_buy else effect)
        if would_buy or one.rng.random() >= effect:
            continue
        day = d.at_ms // MS_PER_DAY + 1  # from the next day: the decision's day is evaluated as it was
        at_ms = day * MS_PER_DAY + round(one.rng.uniform(0, max(days - 2, 0)) * MS_PER_DAY)
        cents = max(100, round(one.rng.lognormvariate(math.log(one.median), 0.4) * 100))
        one.extra += 1
        message = _purchase(customer, f"fx-{customer}-{one.extra}", at_ms, cents)
        one.added.append(message)
        heapq.heappush(one.pending, (at_ms, message.event_id, message))


def _purchase(customer: str, event_id: str, at_ms: int, cents: int) -> PurchaseCompleted:
    return PurchaseCompleted(event_id=event_id, customer_id=customer, occurred_at=from_ms(at_ms),
                             amount=Decimal(cents).scaleb(-2), currency=CURRENCY, order_id=event_id)

