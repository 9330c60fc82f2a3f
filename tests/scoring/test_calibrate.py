"""Calibration as a pure function of the population: order-independent, mergeable, stable; tiers that are the
configured shares of the active customers; value concentration."""

from __future__ import annotations

import random
from collections import Counter

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from scoring import NEW_STATE, CoreEvent, Kind, evaluate, fold, parse_config, step
from scoring.calibrate import (
    ScoreHistogram,
    apply_calibration,
    calibrate,
    calibrate_figures,
    calibrated_composite,
    calibration_of,
    customer_figures,
    cut_tables,
    score_histogram,
    stale_reasons,
    summarise,
    tier_moves,
)
from scoring.concentration import revenue_e4, tier_totals, value_concentration
from scoring.errors import CalibrationError
from scoring.events import MS_PER_DAY
from scoring.tiers import assign_tier, raw_tier

AS_OF = 20_000
END_MS = (AS_OF + 1) * MS_PER_DAY - 1
CONFIG = parse_config({})
PROPS = settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])


@st.composite
def customer_events(draw: st.DrawFn, customer: int) -> list[CoreEvent]:
    """A customer's events over the two years to AS_OF: purchases (amounts from a small pool, so customers tie),
    returns, complaints and enquiries."""
    events = []
    for i in range(draw(st.integers(0, 8))):
        kind = draw(st.sampled_from([Kind.PURCHASE, Kind.PURCHASE, Kind.PURCHASE, Kind.RETURN, Kind.COMPLAINT,
                                     Kind.ENQUIRY]))
        at = (AS_OF - draw(st.integers(0, 730))) * MS_PER_DAY + draw(st.integers(0, MS_PER_DAY - 1))
        cents = draw(st.sampled_from([0, 999, 2_500, 10_000, 123_456])) if kind in (Kind.PURCHASE, Kind.RETURN) else 0
        events.append(CoreEvent(kind, f"c{customer}-{i}", at, cents, "", 3 if kind is Kind.COMPLAINT else 0))
    return events


@st.composite
def populations(draw: st.DrawFn, max_customers: int = 25) -> list:
    """Customer states at the end of AS_OF (customers without an event are left out, as in the stream)."""
    states = []
    for customer in range(draw(st.integers(1, max_customers))):
        events = draw(customer_events(customer))
        state, applied, _ = fold(NEW_STATE, events, END_MS, CONFIG)
        if applied:
            states.append(state)
    return states


def has_active(states: list) -> bool:
    return any(customer_figures(s, AS_OF, CONFIG).is_active for s in states)


# --- a pure function of the population -------------------------------------------------------------

@PROPS
@given(populations(), st.randoms(use_true_random=False))
def test_any_order_of_the_population_gives_the_identical_artefact(states: list, rng: random.Random) -> None:
    shuffled = list(states)
    rng.shuffle(shuffled)
    if not has_active(states):
        with pytest.raises(CalibrationError, match="no active customer"):
            calibrate(shuffled, AS_OF, CONFIG)
        return
    first = calibrate(states, AS_OF, CONFIG)
    again = calibrate(iter(shuffled), AS_OF, CONFIG)  # any iterable, any order
    assert again == first and again.to_json() == first.to_json() and again.version == first.version
    assert first.active == sum(customer_figures(s, AS_OF, CONFIG).is_active for s in states)
    assert first.customers == len(states)


@PROPS
@given(populations())
def test_recalibrating_an_unchanged_population_moves_nobody(states: list) -> None:
    """Tier every customer under the population's calibration (a step, as the stream does), then calibrate
    the tiered states again: the same artefact, and every customer keeps its tier."""
    if not has_active(states):
        return
    calibration = calibrate(states, AS_OF, CONFIG)
    effective = apply_calibration(CONFIG, calibration)
    tiered = [step(s, None, END_MS, f"c{i}", effective).state for i, s in enumerate(states)]
    again = calibrate(tiered, AS_OF, CONFIG)
    assert again == calibration
    recalibrated = CONFIG.calibrated(again)
    assert [evaluate(s, AS_OF, recalibrated).tier for s in tiered] == [s.tier for s in tiered]


