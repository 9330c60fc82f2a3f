"""The report recovers known true effects: a history where actions work (`streams.local.effects`), measured
with control groups (`scoring.uplift`), over a few seeds; and the history replays into the same decisions."""

from __future__ import annotations

import io
import json
from datetime import UTC, datetime
from pathlib import Path

import pytest
import yaml

from schemas.outputs import ContactOutcome
from scoring.config import parse_config
from scoring.decisions import OutcomeObserved
from scoring.events import MS_PER_DAY
from scoring.uplift import Observation, RuleEffect, effects
from streams.cli.main import main
from streams.convert import OutputContext, decision_json, to_core
from streams.evidencefile import load_evidence
from streams.local.effects import Simulation, simulate
from streams.local.generator import to_json
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


def _cli(argv: list[str], capsys: pytest.CaptureFixture[str]) -> tuple[int, str, str]:
    with pytest.raises(SystemExit) as exit_info:
        main(argv)
    out, err = capsys.readouterr()
    return int(exit_info.value.code or 0), out, err


def _write_outcomes(sim: Simulation, path: Path) -> None:
    emitted = datetime(2030, 1, 1, tzinfo=UTC)
    lines = [decision_json(o, OutputContext(c, CONFIG.version, emitted)) for c, o in sim.outcomes]
    path.write_bytes(b"\n".join(line for line in lines if line) + b"\n")


def test_plan_report_writes_evidence_holding_each_true_effect(measured, tmp_path, capsys):
    """`plan-report --evidence-out`: per rule and tier, the counts and the uplift with its interval, versioned;
    each rule's true effect lies in its purchase-rate interval, and the useless rule's revenue uplift does not
    pay for its cost."""
    sim, found = measured
    outcomes, out = tmp_path / "outcomes.jsonl", tmp_path / "evidence.json"
    _write_outcomes(sim, outcomes)
    code, _, err = _cli(["plan-report", str(outcomes), "--evidence-out", str(out)], capsys)
    assert code == 0, err
    evidence = load_evidence(out)
    assert f"evidence {evidence.version} written to {out}" in err
    assert evidence.outcomes == len(sim.outcomes)
    for rule, e in found.items():
        row = evidence.find(rule, "*")
        assert row is not None and (row.treated, row.held_out) == (e.treated, e.held_out)
        assert row.purchase_low is not None and row.purchase_high is not None
        assert row.purchase_low <= sim.truth(rule) <= row.purchase_high, (rule, sim.truth(rule), row)
    useless = evidence.find("discount-c", "C")
    assert useless is not None and useless.revenue_high is not None and useless.revenue_high < useless.cost
    assert {(r.rule, r.tier) for r in evidence.rules} >= {("vip-call", "A"), ("winback-email", "A")}


def test_replay_with_evidence_switches_the_guard_where_there_is_enough_and_says_so(tmp_path, capsys):
    """`replay --exact --evidence`: with roi_evidence enabled, an action of a rule and tier with enough outcomes
    gets its budget from the measured uplift (roi_basis names the evidence); the others keep the configured
    share and say why; the replay's decisions are the core's with that evidence (as a worker's)."""
    sim = simulate(2, 300, 365, CONFIG, EFFECTS)
    outcomes, evidence_path = tmp_path / "outcomes.jsonl", tmp_path / "evidence.json"
    _write_outcomes(sim, outcomes)
    assert _cli(["plan-report", str(outcomes), "--evidence-out", str(evidence_path)], capsys)[0] == 0
    evidence = load_evidence(evidence_path)
    config_doc = {"scoring": {"tiering": "absolute", "roi_max_share": 100, "contact_rules": RULES,
                              "channel_costs": COSTS, "roi_evidence": {"enabled": True, "min_outcomes": 10}}}
    config_path, events, decisions = tmp_path / "tierstream.yaml", tmp_path / "events.jsonl", tmp_path / "out.jsonl"
    config_path.write_text(yaml.safe_dump(config_doc))
    replayed = simulate(9, 150, 300, CONFIG, EFFECTS)  # another history: the evidence of the first applies
    events.write_text("".join(to_json(m) + "\n" for m in replayed.messages))
    last = max(to_core(m).at_ms for m in replayed.messages) // MS_PER_DAY
    as_of = datetime.fromtimestamp(last * 86_400, UTC).strftime("%Y-%m-%d")
    code, _, err = _cli(["replay", str(events), "--as-of", as_of, "--exact", "--config", str(config_path),
                         "--evidence", str(evidence_path), "--decisions-out", str(decisions), "--out",
                         str(tmp_path / "scores.csv")], capsys)
    assert code == 0, err
    actions = [json.loads(line) for line in decisions.read_text().splitlines() if '"ContactActionRequested"' in line]
    on_evidence = [a for a in actions if a["roi_basis"].startswith(f"evidence {evidence.version}: ")]
    on_share = [a for a in actions if a["roi_basis"].startswith("configured share: ")]
    assert on_evidence and on_share and len(on_evidence) + len(on_share) == len(actions)
    for a in on_evidence:
        row = evidence.find(a["rule"], a["tier"])
        assert row is not None and min(row.treated, row.held_out) >= 10
        assert f"over {row.treated} treated / {row.held_out} held out in {a['tier']}" in a["roi_basis"]
    for a in on_share:
        row = evidence.find(a["rule"], a["tier"])
        assert row is None or min(row.treated, row.held_out) < 10
    # the voucher rule's evidence does not pay for a 40.00 voucher: no C customer gets one on evidence
    vouchers = [a for a in on_evidence if a["rule"] == "discount-c"]
    assert vouchers and all(a["roi_decision"] == "skipped" for a in vouchers)
    # the same decisions as the core's under that evidence (what a worker with evidence_path decides)
    effective = parse_config(config_doc["scoring"]).with_evidence(evidence)
    by_customer: dict = {}
    for message in replayed.messages:
        by_customer.setdefault(message.customer_id, []).append(to_core(message))
    sink = io.StringIO()
    list(profiles_exact(by_customer, last, effective, ReplayStats(), sink))
    expected = [json.loads(line) for line in sink.getvalue().splitlines() if '"ContactActionRequested"' in line]
    assert [(a["id"], a["roi_decision"], a["roi_basis"]) for a in actions] == \
        [(a["id"], a["roi_decision"], a["roi_basis"]) for a in expected]
