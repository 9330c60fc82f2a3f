"""Config validation: defaults valid; every error is one line naming the field."""

from __future__ import annotations

import pytest

from scoring import ConfigError, ScoringConfig, parse_config, parse_config_yaml
from scoring.config import SEGMENTS


def test_defaults_are_valid():
    config = ScoringConfig()
    assert config.tier_names == ("AAA", "A", "B", "C")
    assert parse_config({}) == config
    assert parse_config(None) == config
    assert parse_config_yaml("") == config
    assert parse_config_yaml("scoring:\n") == config
    assert set(config.touch_patterns) == set(config.tier_names)
    assert {r.action.channel for r in config.contact_rules} <= set(config.channel_costs)
    assert all(t in config.tier_names for r in config.contact_rules for t in (*r.from_tiers, *r.to_tiers))
    assert all(s in SEGMENTS for r in config.contact_rules for s in r.segments)


def test_config_is_frozen():
    config = ScoringConfig()
    with pytest.raises(Exception, match="frozen"):
        config.window_days = 30  # type: ignore[misc]


def test_yaml_overrides_and_scoring_section():
    text = """
scoring:
  version: rules-7
  window_days: 180
  fx_rates: {EUR: 1.08}
  tiers:
    - {name: gold, min_score: 70}
    - {name: rest, min_score: 0}
  touch_patterns:
    gold: {channel: phone, cadence_days: 14, owner: am}
    rest: {channel: email, cadence_days: 60, owner: crm}
  contact_rules: []
"""
    config = parse_config_yaml(text)
    assert (config.version, config.window_days, config.fx_rates, config.tier_names) == (
        "rules-7", 180, {"EUR": 1.08}, ("gold", "rest"))


_TOUCH = {"AAA": {"channel": "phone", "cadence_days": 30, "owner": "am"}}


@pytest.mark.parametrize(("data", "field"), [
    ({"window_days": -1}, "window_days"),
    ({"window_days": 6}, "window_days"),
    ({"window_days": 3651}, "window_days"),
    ({"window_days": "a year"}, "window_days"),
    ({"max_future_seconds": -1}, "max_future_seconds"),
    ({"recency_days": [90, 30, 180, 365]}, "recency_days"),
    ({"recency_days": [30, 90, 180]}, "recency_days"),
    ({"frequency_counts": [4, 2, 8, 16]}, "frequency_counts"),
    ({"monetary_amounts": [100, 300, 3000, 1000]}, "monetary_amounts"),
    ({"weights": [35, 30]}, "weights"),
    ({"return_tolerance": 1.5}, "return_tolerance"),
    ({"complaint_half_life_days": 0}, "complaint_half_life_days"),
    ({"tiers": [{"name": "C", "min_score": 0}, {"name": "AAA", "min_score": 80}]}, "tiers"),
    ({"tiers": [{"name": "AAA", "min_score": 80}, {"name": "A", "min_score": 60}]}, "tiers"),
    ({"tiers": [{"name": "X", "min_score": 0}, {"name": "X", "min_score": 0}]}, "tiers"),
    ({"tiers": []}, "tiers"),
    ({"tiers": [{"name": "AAA", "min_score": 101}, {"name": "C", "min_score": 0}]}, "tiers.0.min_score"),
    ({"tiers": [{"name": "AAA"}]}, "tiers.0.min_score"),
    ({"tiers": [{"name": "AAA", "min_score": 0}], "touch_patterns": {}, "contact_rules": []}, "touch_patterns"),
    ({"hysteresis_margin": -0.5}, "hysteresis_margin"),
    ({"min_dwell_days": -1}, "min_dwell_days"),
    ({"rising_ratio": 1}, "rising_ratio"),
    ({"declining_ratio": 1}, "declining_ratio"),
    ({"at_risk_gap_multiple": 1}, "at_risk_gap_multiple"),
    ({"at_risk_min_m": 6}, "at_risk_min_m"),
    ({"default_gap_days": 0}, "default_gap_days"),
    ({"roi_max_share": 0}, "roi_max_share"),
    ({"outbox_ttl_seconds": -1}, "outbox_ttl_seconds"),
    ({"touch_patterns": {**_TOUCH, "A": {"channel": "email", "cadence_days": 0, "owner": "x"}}},
     "touch_patterns.A.cadence_days"),
    ({"contact_rules": [{"name": "r", "on": "tier_changed", "action": {"type": "t", "channel": "pigeon"}}]},
     "contact_rules"),
    ({"contact_rules": [{"name": "r", "on": "birthday", "action": {"type": "t", "channel": "email"}}]},
     "contact_rules.0.on"),
    ({"contact_rules": [{"name": "r", "on": "at_risk", "direction": "sideways",
                         "action": {"type": "t", "channel": "email"}}]}, "contact_rules.0.direction"),
    ({"contact_rules": [{"name": "r", "on": "at_risk", "action": {"type": "t", "channel": "email",
                                                               "priority": "asap"}}]},
     "contact_rules.0.action.priority"),
    ({"contact_rules": [{"name": "r", "on": "at_risk"}]}, "contact_rules.0.action"),
    ({"channel_ladder": ["phone", "telegram"]}, "channel_ladder"),
    ({"frequency_caps": {"call": {"max_count": 0}}}, "frequency_caps.call.max_count"),
    ({"frequency_caps": {"call": {"per_days": 0}}}, "frequency_caps.call.per_days"),
    ({"frequency_caps": {"call": {"cooldown_days": -1}}}, "frequency_caps.call.cooldown_days"),
    ({"fx_rates": {"EUR": "lots"}}, "fx_rates.EUR"),
    ({"no_such_setting": 1}, "no_such_setting"),
])
def test_invalid_values_name_the_field_in_one_line(data, field):
    with pytest.raises(ConfigError) as err:
        parse_config(data)
    message = str(err.value)
    assert "\n" not in message
    assert message.startswith("config: ")
    assert field in message, message