@PROPS
@given(populations(max_customers=30), st.integers(1, 5), st.randoms(use_true_random=False))
def test_partitions_merged_calibrate_exactly_as_the_whole(states: list, parts: int, rng: random.Random) -> None:
    """The live case: each partition summarises its customers (phase a), the merged summary gives the tables,
    each partition counts its scores under them (phase b), the merged histogram gives the thresholds."""
    if not has_active(states):
        return
    figures = [customer_figures(s, AS_OF, CONFIG) for s in states]
    split: list[list] = [[] for _ in range(parts)]
    for f in figures:
        split[rng.randrange(parts)].append(f)
    summary = summarise([])
    for part in split:
        summary = summary.merge(summarise(part))
    tables = cut_tables(summary)
    histogram = ScoreHistogram()
    for part in split:
        histogram = histogram.merge(score_histogram(part, tables, CONFIG.weights))
    merged = calibration_of(summary, tables, histogram, AS_OF, CONFIG)
    assert merged == calibrate(states, AS_OF, CONFIG) == calibrate_figures(figures, AS_OF, CONFIG)


@PROPS
@given(populations())
def test_the_figures_give_the_composite_the_core_scores(states: list) -> None:
    """Phase (b) scores from the figures; `score` from the state: the same composite, to the last bit."""
    if not has_active(states):
        return
    calibration = calibrate(states, AS_OF, CONFIG)
    effective = CONFIG.calibrated(calibration)
    for state in states:
        s = evaluate(state, AS_OF, effective).score
        assert s.composite == calibrated_composite(customer_figures(state, AS_OF, CONFIG), calibration,
                                                   CONFIG.weights)
        assert all(1 <= x <= 5 for x in (s.r, s.f, s.m)) and 0 <= s.composite <= 100


# --- tiers are shares of the active customers ------------------------------------------------------

def shop(customers: int, seed: int) -> list:
    """A shop with lognormal spend, a few heavy buyers and many one-offs, some lapsed."""
    rng = random.Random(seed)
    states = []
    for c in range(customers):
        rate = rng.choice([0.5, 1, 2, 6, 20])
        lapsed = rng.random() < 0.1
        events = []
        for i in range(1 + int(rng.expovariate(1 / rate))):
            day = AS_OF - rng.randint(400 if lapsed else 0, 700)
            events.append(CoreEvent(Kind.PURCHASE, f"{c}-{i}", day * MS_PER_DAY, round(rng.lognormvariate(8, 1))))
        if rng.random() < 0.1:
            events.append(CoreEvent(Kind.RETURN, f"{c}-r", (AS_OF - 3) * MS_PER_DAY, 5_000))
        states.append(fold(NEW_STATE, events, END_MS, CONFIG)[0])
    return states


@pytest.mark.parametrize(("shares", "seed"), [
    ({}, 1),
    ({"tier_shares": {"AAA": 0.01, "A": 0.09, "B": 0.4}}, 2),
    ({"tier_shares": {"AAA": 0.2, "A": 0.2, "B": 0.2}, "weights": [50, 10, 40]}, 3),
])
def test_each_tier_holds_its_share_of_the_active_customers(shares: dict, seed: int) -> None:
    config = parse_config(shares)
    states = shop(3000, seed)
    calibration = calibrate(states, AS_OF, config)
    effective = config.calibrated(calibration)
    evaluations = [evaluate(s, AS_OF, effective) for s in states]
    active = Counter(ev.tier for ev in evaluations if ev.score.frequency)
    assert sum(active.values()) == calibration.active < len(states)  # the lapsed are not active
    for tier, share in calibration.shares.items():
        assert abs(active[tier] / calibration.active - share) <= 0.01, (tier, active, calibration.thresholds)
    inactive = Counter(ev.tier for ev in evaluations if not ev.score.frequency)
    assert set(inactive) == {"C"}  # no recent purchase, no window spend: the thresholds place them low


def test_the_top_tier_brings_a_disproportionate_share_of_revenue() -> None:
    states = shop(3000, 4)
    effective = CONFIG.calibrated(calibrate(states, AS_OF, CONFIG))
    totals = tier_totals((evaluate(s, AS_OF, effective).tier, revenue_e4(s, AS_OF)) for s in states)
    rows = {r.tier: r for r in value_concentration(totals.customers, totals.revenue, CONFIG.tier_names)}
    assert rows["AAA"].lift is not None and rows["AAA"].lift >= 3
    assert rows["C"].lift is not None and rows["C"].lift < 1
    assert sum(r.customers for r in rows.values()) == len(states)


def test_the_ranks_are_quintiles_of_the_active_customers() -> None:
    states = shop(2000, 5)
    effective = CONFIG.calibrated(calibrate(states, AS_OF, CONFIG))
    scores = [evaluate(s, AS_OF, effective).score for s in states]
    m = Counter(s.m for s in scores if s.frequency)
    active = sum(m.values())
    assert all(abs(m[rank] / active - 0.2) <= 0.02 for rank in range(1, 6)), m  # spend is continuous


