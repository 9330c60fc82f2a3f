"""Contact plan: rule matching, the ROI guard and frequency caps."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from scoring import check_frequency_cap, roi_guard
from scoring.config import ActionSpec, ContactRule
from scoring.plan import Trigger, matches, matching_rules

DAY_S = 86_400
NOW_S = 1_700_000_000.0


# --- rule matching -----------------------------------------------------------------------------

def _rule(on="tier_changed", **kw):
    return ContactRule(name="r", on=on, action=ActionSpec(type="t", channel="email"), **kw)


@pytest.mark.parametrize(("rule_kw", "trigger", "expected"), [
    # direction
    ({"direction": "up"}, Trigger("tier_changed", "A", "B", "up"), True),
    ({"direction": "up"}, Trigger("tier_changed", "B", "A", "down"), False),
    ({"direction": "up"}, Trigger("tier_changed", "B", None, "new"), False),
    ({"direction": "down"}, Trigger("tier_changed", "B", "A", "down"), True),
    ({"direction": "down"}, Trigger("tier_changed", "A", "B", "up"), False),
    ({"direction": "any"}, Trigger("tier_changed", "A", "B", "up"), True),
    ({"direction": "any"}, Trigger("tier_changed", "B", "A", "down"), True),
    ({"direction": "any"}, Trigger("tier_changed", "B", None, "new"), True),
    # to filter
    ({"to_tiers": ("AAA",)}, Trigger("tier_changed", "AAA", "A", "up"), True),
    ({"to_tiers": ("AAA",)}, Trigger("tier_changed", "A", "B", "up"), False),
    ({"to_tiers": ("A", "B")}, Trigger("tier_changed", "B", "C", "up"), True),
    # from filter
    ({"from_tiers": ("AAA", "A")}, Trigger("tier_changed", "B", "A", "down"), True),
    ({"from_tiers": ("AAA", "A")}, Trigger("tier_changed", "C", "B", "down"), False),
    ({"from_tiers": ("AAA", "A")}, Trigger("tier_changed", "A", None, "new"), False),
    # from + to + direction together
    ({"from_tiers": ("A",), "to_tiers": ("AAA",), "direction": "up"}, Trigger("tier_changed", "AAA", "A", "up"), True),
    ({"from_tiers": ("B",), "to_tiers": ("AAA",), "direction": "up"}, Trigger("tier_changed", "AAA", "A", "up"), False),
    # trigger kind must match
    ({}, Trigger("segment_changed", "A", "A", "", "rising"), False),
    ({}, Trigger("at_risk", "A", "A", "", "active"), False),
    # segments
    ({"on": "segment_changed", "segments": ("rising",)}, Trigger("segment_changed", "B", "B", "", "rising"), True),
    ({"on": "segment_changed", "segments": ("rising",)}, Trigger("segment_changed", "B", "B", "", "active"), False),
    ({"on": "segment_changed", "segments": ("rising",), "to_tiers": ("B", "C")},
     Trigger("segment_changed", "A", "A", "", "rising"), False),
    ({"on": "segment_changed"}, Trigger("segment_changed", "A", "A", "", "lapsed"), True),
    ({"on": "at_risk"}, Trigger("at_risk", "AAA", "AAA", "", "active"), True),
    ({"on": "at_risk", "segments": ("active",)}, Trigger("at_risk", "AAA", "AAA", "", "declining"), False),
    ({"on": "top_tier_complaint"}, Trigger("top_tier_complaint", "AAA", "AAA", "", "active"), True),
    ({"on": "top_tier_complaint", "to_tiers": ("AAA",)}, Trigger("top_tier_complaint", "A", "AAA", "", "active"),
     False),
])
def test_rule_matching(rule_kw, trigger, expected):
    on = rule_kw.pop("on", "tier_changed")
    assert matches(_rule(on=on, **rule_kw), trigger) is expected


@pytest.mark.parametrize(("trigger", "rule_names"), [
    (Trigger("tier_changed", "AAA", "A", "up", "active"), ["welcome-top-tier"]),
    (Trigger("tier_changed", "A", "B", "up", "active"), ["thank-upgrade"]),
    (Trigger("tier_changed", "B", "C", "up", "active"), ["thank-upgrade"]),
    (Trigger("tier_changed", "A", "AAA", "down", "active"), ["win-back-downgrade"]),
    (Trigger("tier_changed", "C", "A", "down", "active"), ["win-back-downgrade"]),
    (Trigger("tier_changed", "C", "B", "down", "active"), []),
    (Trigger("tier_changed", "AAA", None, "new", "new"), ["welcome-top-tier"]),   # straight into the top tier
    (Trigger("tier_changed", "B", None, "new", "new"), []),
    (Trigger("at_risk", "A", "A", "", "declining"), ["retain-at-risk"]),
    (Trigger("top_tier_complaint", "AAA", "AAA", "", "active"), ["top-tier-complaint"]),
    (Trigger("segment_changed", "A", "A", "", "bad_business"), ["review-bad-business"]),
    (Trigger("segment_changed", "B", "B", "", "rising"), ["nurture-rising"]),
    (Trigger("segment_changed", "A", "A", "", "rising"), []),
    (Trigger("segment_changed", "C", "C", "", "lapsed"), []),
])
def test_default_rules(trigger, rule_names, cfg):
    assert [r.name for r in matching_rules(trigger, cfg)] == rule_names


# --- ROI guard ------------------------------------------------------------------------------
# Defaults: phone 15, mail 3, email 0.1, online 0; an action may cost 10% of the annual value.

@pytest.mark.parametrize(("channel", "annual", "decision", "to", "cost", "reason"), [
    ("phone", 150, "approved", "phone", 15, "phone costs 15.00 <= budget 15.00"),
    ("phone", 10_000, "approved", "phone", 15, "phone costs 15.00 <= budget 1000.00"),
    ("phone", 149.99, "downgraded", "mail", 3,
     "phone costs 15.00 > 10% of annual value 149.99; downgraded to mail (3.00)"),
    ("phone", 30, "downgraded", "mail", 3, "phone costs 15.00 > 10% of annual value 30.00; downgraded to mail (3.00)"),
    ("phone", 29.99, "downgraded", "email", 0.1,
     "phone costs 15.00 > 10% of annual value 29.99; downgraded to email (0.10)"),
    ("phone", 1, "downgraded", "email", 0.1,
     "phone costs 15.00 > 10% of annual value 1.00; downgraded to email (0.10)"),
    ("phone", 0.99, "downgraded", "online", 0,
     "phone costs 15.00 > 10% of annual value 0.99; downgraded to online (0.00)"),
    ("phone", 0, "downgraded", "online", 0,
     "phone costs 15.00 > 10% of annual value 0.00; downgraded to online (0.00)"),
    ("mail", 30, "approved", "mail", 3, "mail costs 3.00 <= budget 3.00"),
    ("mail", 29.99, "downgraded", "email", 0.1,
     "mail costs 3.00 > 10% of annual value 29.99; downgraded to email (0.10)"),
    ("email", 1, "approved", "email", 0.1, "email costs 0.10 <= budget 0.10"),
    ("email", 0.5, "downgraded", "online", 0,
     "email costs 0.10 > 10% of annual value 0.50; downgraded to online (0.00)"),
    ("online", 0, "approved", "online", 0, "online costs 0.00 <= budget 0.00"),
])
def test_roi_guard_default_ladder(channel, annual, decision, to, cost, reason, cfg):
    verdict = roi_guard(channel, annual, cfg)
    assert (verdict.decision, verdict.channel, verdict.cost, verdict.reason) == (decision, to, cost, reason)


@pytest.mark.parametrize(("channel", "annual", "decision", "to", "cost", "reason"), [
    ("phone", 0, "skipped", "phone", 0.0,
     "phone costs 15.00 > 10% of annual value 0.00; no cheaper channel fits, skipped"),
    ("email", 0.49, "skipped", "email", 0.0,
     "email costs 0.10 > 10% of annual value 0.49; no cheaper channel fits, skipped"),
    ("online", 0.5, "approved", "online", 0.05, "online costs 0.05 <= budget 0.05"),
    ("online", 0.4, "skipped", "online", 0.0,
     "online costs 0.05 > 10% of annual value 0.40; no cheaper channel fits, skipped"),
    # a channel outside the ladder cannot be downgraded
    ("sms", 5, "skipped", "sms", 0.0, "sms costs 1.00 > 10% of annual value 5.00; no cheaper channel fits, skipped"),
    ("sms", 10, "approved", "sms", 1.0, "sms costs 1.00 <= budget 1.00"),
])
def test_roi_guard_skips_when_nothing_fits(channel, annual, decision, to, cost, reason, config_with):
    config = config_with(channel_costs={"phone": 15, "mail": 3, "email": 0.1, "online": 0.05, "sms": 1})
    verdict = roi_guard(channel, annual, config)
    assert (verdict.decision, verdict.channel, verdict.cost, verdict.reason) == (decision, to, cost, reason)


def test_roi_share_is_configurable(config_with):
    config = config_with(roi_max_share=0.5)
    assert roi_guard("phone", 30, config).decision == "approved"
    assert "50% of annual value" in roi_guard("phone", 29, config).reason


# --- frequency caps ---------------------------------------------------------------------------

def _caps(**cap):
    return {"frequency_caps": {"call": cap}}


@pytest.mark.parametrize(("cap", "ages_days", "allowed", "reason", "retry_in_days"), [
    # no cap configured for the type
    (None, [0.1, 0.2], True, "no cap", None),
    # count cap
    ({"max_count": 1, "per_days": 7}, [], True, "within cap", None),
    ({"max_count": 1, "per_days": 7}, [1], False, "cap of 1 per 7 days reached", 6),
    ({"max_count": 1, "per_days": 7}, [6.5], False, "cap of 1 per 7 days reached", 0.5),
    ({"max_count": 1, "per_days": 7}, [7], True, "within cap", None),          # exactly a window old
    ({"max_count": 1, "per_days": 7}, [30, 8], True, "within cap", None),
    ({"max_count": 2, "per_days": 7}, [3], True, "within cap", None),
    ({"max_count": 2, "per_days": 7}, [3, 1], False, "cap of 2 per 7 days reached", 4),
    ({"max_count": 2, "per_days": 7}, [6, 3, 1], False, "cap of 2 per 7 days reached", 4),
    ({"max_count": 2, "per_days": 7}, [1, 6, 3], False, "cap of 2 per 7 days reached", 4),   # any order
    ({"max_count": 3, "per_days": 30}, [29, 20, 10], False, "cap of 3 per 30 days reached", 1),
    ({"max_count": 2, "per_days": 0.5}, [0.25, 0.1], False, "cap of 2 per 0.5 days reached", 0.25),
    # cooldown
    ({"max_count": 10, "per_days": 7, "cooldown_days": 2}, [1], False, "cooldown of 2 days", 1),
    ({"max_count": 10, "per_days": 7, "cooldown_days": 2}, [5, 1.5], False, "cooldown of 2 days", 0.5),
    ({"max_count": 10, "per_days": 7, "cooldown_days": 2}, [2], True, "within cap", None),
    ({"max_count": 10, "per_days": 7, "cooldown_days": 2}, [5, 3], True, "within cap", None),
    ({"max_count": 10, "per_days": 7, "cooldown_days": 0.5}, [0.25], False, "cooldown of 0.5 days", 0.25),
])
def test_frequency_cap(cap, ages_days, allowed, reason, retry_in_days, config_with):
    config = config_with(**(_caps(**cap) if cap else {}))
    sent = [NOW_S - a * DAY_S for a in ages_days]
    decision = check_frequency_cap("call", sent, NOW_S, config)
    assert (decision.allowed, decision.reason) == (allowed, reason)
    if retry_in_days is None:
        assert decision.retry_at_s is None
    else:
        assert decision.retry_at_s == pytest.approx(NOW_S + retry_in_days * DAY_S)
        assert check_frequency_cap("call", sent, decision.retry_at_s, config).allowed


def test_frequency_cap_applies_per_action_type(config_with):
    config = config_with(**_caps(max_count=1, per_days=7))
    assert check_frequency_cap("other", [NOW_S - 60], NOW_S, config).allowed
    assert not check_frequency_cap("call", [NOW_S - 60], NOW_S, config).allowed


def test_retry_time_honours_both_cooldown_and_count_cap(config_with):
    """When both the cooldown and the count cap block a send, `retry_at_s` is the cooldown's end,
    at which the count cap still blocks: the action is retried, refused again, and only then
    given the real time. The retry time should be the later of the two."""
    config = config_with(**_caps(max_count=1, per_days=7, cooldown_days=1))
    sent = [NOW_S - 0.5 * DAY_S]
    decision = check_frequency_cap("call", sent, NOW_S, config)
    assert not decision.allowed
    assert check_frequency_cap("call", sent, decision.retry_at_s, config).allowed, (
        f"retry at +{(decision.retry_at_s - NOW_S) / DAY_S:g} days is still refused")


@settings(max_examples=150, deadline=None)
@given(
    max_count=st.integers(1, 4),
    per_days=st.sampled_from([0.5, 1, 7, 30]),
    cooldown_days=st.sampled_from([0, 0.25, 1, 3]),
    ages=st.lists(st.floats(0, 40, allow_nan=False), max_size=6),
)
def test_retry_time_is_when_the_action_becomes_allowed(max_count, per_days, cooldown_days, ages, config_with):
    config = config_with(**_caps(max_count=max_count, per_days=per_days, cooldown_days=cooldown_days))
    sent = [NOW_S - a * DAY_S for a in ages]
    decision = check_frequency_cap("call", sent, NOW_S, config)
    if decision.allowed:
        assert decision.retry_at_s is None
    else:
        assert decision.retry_at_s is not None and decision.retry_at_s > NOW_S
        assert check_frequency_cap("call", sent, decision.retry_at_s, config).allowed
