"""R/F/M ranks at every cut-point edge, and the composite's components."""

from __future__ import annotations

import pytest

from scoring import NEW_STATE, score
from scoring.events import MS_PER_DAY
from scoring.fold import advance
from scoring.rfm import rank_at_least, rank_at_most

T0 = 20_000


# --- ranks, directly --------------------------------------------------------------------------

@pytest.mark.parametrize(("recency", "expected"), [
    (0, 5), (29, 5), (30, 5), (31, 4),
    (89, 4), (90, 4), (91, 3),
    (179, 3), (180, 3), (181, 2),
    (364, 2), (365, 2), (366, 1),
    (10_000, 1),
])
def test_rank_at_most_recency_cuts(recency, expected, cfg):
    assert rank_at_most(recency, cfg.recency_days) == expected


@pytest.mark.parametrize(("count", "expected"), [
    (0, 1), (1, 1), (2, 2), (3, 2), (4, 3), (5, 3), (7, 3), (8, 4), (9, 4), (15, 4), (16, 5), (17, 5), (500, 5),
])
def test_rank_at_least_frequency_cuts(count, expected, cfg):
    assert rank_at_least(count, cfg.frequency_counts) == expected


@pytest.mark.parametrize(("amount", "expected"), [
    (-50, 1), (0, 1), (99.99, 1), (100, 2), (100.01, 2), (299.99, 2), (300, 3), (300.01, 3),
    (999.99, 3), (1000, 4), (1000.01, 4), (2999.99, 4), (3000, 5), (3000.01, 5), (1e9, 5),
])
def test_rank_at_least_monetary_cuts(amount, expected, cfg):
    assert rank_at_least(amount, cfg.monetary_amounts) == expected


# --- ranks through score() on real states ----------------------------------------------------

@pytest.mark.parametrize(("days_since", "expected_r"), [
    (0, 5), (30, 5), (31, 4), (90, 4), (91, 3), (180, 3), (181, 2), (364, 2),
])
def test_r_from_days_since_last_purchase(days_since, expected_r, purchase, fold_at, cfg):
    state = fold_at([purchase(T0, 10)], T0 + days_since)
    s = score(state, T0 + days_since, cfg)
    assert s.recency_days == days_since
    assert s.r == expected_r


def test_r_is_1_beyond_the_last_cut_and_without_purchases(purchase, fold_at, cfg):
    state = fold_at([purchase(T0, 10)], T0)
    assert score(state, T0 + 365, cfg).r == 2
    assert score(state, T0 + 366, cfg).r == 1
    assert score(NEW_STATE, T0, cfg).r == 1
    assert score(NEW_STATE, T0, cfg).recency_days is None


@pytest.mark.parametrize(("purchases", "expected_f"), [
    (1, 1), (2, 2), (3, 2), (4, 3), (7, 3), (8, 4), (15, 4), (16, 5), (17, 5),
])
def test_f_counts_purchases_in_window(purchases, expected_f, purchase, fold_at, cfg):
    events = [purchase(T0 - i, 1) for i in range(purchases)]
    s = score(fold_at(events, T0), T0, cfg)
    assert (s.frequency, s.f) == (purchases, expected_f)


@pytest.mark.parametrize(("spend", "refund", "expected_m"), [
    (99.99, 0, 1), (100, 0, 2), (299.99, 0, 2), (300, 0, 3), (999.99, 0, 3), (1000, 0, 4),
    (2999.99, 0, 4), (3000, 0, 5),
    (3000, 0.01, 4),   # M is on net spend: a refund takes it back below the cut
    (1100, 100, 4),    # exactly on the cut after the refund
    (1100, 100.01, 3),
])
def test_m_is_net_spend_in_window(spend, refund, expected_m, purchase, ret, fold_at, cfg):
    events = [purchase(T0, spend)] + ([ret(T0, refund)] if refund else [])
    s = score(fold_at(events, T0), T0, cfg)
    assert s.m == expected_m
    assert s.monetary == pytest.approx(spend)
    assert s.returns_amount == pytest.approx(refund)


def test_purchase_leaving_the_window_no_longer_counts(purchase, fold_at, cfg):
    state = fold_at([purchase(T0, 500), purchase(T0 + 300, 50)], T0 + 300)
    last_in = T0 + cfg.window_days - 1
    assert score(state, last_in, cfg).monetary == pytest.approx(550)
    assert score(state, last_in + 1, cfg).monetary == pytest.approx(50)
    assert score(state, last_in + 1, cfg).frequency == 1


# --- composite and components ----------------------------------------------------------------

def _points(s):
    return {c.name: c.points for c in s.components}


def test_single_small_purchase_today_is_recency_points_only(purchase, fold_at, cfg):
    s = score(fold_at([purchase(T0, 50)], T0), T0, cfg)
    assert (s.r, s.f, s.m) == (5, 1, 1)
    assert s.composite == 35.0
    assert _points(s) == {"recency": 35.0, "frequency": 0.0, "monetary": 0.0, "returns": 0.0,
                          "complaints": 0.0, "tenure": 0.0, "enquiries": 0.0}


def test_composite_is_sum_of_components_clamped(purchase, fold_at, cfg):
    events = [purchase(T0 - 7 * i, 250) for i in range(16)]
    s = score(fold_at(events, T0), T0, cfg)
    assert (s.r, s.f, s.m) == (5, 5, 5)
    assert s.composite == 100.0
    assert sum(c.points for c in s.components) == pytest.approx(100.0)