@pytest.mark.parametrize("data", [[1, 2], "window_days: 30", 42])
def test_top_level_must_be_a_mapping(data):
    with pytest.raises(ConfigError, match=r"^config: the top level must be a mapping of settings$"):
        parse_config(data)


@pytest.mark.parametrize("text", [
    "window_days: [1, 2\n",
    "a: b: c\n",
    "tiers:\n  - name: A\n   min_score: 3\n",
    "\t- tab\n",
    "key: 'unterminated\n",
    "{{{{",
])
def test_yaml_errors_are_one_line(text):
    with pytest.raises(ConfigError) as err:
        parse_config_yaml(text)
    message = str(err.value)
    assert "\n" not in message
    assert message.startswith("config: not valid YAML")


def test_yaml_error_names_the_line():
    with pytest.raises(ConfigError, match=r"^config: not valid YAML at line 3$"):
        parse_config_yaml("version: x\nwindow_days: 30\nweights: a: b\n")


def test_yaml_value_errors_name_the_field():
    with pytest.raises(ConfigError, match=r"^config: window_days: "):
        parse_config_yaml("scoring:\n  window_days: -5\n")


# --- questionable: values the config accepts but the core cannot work with -------------------

@pytest.mark.parametrize(("rates", "field"), [
    ({"EUR": -1.1}, "fx_rates"),
    ({"EUR": 0}, "fx_rates"),
    ({"EUR": float("nan")}, "fx_rates"),
    ({"EUR": float("inf")}, "fx_rates"),
])
def test_fx_rates_must_be_positive_and_finite(rates, field):
    """A negative rate makes negative bucket cents (encode_state then raises ValueError: varint:
    negative value); NaN/inf make `round()` in fold.to_base_e4 raise ValueError/OverflowError
    inside apply(). parse_config accepts all of them."""
    with pytest.raises(ConfigError, match=field):
        parse_config({"fx_rates": rates})


def test_negative_channel_cost_is_refused():
    """A negative cost ends up in ActionRequest.cost, which schemas.ContactActionRequested refuses
    (cost >= 0), so every action on that channel would fail at the edge."""
    with pytest.raises(ConfigError, match="channel_costs"):
        parse_config({"channel_costs": {"phone": -15.0, "mail": 3.0, "email": 0.1, "online": 0.0}})


@pytest.mark.parametrize(("rule", "field"), [
    ({"to_tiers": ["AA"]}, "contact_rules"),
    ({"from_tiers": ["GOLD"]}, "contact_rules"),
    ({"on": "segment_changed", "segments": ["risng"]}, "contact_rules"),
])
def test_rule_filters_must_name_known_tiers_and_segments(rule, field):
    """A typo in a rule's tier or segment filter makes the rule silently never fire; config.py
    even defines SEGMENTS but never checks rules against it (nor tier names)."""
    data = {"name": "r", "on": "tier_changed", "action": {"type": "t", "channel": "email"}, **rule}
    with pytest.raises(ConfigError, match=field):
        parse_config({"contact_rules": [data]})
