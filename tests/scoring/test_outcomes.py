"""Control groups and outcome windows: holdout assignment, held-out actions, outcomes kept in state."""

from __future__ import annotations

import pytest

from scoring import NEW_STATE, codec, parse_config, step
from scoring.codec import decode_state, encode_state
from scoring.decisions import ActionRequest, OutcomeObserved
from scoring.events import MS_PER_DAY, CoreEvent, Kind
from scoring.holdout import is_held_out, position
from scoring.money import PER_CENT
from scoring.step import due_reviews
from scoring.trial import Trial

T0 = 20_000
RULE = {"name": "hello", "on": "tier_changed", "direction": "new",
        "action": {"type": "welcome_mail", "channel": "email"}}


def config(share: float = 0.5, days: int = 10, **more: object):
    return parse_config({"tiering": "absolute", "contact_rules": [{**RULE, "holdout_share": share,
                                                                     "outcome_days": days}], **more})


def buy(day: float, cents: int = 5000, id: str | None = None) -> CoreEvent:
    return CoreEvent(Kind.PURCHASE, id or f"p{day}", round(day * MS_PER_DAY), cents * PER_CENT, "USD")


def actions(decisions):
    return [d for d in decisions if isinstance(d, ActionRequest)]


def outcomes(decisions):
    return [d for d in decisions if isinstance(d, OutcomeObserved)]


def test_assignment_is_stable_and_close_to_the_share():
    cfg = config(0.2)
    rule = cfg.contact_rules[0]
    held = [is_held_out(f"c{i}", rule, cfg) for i in range(4000)]
    assert held == [is_held_out(f"c{i}", rule, cfg) for i in range(4000)]  # same answer every time
    assert 0.18 < sum(held) / len(held) < 0.22
    other = config(0.2, holdout_salt="another")
    assert held != [is_held_out(f"c{i}", rule, other) for i in range(4000)]  # a new salt, new groups
    assert position("s", "c1", "a") != position("s", "c1", "b")  # rules draw apart


def test_global_holdout_holds_out_of_every_rule():
    cfg = config(0.0, global_holdout_share=0.3)
    held = sum(is_held_out(f"c{i}", cfg.contact_rules[0], cfg) for i in range(2000)) / 2000
    assert 0.27 < held < 0.33


def test_held_out_action_is_recorded_with_cost_zero_and_the_reason():
    cfg = config(0.5)
    by_group: dict[str, list[ActionRequest]] = {"held_out": [], "approved": []}
    for i in range(60):
        result = step(NEW_STATE, buy(T0), T0 * MS_PER_DAY, f"c{i}", cfg)
        (action,) = actions(result.decisions)
        by_group[action.roi_decision].append(action)
        assert (action.roi_decision == "held_out") == is_held_out(f"c{i}", cfg.contact_rules[0], cfg)
        (trial,) = result.state.trials
        assert (trial.action_id, trial.held_out, trial.days) == (action.id, action.roi_decision == "held_out", 10)
    assert by_group["held_out"] and by_group["approved"]
    held = by_group["held_out"][0]
    assert held.cost == 0.0 and held.reason.startswith("held out: control group of hello; else approved")
    assert by_group["approved"][0].cost == 0.1


def test_no_control_group_no_tracking():
    result = step(NEW_STATE, buy(T0), T0 * MS_PER_DAY, "c1", config(0.0))
    assert actions(result.decisions)[0].roi_decision == "approved" and result.state.trials == ()


def test_a_window_counts_what_happened_and_closes_into_an_outcome():
    cfg = config(0.5, days=10)
    first = buy(T0 + 0.5, id="first")
    state = step(NEW_STATE, first, first.at_ms, "c7", cfg).state
    action_id = state.trials[0].action_id
    events = [buy(T0 + 3, 2000, "second"), CoreEvent(Kind.RETURN, "ret", (T0 + 4) * MS_PER_DAY, 500 * PER_CENT, "USD"),
              buy(T0 + 3, 2000, "second")]  # the last one is a redelivery: counted once
    for event in events:
        state = step(state, event, event.at_ms, "c7", cfg).state
    (trial,) = state.trials
    assert (trial.purchases, trial.revenue_e4, trial.return_e4) == (1, 20_0000, 5_0000)
    assert state.review_day is not None and state.review_day <= trial.close_day == T0 + 11
    closed = [o for r in due_reviews(state, T0 + 20, "c7", cfg) for o in outcomes(r.decisions)]
    (outcome,) = closed
    assert (outcome.action_id, outcome.purchases, outcome.revenue, outcome.returns) == (action_id, 1, 20.0, 5.0)
    assert outcome.cause == f"review@{T0 + 11}" and outcome.window_days == 10
    assert outcome.group == ("held_out" if trial.held_out else "treated")
    final = list(due_reviews(state, T0 + 20, "c7", cfg))[-1].state
    assert final.trials == ()


def test_an_event_after_the_window_closes_it_and_is_not_counted():
    cfg = config(0.5, days=5)
    first = buy(T0, id="first")
    state = step(NEW_STATE, first, first.at_ms, "c8", cfg).state
    late = buy(T0 + 9, 9900, "late")
    result = step(state, late, late.at_ms, "c8", cfg)
    (outcome,) = outcomes(result.decisions)
    assert outcome.purchases == 0 and outcome.revenue == 0.0 and result.state.trials == ()


def test_open_windows_are_bounded():
    cfg = config(0.5, days=30, max_open_outcomes=2)
    rule = {**RULE, "name": "again", "direction": "any", "holdout_share": 0.5}
    cfg = parse_config({**cfg.model_dump(mode="json"), "contact_rules": [rule]})
    state = NEW_STATE
    for day, cents in ((T0, 100), (T0 + 1, 10_000_00), (T0 + 2, 10_000_00)):  # tier changes each time
        event = buy(day, cents, f"e{day}")
        state = step(state, event, event.at_ms, "c9", cfg).state
    assert len(state.trials) <= 2


def test_state_with_trials_round_trips_and_version_2_bytes_still_decode():
    trial = Trial("a" * 32, "hello", "welcome_mail", "email", True, "B", T0 * MS_PER_DAY, 60, 0, 2, 12345, 10)
    state = NEW_STATE._replace(clock_ms=T0 * MS_PER_DAY, trials=(trial,))
    assert decode_state(encode_state(state)) == state
    v6 = encode_state(NEW_STATE._replace(clock_ms=5))
    # no last seen day, no trials, no categories (the last two bytes: their counts, 0)
    v2 = bytes([2]) + v6[1 : codec._HEADER_V3.size] + v6[codec._HEADER.size : -2]
    assert decode_state(v2) == NEW_STATE._replace(clock_ms=5)


@pytest.mark.parametrize("bad", [{"holdout_share": 1.0}, {"holdout_share": -0.1}, {"outcome_days": 0}])
def test_bad_holdout_settings_name_the_field(bad):
    from scoring.errors import ConfigError

    with pytest.raises(ConfigError, match=r"contact_rules\.0"):
        parse_config({"contact_rules": [{**RULE, **bad}]})
