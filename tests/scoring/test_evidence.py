"""The ROI guard on evidence (opt-in): the evidence artefact, and when the guard switches from the configured
value share to the measured uplift, and why."""

from __future__ import annotations

import json
from dataclasses import replace

import pytest

from scoring.calibration import make_calibration
from scoring.config import ScoringConfig, parse_config
from scoring.evidence import Evidence, EvidenceError, evidence_from_json, make_evidence
from scoring.plan import roi_guard
from scoring.uplift import Observation, effects


def _observations(rule: str, tier: str, treated: int, held: int, bought_t: int, bought_h: int) -> list[Observation]:
    """`treated` + `held` customers of `rule` in `tier`; the first `bought_*` of each group bought (revenue 100)."""
    out = []
    for i in range(treated):
        out.append(Observation(f"t{i}", rule, tier, False, i < bought_t, 100.0 * (i < bought_t), False, False, 1.0))
    for i in range(held):
        out.append(Observation(f"h{i}", rule, tier, True, i < bought_h, 100.0 * (i < bought_h), False, False, 0.0))
    return out


def _evidence(*groups: list[Observation]) -> Evidence:
    observations = [o for g in groups for o in g]
    return make_evidence(effects(observations), len(observations))


# 400 treated (30 % bought) against 400 held out (20 %): +10 points, interval about [+4.1, +15.9]
WORKS = _observations("vip-call", "A", 400, 400, 120, 80)
# 400 treated (10 %) against 400 held out (30 %): -20 points, the interval entirely below zero
HARMS = _observations("vip-call", "B", 400, 400, 40, 120)
# 50 in each group: too few for min_outcomes 200
FEW = _observations("vip-call", "C", 50, 50, 25, 5)
EVIDENCE = _evidence(WORKS, HARMS, FEW)


def _on(**kw) -> ScoringConfig:
    return parse_config({"roi_evidence": {"enabled": True, "min_outcomes": 200, **kw}}).with_evidence(EVIDENCE)


def test_the_artefact_round_trips_and_its_version_follows_the_content():
    text = EVIDENCE.to_json()
    assert evidence_from_json(text) == EVIDENCE
    assert EVIDENCE.version.startswith("ev-") and EVIDENCE.outcomes == 1700
    a = EVIDENCE.find("vip-call", "A")
    assert a is not None and (a.treated, a.held_out) == (400, 400)
    assert a.purchase_uplift == pytest.approx(0.10) and a.purchase_low < 0.10 < a.purchase_high
    assert a.revenue_uplift == pytest.approx(10.0)
    assert EVIDENCE.find("vip-call", "*") is not None and EVIDENCE.find("other", "A") is None
    assert _evidence(WORKS).version != EVIDENCE.version

    doc = json.loads(text)
    doc["rules"][0]["treated"] += 1
    with pytest.raises(EvidenceError, match="does not match the content"):
        evidence_from_json(json.dumps(doc))
    doc = json.loads(text)
    doc["rules"][0]["purchase_low"] = None
    with pytest.raises(EvidenceError, match=r"rules\.0: purchase_low and purchase_high: give both or neither"):
        evidence_from_json(json.dumps(doc))
    with pytest.raises(EvidenceError, match="not valid JSON"):
        evidence_from_json("{")


def test_disabled_the_guard_is_unchanged_even_with_evidence_loaded():
    plain = ScoringConfig()
    loaded = plain.with_evidence(EVIDENCE)
    for channel, worth in [("phone", 100.0), ("phone", 200.0), ("mail", 10.0), ("email", 0.5)]:
        for tier in ("A", "B", "C"):
            expected = roi_guard(channel, worth, plain)
            got = roi_guard(channel, worth, loaded, "annual_value", "vip-call", tier)
            assert got == expected and got.roi_basis is None


