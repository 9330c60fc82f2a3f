"""The held-out potential check: rates, intervals, and who counts."""

from __future__ import annotations

import pytest

from scoring import ScoringConfig
from scoring.potential_check import check_potential, describe, newcombe, wilson
from tests.scoring.conftest import T0, fold_events, make_purchase


@pytest.mark.parametrize(("moved", "n", "low", "high"), [(0, 10, 0.0, 0.2775), (5, 10, 0.2366, 0.7634),
                                                          (10, 10, 0.7225, 1.0)])
def test_wilson_interval_matches_the_textbook(moved, n, low, high):
    rate = wilson(moved, n)
    assert (rate.low, rate.high) == (pytest.approx(low, abs=1e-4), pytest.approx(high, abs=1e-4))


def test_newcombe_difference_brackets_the_difference():
    d, low, high = newcombe(wilson(30, 50), wilson(10, 50))
    assert d == pytest.approx(0.4) and low < d < high and low > 0


def test_check_counts_low_value_customers_by_cell():
    cfg = ScoringConfig(tiering="absolute")
    cut, days = T0 + 120, 90
    # growing: two small recent purchases before the cut (cell develop), then a lot of buying after it
    growing = [make_purchase(cut - 20, 10), make_purchase(cut - 5, 10)]
    growing_after = growing + [make_purchase(cut + d, 400) for d in range(5, 90, 7)]
    # flat: one old purchase (cell maintain), nothing after
    flat = [make_purchase(cut - 100, 10)]
    vip = [make_purchase(T0 + d, 500) for d in range(0, 120, 5)]  # high value: not counted
    at_cut = {"g": fold_events(growing, cut, cfg), "f": fold_events(flat, cut, cfg), "v": fold_events(vip, cut, cfg)}
    after = {"g": fold_events(growing_after, cut + days, cfg), "f": at_cut["f"], "v": at_cut["v"]}
    check = check_potential(at_cut, after, cut, days, cfg)
    assert (check.high_potential.moved, check.high_potential.customers) == (1, 1)
    assert (check.others.moved, check.others.customers) == (0, 1)
    assert check.difference == 1.0
    assert describe(check, cfg)[1].startswith("  develop (high potential): 1 of 1 moved up")