@pytest.mark.parametrize(("refund", "penalty"), [
    (0, 0.0), (10, 0.0),        # 10% of 100: within tolerance
    (20, 6.0),                  # 0.1 over tolerance x 60
    (50, 24.0),
    (60, 30.0), (100, 30.0),    # capped at return_penalty_max
])
def test_return_penalty(refund, penalty, purchase, ret, fold_at, cfg):
    events = [purchase(T0, 100)] + ([ret(T0, refund)] if refund else [])
    s = score(fold_at(events, T0), T0, cfg)
    assert s.return_rate == pytest.approx(refund / 100)
    assert _points(s)["returns"] == pytest.approx(-penalty)


def test_returns_without_purchases_are_a_full_rate(ret, fold_at, cfg):
    s = score(fold_at([ret(T0, 5)], T0), T0, cfg)
    assert s.return_rate == 1.0
    assert _points(s)["returns"] == -cfg.return_penalty_max


@pytest.mark.parametrize(("age_days", "weight"), [
    (0, 3.0), (89, 3.0), (90, 1.5), (179, 1.5), (180, 0.75), (270, 0.375),
])
def test_complaint_weight_halves_every_half_life(age_days, weight, purchase, complaint, fold_at, cfg):
    state = fold_at([purchase(T0, 10), complaint(T0, severity=3)], T0)
    s = score(state, T0 + age_days, cfg)
    assert s.complaint_weight == pytest.approx(weight)
    assert _points(s)["complaints"] == pytest.approx(-weight * cfg.complaint_points_per_severity)


def test_complaint_penalty_is_capped(purchase, complaint, fold_at, cfg):
    events = [purchase(T0, 10)] + [complaint(T0, severity=5) for _ in range(5)]
    s = score(fold_at(events, T0), T0, cfg)
    assert s.complaint_weight == 25
    assert _points(s)["complaints"] == -cfg.complaint_penalty_max
    assert s.complaints == 5


@pytest.mark.parametrize(("tenure", "years", "points"), [
    (0, 0, 0.0), (364, 0, 0.0), (365, 1, 2.0), (729, 1, 2.0), (730, 2, 4.0), (365 * 5, 5, 10.0),
    (365 * 9, 9, 10.0),  # capped
])
def test_tenure_points(tenure, years, points, purchase, fold_at, cfg):
    state = fold_at([purchase(T0, 10)], T0)
    s = score(state, T0 + tenure, cfg)
    tenure_component = next(c for c in s.components if c.name == "tenure")
    assert (s.tenure_days, tenure_component.value, tenure_component.points) == (tenure, years, points)


@pytest.mark.parametrize(("enquiries", "points"), [(1, 1.0), (3, 3.0), (5, 5.0), (9, 5.0)])
def test_enquiry_points_capped(enquiries, points, purchase, enquiry, fold_at, cfg):
    events = [purchase(T0, 10)] + [enquiry(T0) for _ in range(enquiries)]
    s = score(fold_at(events, T0), T0, cfg)
    assert _points(s)["enquiries"] == points


def test_negative_enquiry_points_are_a_capped_cost(purchase, enquiry, fold_at, config_with):
    config = config_with(enquiry_points=-2)
    events = [purchase(T0, 10)] + [enquiry(T0) for _ in range(4)]
    s = score(fold_at(events, T0, config), T0, config)
    assert _points(s)["enquiries"] == -config.enquiry_points_max


def test_annual_value_is_net_spend_times_margin_per_year(purchase, ret, fold_at, config_with):
    config = config_with(value_margin=0.25, window_days=730)
    state = fold_at([purchase(T0, 1000), ret(T0, 200)], T0, config)
    s = score(state, T0, config)
    assert s.annual_value == pytest.approx(800 * 0.25 * 365 / 730)


def test_score_explains_itself_and_is_pure(purchase, ret, complaint, enquiry, fold_at, cfg):
    state = fold_at([purchase(T0 - 40, 400), purchase(T0 - 3, 80), ret(T0 - 2, 30),
                     complaint(T0 - 1, 2), enquiry(T0)], T0)
    first = score(state, T0, cfg)
    assert score(state, T0, cfg) == first
    expected = round(min(100, max(0, sum(c.points for c in first.components))), 2)
    assert first.composite == expected
    assert [c.name for c in first.components] == [
        "recency", "frequency", "monetary", "returns", "complaints", "tenure", "enquiries"]


@pytest.mark.parametrize("kind", ["complaint", "enquiry"])
def test_score_ignores_days_outside_the_window_whether_or_not_they_were_pruned(kind, purchase, request, fold_at, cfg):
    """`score(state, today)` on a state whose clock is behind `today` still holds buckets that have
    left the window as of `today`. window_sums() skips them, but `decayed()` sums every bucket up to
    today, and rfm.score only calls it when an in-window complaint/enquiry exists. So the old
    complaint's weight counts only when a newer one is present, and the result differs from the
    same state advanced to today (what step() evaluates)."""
    make = request.getfixturevalue(kind)
    old, new = (make(T0, 4), make(T0 + 300, 1)) if kind == "complaint" else (make(T0), make(T0 + 300))
    state = fold_at([purchase(T0, 100), old, new], T0 + 300)
    today = T0 + 400                                   # T0 left the window on T0 + 365
    pruned = advance(state, today * MS_PER_DAY, cfg)
    assert T0 in state.buckets and T0 not in pruned.buckets
    assert score(state, today, cfg) == score(pruned, today, cfg)