def test_enough_outcomes_switch_the_budget_to_the_measured_uplift_times_the_customer_value():
    config = _on()
    verdict = roi_guard("phone", 200.0, config, "annual_value", "vip-call", "A")
    assert verdict.decision == "approved"
    assert verdict.reason == "phone costs 15.00 <= budget 20.00"
    a = EVIDENCE.find("vip-call", "A")
    assert a is not None and a.purchase_low is not None and a.purchase_high is not None
    assert verdict.roi_basis == (
        f"evidence {EVIDENCE.version}: purchase-rate uplift +10.0 pts [{a.purchase_low * 100:+.1f}, "
        f"{a.purchase_high * 100:+.1f}] x annual value 200.00 over 400 treated / 400 held out in A"
    )
    # a share of 50 % allows a 15.00 call for a customer worth 100; the evidence (+10 points x 100 = 10) does not
    config_half = _on().model_copy(update={"roi_max_share": 0.5})
    assert roi_guard("phone", 100.0, config_half).decision == "approved"  # 50 % of 100
    on_evidence = roi_guard("phone", 100.0, config_half, "annual_value", "vip-call", "A")
    assert on_evidence.decision == "downgraded" and on_evidence.channel == "mail"
    assert on_evidence.reason == "phone costs 15.00 > expected incremental value 10.00; downgraded to mail (3.00)"


def test_too_few_outcomes_keep_the_configured_share_and_say_why():
    config = _on()
    verdict = roi_guard("phone", 100.0, config, "annual_value", "vip-call", "C")
    assert verdict == replace(
        roi_guard("phone", 100.0, ScoringConfig()),
        roi_basis=f"configured share: evidence {EVIDENCE.version}: 50 treated / 50 held out in C, fewer than 200 in "
        "a group",
    )
    # the same evidence switches once the threshold is met
    assert roi_guard("phone", 100.0, _on(min_outcomes=50), "annual_value", "vip-call", "C").roi_basis.startswith(
        f"evidence {EVIDENCE.version}: purchase-rate uplift +40.0 pts"
    )
    unknown = roi_guard("phone", 100.0, config, "annual_value", "winback", "A")
    assert unknown.roi_basis == f"configured share: evidence {EVIDENCE.version} has no outcome of winback in A"
    none = roi_guard("phone", 100.0, parse_config({"roi_evidence": {"enabled": True}}), "annual_value", "r", "A")
    assert none.roi_basis == "configured share: no evidence loaded" and none.decision == "downgraded"


def test_an_interval_entirely_below_zero_skips_the_rule():
    verdict = roi_guard("email", 5000.0, _on(), "annual_value", "vip-call", "B")
    assert verdict.decision == "skipped" and verdict.cost == 0.0
    assert verdict.roi_basis is not None and verdict.roi_basis.startswith(
        f"evidence {EVIDENCE.version}: purchase-rate uplift -20.0 pts"
    )
    assert verdict.reason == f"{verdict.roi_basis}: its 95 % interval lies entirely below zero; skipped"


def test_the_revenue_measure_uses_the_uplift_of_revenue_per_customer_times_the_margin():
    config = _on(measure="revenue").model_copy(update={"value_margin": 0.5})
    verdict = roi_guard("phone", 1.0, config, "clv", "vip-call", "A")  # +10.00 x 0.5 = 5: mail fits
    assert (verdict.decision, verdict.channel) == ("downgraded", "mail")
    assert verdict.reason == "phone costs 15.00 > expected incremental value 5.00; downgraded to mail (3.00)"
    assert verdict.roi_basis is not None and "revenue uplift +10.00 [" in verdict.roi_basis
    assert verdict.roi_basis.endswith("per customer x margin 0.5 over 400 treated / 400 held out in A")


def test_a_calibration_keeps_the_evidence():
    config = _on()
    calibration = make_calibration(
        as_of_day=20_000, config_version="v", window_days=config.window_days, customers=10, active=10,
        shares={"AAA": 0.05, "A": 0.15, "B": 0.3, "C": 0.5}, thresholds={"AAA": 80, "A": 60, "B": 40, "C": 0},
        tables=((0, 10, 20), (1, 2, 3), (100, 200, 300)))
    calibrated = config.calibrated(calibration)
    assert calibrated.evidence is EVIDENCE and calibrated.calibration is calibration
    assert ScoringConfig().evidence is None and config.with_evidence(None).evidence is None
