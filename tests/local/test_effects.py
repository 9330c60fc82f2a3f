"""The report recovers known true effects: a history where actions work (`streams.local.effects`), measured
with control groups (`scoring.uplift`), over a few seeds; and the history replays into the same decisions."""

from __future__ import annotations

import io
import json

import pytest

from schemas.outputs import ContactOutcome
from scoring.config import parse_config
from scoring.decisions import OutcomeObserved
from scoring.events import MS_PER_DAY
from scoring.uplift import Observation, RuleEffect, effects
from streams.convert import to_core
from streams.local.effects import Simulation, simulate
from streams.offline.replay import ReplayStats, profiles_exact

RULES = [  # every rule holds out half of its customers
    {"name": "winback-email", "on": "at_risk", "holdout_share": 0.5,
     "action": {"type": "winback_email", "channel": "email"}},
    {"name": "vip-call", "on": "tier_changed", "direction": "down", "from_tiers": ["AAA", "A"], "holdout_share": 0.5,
     "action": {"type": "vip_call", "channel": "phone"}},
    {"name": "discount-c", "on": "segment_changed", "segments": ["declining", "lapsed"], "to_tiers": ["C"],
     "holdout_share": 0.5, "action": {"type": "discount_voucher", "channel": "voucher"}},  # does nothing, costs 40
]
COSTS = {"phone": 15.0, "mail": 3.0, "email": 0.1, "online": 0.0, "voucher": 40.0}
CONFIG = parse_config({"tiering": "absolute", "roi_max_share": 100, "contact_rules": RULES, "channel_costs": COSTS})
EFFECTS = {("winback_email", "A"): 0.3, ("winback_email", "AAA"): 0.3, ("vip_call", "A"): 0.3,
           ("vip_call", "B"): 0.25}
SEEDS = (1, 2, 3)
CUSTOMERS, DAYS = 700, 365


def observations(sim: Simulation) -> list[Observation]:
    return [Observation(c, o.rule, o.tier, o.group == "held_out", o.purchases > 0, o.revenue - o.returns,
                        o.tier_move == "up", o.churned, o.cost) for c, o in sim.outcomes]


@pytest.fixture(scope="module", params=SEEDS)
def measured(request: pytest.FixtureRequest) -> tuple[Simulation, dict[str, RuleEffect]]:
    sim = simulate(request.param, CUSTOMERS, DAYS, CONFIG, EFFECTS)
    return sim, {e.rule: e for e in effects(observations(sim)) if e.tier == "*"}


@pytest.mark.parametrize("rule", ["winback-email", "vip-call", "discount-c"])
def test_each_true_effect_lies_in_its_interval(measured: tuple[Simulation, dict[str, RuleEffect]], rule: str):
    sim, found = measured
    e = found[rule].purchase
    assert e.low is not None and e.high is not None
    assert e.low <= sim.truth(rule) <= e.high, (rule, sim.truth(rule), e)


def test_the_rules_that_work_are_told_from_the_one_that_does_not(measured):
    sim, found = measured
    assert sim.truth("winback-email") > 0.03 and sim.truth("vip-call") > 0.03 and sim.truth("discount-c") == 0
    assert found["discount-c"].flagged == "costs more than it brings"
    assert not found["winback-email"].flagged and not found["vip-call"].flagged
    assert sim.extra_purchases > 0


def test_the_history_replays_into_the_same_decisions():
    sim = simulate(9, 150, 300, CONFIG, EFFECTS)
    by_customer: dict = {}
    for message in sim.messages:
        by_customer.setdefault(message.customer_id, []).append(to_core(message))
    last = max(e.at_ms for events in by_customer.values() for e in events) // MS_PER_DAY
    sink = io.StringIO()
    list(profiles_exact(by_customer, last, CONFIG, ReplayStats(), sink))
    replayed = [line for line in sink.getvalue().splitlines() if '"CustomerScore"' not in line]

    assert {json.loads(line)["id"] for line in replayed} == sim.decision_ids
    outcomes = [ContactOutcome.model_validate_json(line) for line in replayed if '"ContactOutcome"' in line]
    assert outcomes and len(outcomes) == len(sim.outcomes)
    assert all(isinstance(o, OutcomeObserved) for _, o in sim.outcomes)
