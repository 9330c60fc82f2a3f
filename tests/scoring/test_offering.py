"""Potential and the value x potential cell, the satisfaction grade, the next best proposition."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from scoring import NEW_STATE, ConfigError, ScoringConfig, parse_config, step
from scoring.decisions import Alert, PotentialChange
from scoring.offering import assess_offering
from scoring.potential import cell_of, high_value_tiers, potential_score, trend_share
from scoring.proposition import Situation, propose
from scoring.rfm import score
from scoring.satisfaction import grade
from scoring.step import previous_offering
from scoring.valuemodel.scalar import CustomerValue
from tests.scoring.conftest import T0, make_complaint, make_enquiry, make_purchase, make_return

CUST = "cust-1"


# --- potential ---------------------------------------------------------------------------------

def _scored(events, day, cfg):
    from tests.scoring.conftest import fold_events

    state = fold_events(events, day, cfg)
    return state, score(state, day, cfg)


@pytest.mark.parametrize(
    ("recent", "previous", "share"), [(0, 0, 0.0), (100, 0, 1.0), (100, 100, 0.5), (50, 150, 0.25)]
)
def test_trend_share_is_the_latest_periods_share(recent, previous, share, cfg):
    events = [make_purchase(T0 - 100, previous)] if previous else []
    events += [make_purchase(T0 - 5, recent)] if recent else []
    events += [make_enquiry(T0 - 300)]  # a customer with no purchase in either period still has a state
    _, s = _scored(events, T0, cfg)
    assert trend_share(s) == pytest.approx(share)


def test_rule_fallback_weighs_trend_and_frequency(cfg, config_with):
    events = [make_purchase(T0 - d, 10) for d in (60, 40, 20, 5)]  # 4 purchases, all recent: F=3
    _, s = _scored(events, T0, cfg)
    assert (s.f, trend_share(s)) == (3, 1.0)
    assert potential_score(s, None, cfg) == 0.5 * 1.0 + 0.5 * 0.5
    assert potential_score(s, None, config_with(potential={"trend_weight": 0.0})) == 0.5


def test_model_potential_is_p_alive_times_trend_and_reach(cfg):
    events = [make_purchase(T0 - 200, 10), make_purchase(T0 - 5, 10)]
    _, s = _scored(events, T0, cfg)
    rich = CustomerValue(p_alive=0.8, expected_90=1, expected_365=4, clv=5000.0, at_risk_score=0.1)
    poor = CustomerValue(p_alive=0.8, expected_90=1, expected_365=4, clv=0.0, at_risk_score=0.1)
    # CLV 5000 over 12 months scaled to the 365-day window reaches the top M rank (reach 1)
    assert potential_score(s, rich, cfg) == pytest.approx(0.8 * (0.5 * 1.0 + 0.5 * 1.0))
    assert potential_score(s, poor, cfg) == pytest.approx(0.8 * 0.5)


@pytest.mark.parametrize(("tier", "potential", "cell"), [
    ("AAA", 0.9, "invest"), ("A", 0.1, "harvest"), ("B", 0.6, "develop"), ("C", 0.59, "maintain"),
])
def test_cells_cross_value_and_potential(tier, potential, cell, cfg):
    assert cell_of(tier, potential, cfg) == cell


def test_cell_names_and_high_value_tiers_come_from_config(config_with):
    c = config_with(potential={"high_value_tiers": ["AAA"], "cells": {"low_value_high_potential": "grow"}})
    assert high_value_tiers(c) == ("AAA",)
    assert cell_of("A", 0.7, c) == "grow"
    assert high_value_tiers(ScoringConfig()) == ("AAA", "A")


# --- satisfaction ------------------------------------------------------------------------------

@pytest.mark.parametrize(("extra", "expected"), [
    ([], "very_satisfied"),
    ([make_enquiry(T0 - 2)], "satisfied"),
    ([make_complaint(T0 - 100, severity=3)], "satisfied"),  # decayed once, not recent: 7.5 points
    ([make_complaint(T0 - 2, severity=2)], "neutral"),  # 10 + 10 recent
    ([make_complaint(T0 - 2, severity=4)], "disappointed"),  # 20 + 10 recent
    ([make_return(T0 - 3, 180)], "disappointed"),  # return rate 0.45: 35 points
    ([make_complaint(T0 - 2, severity=5), make_complaint(T0 - 1, severity=5)], "very_disappointed"),
])
def test_grades_follow_the_points(extra, expected, cfg):
    events = [make_purchase(T0 - 30, 200), make_purchase(T0 - 10, 200), *extra]
    state, s = _scored(events, T0, cfg)
    sat = grade(state, s, cfg)
    assert sat.grade == expected, sat
    assert sat.points == pytest.approx(sum(p for _, _, p in sat.components))
    assert sat.explanation().startswith(f"{expected}: ")


def test_one_purchase_is_satisfied_not_very(cfg):
    state, s = _scored([make_purchase(T0, 50)], T0, cfg)
    assert grade(state, s, cfg).grade == "satisfied"
    assert grade(state, s, cfg).explanation() == "satisfied: no complaint, returns within tolerance"


# --- propositions ------------------------------------------------------------------------------

@pytest.mark.parametrize(("situation", "name", "rule"), [
    (Situation("AAA", "invest", "active", "disappointed", False), "service_review", "service-review"),
    (Situation("C", "maintain", "bad_business", "neutral", False), "account_review", "account-review"),
    (Situation("A", "harvest", "declining", "satisfied", True), "loyalty_reward", "keep-at-risk"),
    (Situation("B", "develop", "rising", "satisfied", False), "upsell", "develop"),
    (Situation("AAA", "invest", "active", "very_satisfied", False), "cross_sell", "invest"),
    (Situation("C", "maintain", "lapsed", "satisfied", False), "move_online_only", "maintain"),
])
def test_first_matching_rule_proposes(situation, name, rule, cfg):
    proposal = propose(situation, cfg)
    assert (proposal.name, proposal.rule) == (name, rule)
    assert proposal.reason


def test_custom_rules_and_fallback(config_with):
    c = config_with(propositions={"rules": [{"name": "vip", "proposition": "vip_event", "tiers": ["AAA"],
                                             "satisfaction": ["very_satisfied"]}], "fallback": "keep_in_touch"})
    assert propose(Situation("AAA", "invest", "active", "very_satisfied", False), c).reason == (
        "tier AAA, satisfaction very_satisfied")
    assert propose(Situation("A", "invest", "active", "very_satisfied", False), c).name == "keep_in_touch"


@pytest.mark.parametrize(("data", "field"), [
    ({"potential": {"cells": {"low_value_high_potential": "maintain"}}}, "potential.cells"),
    ({"potential": {"threshold": 1.5}}, "potential.threshold"),
    ({"potential": {"high_value_tiers": ["Z"]}}, "potential.high_value_tiers"),
    ({"satisfaction": {"grade_cuts": [10, 0, 20, 30]}}, "satisfaction.grade_cuts"),
    ({"satisfaction": {"alert_grade": "sad"}}, "satisfaction.alert_grade"),
    ({"propositions": {"rules": [{"name": "x", "proposition": "y", "cells": ["nowhere"]}]}},
     "propositions.rules.0.cells"),
    ({"propositions": {"rules": [{"name": "x", "proposition": "y", "colour": "red"}]}}, "propositions.rules.0.colour"),
    ({"contact_rules": [{"name": "r", "on": "potential_changed", "cells": ["nowhere"],
                         "action": {"type": "t", "channel": "email"}}]}, "contact_rules"),
])
def test_bad_offering_config_names_the_field(data, field):
    with pytest.raises(ConfigError) as err:
        parse_config(data)
    assert field in str(err.value) and "\n" not in str(err.value)


# --- decisions ---------------------------------------------------------------------------------

def _run(events, cfg):
    state, results = NEW_STATE, []
    for event in events:
        result = step(state, event, event.at_ms, CUST, cfg)
        results.append(result)
        state = result.state
    return results


def test_entering_develop_is_announced_once(cfg):
    events = [make_purchase(T0, 10), make_purchase(T0 + 10, 10), make_purchase(T0 + 20, 10)]
    results = _run(events, cfg)
    changes = [[d for d in r.decisions if isinstance(d, PotentialChange)] for r in results]
    assert [len(c) for c in changes] == [0, 1, 0]
    (change,) = changes[1]
    assert (change.from_cell, change.to_cell, change.tier, change.basis) == ("maintain", "develop", "B", "rules")
    assert (change.previous_potential, change.potential, change.proposition) == (0.5, 0.625, "upsell")
    assert any(d.kind == "score" for d in results[1].decisions)  # the profile shows the new cell


def test_contact_rules_can_match_cells_and_potential_changes(config_with):
    rule = {"name": "grow", "on": "potential_changed", "cells": ["develop"],
            "action": {"type": "upsell_offer", "channel": "email"}}
    c = config_with(contact_rules=[rule])
    results = _run([make_purchase(T0, 10), make_purchase(T0 + 10, 10)], c)
    actions = [d for d in results[1].decisions if d.kind == "action"]
    assert [(a.rule, a.trigger, a.proposition) for a in actions] == [("grow", "potential_changed", "upsell")]


def test_top_tier_customer_sliding_to_disappointed_alerts_once(cfg, weekly, stepper):
    state, _ = stepper(weekly(T0, 52, 100.0), cfg, customer=CUST)
    assert state.tier == "AAA"
    last = T0 + 7 * 51
    first = step(state, make_return(last + 1, 2000, id="r1"), make_return(last + 1, 2000).at_ms, CUST, cfg)
    alerts = [d for d in first.decisions if isinstance(d, Alert)]
    assert [a.alert_kind for a in alerts] == ["satisfaction_drop"]
    assert "from very_satisfied to disappointed" in alerts[0].reason
    again = step(first.state, make_return(last + 2, 100, id="r2"), make_return(last + 2, 100).at_ms, CUST, cfg)
    assert not [d for d in again.decisions if isinstance(d, Alert)]


events_strategy = st.lists(
    st.tuples(st.integers(0, 400), st.sampled_from(["p", "r", "c", "e"]), st.integers(1, 400)),
    min_size=1, max_size=25,
)


@settings(max_examples=40, deadline=None)
@given(events_strategy)
def test_potential_changes_are_exactly_the_entries_into_develop(raw):
    cfg = ScoringConfig()
    makers = {"p": lambda d, a: make_purchase(T0 + d, a), "r": lambda d, a: make_return(T0 + d, a / 4),
              "c": lambda d, a: make_complaint(T0 + d, 1 + a % 5), "e": lambda d, a: make_enquiry(T0 + d)}
    events = sorted((makers[k](d, a) for d, k, a in raw), key=lambda e: e.at_ms)
    state, published = NEW_STATE, None
    for event in events:
        result = step(state, event, event.at_ms, CUST, cfg)
        if result.outcome != "applied":
            continue
        now = previous_offering(result.state, cfg, None)  # what this step published
        assert now is not None and result.evaluation is not None
        direct = assess_offering(result.state, result.evaluation.score, result.evaluation.tier,
                                 result.evaluation.segment, result.evaluation.risk.is_at_risk, None, cfg)
        assert now == direct
        entered = now.potential.cell == "develop" and (published is None or published.potential.cell != "develop")
        fired = [d for d in result.decisions if isinstance(d, PotentialChange)]
        assert all(d.to_cell == "develop" and d.from_cell != "develop" for d in fired)
        reviewed = state.review_day is not None and state.review_day < event.at_ms // 86_400_000
        if not reviewed:  # else reviews before the event evaluated (and may have left and re-entered) in between
            assert len(fired) == int(entered)
        state, published = result.state, now