def test_without_an_active_customer_there_is_nothing_to_calibrate_from() -> None:
    old = fold(NEW_STATE, [CoreEvent(Kind.PURCHASE, "p", (AS_OF - 500) * MS_PER_DAY, 100)], END_MS, CONFIG)[0]
    with pytest.raises(CalibrationError, match=r"^calibration: no active customer .* among 1: nothing"):
        calibrate([old], AS_OF, CONFIG)


# --- hysteresis on the calibrated scale ------------------------------------------------------------

def test_hysteresis_and_dwell_work_on_calibrated_thresholds() -> None:
    config = parse_config({"hysteresis_margin": 3, "min_dwell_days": 10})
    effective = config.calibrated(calibrate(shop(500, 6), AS_OF, config))
    aaa, a = effective.tiers[0].min_score, effective.tiers[1].min_score
    assert raw_tier(aaa, effective) == "AAA" and raw_tier(aaa - 0.01, effective) == "A"
    assert assign_tier(aaa - 2.99, "AAA", AS_OF - 30, AS_OF, effective) == "AAA"  # within the margin
    assert assign_tier(aaa - 3.01, "AAA", AS_OF - 30, AS_OF, effective) == "A"
    assert assign_tier(a - 5, "AAA", AS_OF - 3, AS_OF, effective) == "AAA"  # dwell
    assert assign_tier(a - 5, "AAA", AS_OF - 10, AS_OF, effective) == "B"


# --- what a new calibration would change -----------------------------------------------------------

def test_tier_moves_count_every_customer_once_and_nothing_moves_under_the_same_calibration() -> None:
    states = shop(800, 7)
    figures = [customer_figures(s, AS_OF, CONFIG) for s in states]
    now = CONFIG.calibrated(calibrate(states, AS_OF, CONFIG))
    assert sum(tier_moves(figures, now, now).values()) == len(states)
    assert all(a == b for a, b in tier_moves(figures, now, now))
    absolute = parse_config({"tiering": "absolute"})
    moves = tier_moves(figures, absolute, now)
    assert sum(moves.values()) == len(states)
    under_new = Counter(raw_tier(evaluate(s, AS_OF, now).score.composite, now) for s in states)
    assert {t: sum(n for (_, b), n in moves.items() if b == t) for t in under_new} == dict(under_new)


def test_stale_reasons() -> None:
    calibration = calibrate(shop(100, 8), AS_OF, CONFIG)
    assert stale_reasons(CONFIG, calibration) == []
    reasons = stale_reasons(parse_config({"version": "rules-2", "tier_shares": {"AAA": 0.1, "A": 0.1, "B": 0.3}}),
                            calibration)
    assert len(reasons) == 2 and "rules-1" in reasons[0] and "tier shares" in reasons[1]


# --- value concentration ---------------------------------------------------------------------------

def test_value_concentration_by_hand() -> None:
    rows = value_concentration({"AAA": 5, "A": 15, "B": 30, "C": 50}, {"AAA": 4000, "A": 3000, "B": 2000, "C": 1000},
                               ("AAA", "A", "B", "C"))
    assert [(r.customer_share, r.revenue_share) for r in rows] == [(0.05, 0.4), (0.15, 0.3), (0.3, 0.2), (0.5, 0.1)]
    assert [round(r.lift or 0, 6) for r in rows] == [8.0, 2.0, 0.666667, 0.2]
    empty = value_concentration({"AAA": 1}, {}, ("AAA", "C"))
    assert empty[0].revenue_share is None and empty[0].lift is None and empty[1].customer_share == 0


def test_revenue_is_net_purchases_of_the_last_365_days() -> None:
    events = [CoreEvent(Kind.PURCHASE, "old", (AS_OF - 365) * MS_PER_DAY, 7_000),
              CoreEvent(Kind.PURCHASE, "in", (AS_OF - 364) * MS_PER_DAY, 1_000),
              CoreEvent(Kind.RETURN, "back", AS_OF * MS_PER_DAY, 300),
              CoreEvent(Kind.PURCHASE, "later", (AS_OF + 1) * MS_PER_DAY, 50_000)]
    state = fold(NEW_STATE, events, (AS_OF + 2) * MS_PER_DAY, parse_config({"window_days": 400}))[0]
    assert revenue_e4(state, AS_OF) == 700
