"""Tier assignment: raw thresholds, hysteresis, landing tier and minimum dwell."""

from __future__ import annotations

import pytest

from scoring import assign_tier
from scoring.tiers import raw_tier, tier_rank

TODAY = 20_000
# Defaults: AAA >= 80, A >= 60, B >= 35, C >= 0; hysteresis margin 3; no minimum dwell.


@pytest.mark.parametrize(("composite", "tier"), [
    (100, "AAA"), (80.01, "AAA"), (80, "AAA"), (79.99, "A"),
    (60.01, "A"), (60, "A"), (59.99, "B"),
    (35.01, "B"), (35, "B"), (34.99, "C"),
    (0.01, "C"), (0, "C"),
])
def test_raw_tier_at_every_threshold_edge(composite, tier, cfg):
    assert raw_tier(composite, cfg) == tier
    assert assign_tier(composite, None, None, TODAY, cfg) == tier


@pytest.mark.parametrize(("current", "composite", "expected"), [
    # staying within the margin below the threshold
    ("AAA", 79.99, "AAA"), ("AAA", 77.01, "AAA"), ("AAA", 77, "AAA"),
    ("A", 59.99, "A"), ("A", 57, "A"),
    ("B", 34.99, "B"), ("B", 32, "B"),
    # leaving just below the margin
    ("AAA", 76.99, "A"), ("A", 56.99, "B"), ("B", 31.99, "C"),
    # landing tier when falling from the top: highest lower tier whose threshold - margin is reached
    ("AAA", 57, "A"),     # raw tier would be B, but 57 >= 60 - 3
    ("AAA", 56.99, "B"),
    ("AAA", 32, "B"),     # raw tier would be C, but 32 >= 35 - 3
    ("AAA", 31.99, "C"),
    ("AAA", 0, "C"),
    ("A", 32, "B"), ("A", 31.99, "C"),
    # upward moves need only the threshold, from anywhere
    ("C", 35, "B"), ("C", 34.99, "C"), ("C", 60, "A"), ("C", 80, "AAA"),
    ("B", 80, "AAA"), ("A", 80, "AAA"), ("A", 79.99, "A"), ("B", 59.99, "B"),
    # scores inside the upper band keep the current tier
    ("AAA", 95, "AAA"), ("C", 10, "C"),
])
def test_hysteresis(current, composite, expected, cfg):
    assert assign_tier(composite, current, TODAY - 100, TODAY, cfg) == expected


@pytest.mark.parametrize(("margin", "composite", "expected"), [
    (0, 79.99, "A"), (0, 80, "AAA"),
    (10, 70, "AAA"), (10, 69.99, "A"),
    (10, 50, "A"), (10, 49.99, "B"),
    (25, 55, "AAA"),   # a wide margin: 55 >= 80 - 25
])
def test_hysteresis_margin_is_configurable(margin, composite, expected, config_with):
    assert assign_tier(composite, "AAA", TODAY - 100, TODAY, config_with(hysteresis_margin=margin)) == expected


@pytest.mark.parametrize(("days_in_tier", "composite", "expected"), [
    (0, 10, "AAA"), (29, 10, "AAA"),     # downgrade waits for the dwell
    (30, 10, "C"), (31, 10, "C"),        # dwell over
    (0, 90, "AAA"),
    (29, 50, "AAA"), (30, 50, "B"),
])
def test_min_dwell_delays_downgrades(days_in_tier, composite, expected, config_with):
    config = config_with(min_dwell_days=30)
    assert assign_tier(composite, "AAA", TODAY - days_in_tier, TODAY, config) == expected


def test_min_dwell_never_delays_upgrades(config_with):
    config = config_with(min_dwell_days=30)
    assert assign_tier(85, "B", TODAY, TODAY, config) == "AAA"
    assert assign_tier(60, "C", TODAY, TODAY, config) == "A"


def test_min_dwell_without_since_day_allows_downgrade(config_with):
    assert assign_tier(10, "AAA", None, TODAY, config_with(min_dwell_days=30)) == "C"


def test_unknown_current_tier_is_treated_as_no_tier(cfg):
    assert assign_tier(50, "GOLD", TODAY - 10, TODAY, cfg) == "B"
    assert tier_rank("GOLD", cfg) == len(cfg.tiers)


@pytest.mark.parametrize(("name", "rank"), [("AAA", 0), ("A", 1), ("B", 2), ("C", 3)])
def test_tier_rank(name, rank, cfg):
    assert tier_rank(name, cfg) == rank


def test_custom_tier_ladder(config_with):
    config = config_with(
        tiers=[{"name": "gold", "min_score": 50}, {"name": "base", "min_score": 0}],
        touch_patterns={"gold": {"channel": "phone", "cadence_days": 7, "owner": "am"},
                        "base": {"channel": "email", "cadence_days": 30, "owner": "crm"}},
        contact_rules=[])
    assert assign_tier(50, None, None, TODAY, config) == "gold"
    assert assign_tier(47, "gold", None, TODAY, config) == "gold"
    assert assign_tier(46.99, "gold", None, TODAY, config) == "base"
