"""Tests of the customer value model (scoring.valuemodel) against lifetimes and held-out CDNOW data.

Reference numbers marked LIFETIMES were computed with lifetimes 0.11.3 (numpy
1.26.4, pandas 1.5.3, scipy 1.11.4) on the files in tests/fixtures/cdnow/,
which lifetimes ships (see the README there).
"""

from __future__ import annotations

import ast
import json
import math
from collections import defaultdict
from datetime import date
from pathlib import Path
from random import Random
from typing import Any

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st
from scipy.optimize import approx_fprime

from scoring.valuemodel import (
    FEATURE_NAMES,
    FEATURE_NAMES_V1,
    FEATURE_NAMES_V2,
    AtRiskModel,
    BgNbdParams,
    GammaGammaParams,
    RfmThresholds,
    ValueModel,
    ValueModelError,
    bgnbd,
    clv,
    evaluate,
    expected_average_value,
    expected_purchases,
    fit_bgnbd,
    fit_gamma_gamma,
    fit_value_model,
    gammagamma,
    p_alive,
    p_no_purchase,
    precision_at_top,
    purchase_log,
    quantile_thresholds,
    rfm_scores,
    roc_auc,
    summarise,
)
from scoring.valuemodel.atrisk import L2_CANDIDATES, _fit, _Window, bgnbd_only, prefers_bgnbd
from scoring.valuemodel.segments import segments
from scoring.valuemodel.summary import purchase_log_of

CDNOW = Path(__file__).resolve().parents[1] / "fixtures" / "cdnow"
PACKAGE = Path(__file__).resolve().parents[2] / "scoring" / "valuemodel"
History = list[tuple[int, float]]


def epoch_day(yyyymmdd: str) -> int:
    return (date(int(yyyymmdd[:4]), int(yyyymmdd[4:6]), int(yyyymmdd[6:8])) - date(1970, 1, 1)).days


@pytest.fixture(scope="module")
def cdnow_histories() -> dict[int, History]:
    """CDNOW_sample.txt as customer id -> sorted (epoch day, amount USD)."""
    histories: dict[int, History] = defaultdict(list)
    for line in (CDNOW / "CDNOW_sample.txt").read_text().splitlines():
        customer, _, day, _, amount = line.split()
        histories[int(customer)].append((epoch_day(day), float(amount)))
    return {c: sorted(h) for c, h in histories.items()}


def read_csv(name: str) -> dict[str, np.ndarray]:
    lines = (CDNOW / name).read_text().splitlines()
    header, rows = lines[0].split(","), [[float(v) for v in line.split(",")] for line in lines[1:]]
    return dict(zip(header, np.array(rows).T, strict=True))


def rel_err(got: float, want: float) -> float:
    return abs(got / want - 1.0)


# --- BG/NBD on lifetimes' CDNOW summary (weeks) ---------------------------------------------

# LIFETIMES: BetaGeoFitter(penalizer_coef=0).fit on cdnow_customers_summary.csv.
WEEKLY_BG = {"r": 0.2425929282798216, "alpha": 4.413532265271803, "a": 0.7928859664405851, "b": 2.42575238262545}
WEEKLY_IDS = [1, 2, 3, 18, 100, 1000, 2357]
WEEKLY_P_ALIVE = [
    0.7266091367990611,
    0.212227388072203,
    1.0,
    0.3109152809661404,
    0.6469884214257794,
    0.6803513542049692,
    1.0,
]
WEEKLY_EXPECTED_10 = [
    0.356931008646909,
    0.05820268119914848,
    0.054210097331347414,
    0.08526751962785964,
    0.17969862926100114,
    0.7083459515443293,
    0.07379835426224114,
]
WEEKLY_EXPECTED_52 = [
    1.5585837617716995,
    0.25990707940848656,
    0.25166572540727283,
    0.38076651347132495,
    0.8012121846883953,
    2.959618752587011,
    0.33207059317904436,
]


def test_bgnbd_fit_matches_lifetimes_on_cdnow_summary() -> None:
    d = read_csv("cdnow_customers_summary.csv")
    fitted = fit_bgnbd(d["frequency"], d["recency"], d["T"])
    for name, want in WEEKLY_BG.items():
        assert rel_err(getattr(fitted, name), want) < 1e-3, (name, getattr(fitted, name), want)


def test_bgnbd_predictions_match_lifetimes_for_given_customers() -> None:
    d = read_csv("cdnow_customers_summary.csv")
    i = np.searchsorted(d["ID"], WEEKLY_IDS)
    params = BgNbdParams(**WEEKLY_BG)
    x, t_x, T = d["frequency"][i], d["recency"][i], d["T"][i]
    assert p_alive(params, x, t_x, T) == pytest.approx(WEEKLY_P_ALIVE, rel=1e-8)
    assert expected_purchases(params, 10, x, t_x, T) == pytest.approx(WEEKLY_EXPECTED_10, rel=1e-8)
    assert expected_purchases(params, 52, x, t_x, T) == pytest.approx(WEEKLY_EXPECTED_52, rel=1e-8)


def test_bgnbd_gradient_matches_finite_differences() -> None:
    d = read_csv("cdnow_customers_summary.csv")
    args = (d["frequency"], d["recency"] / 39.0, d["T"] / 39.0)
    theta = np.array([0.3, -0.2, 0.1, 0.5])
    numeric = approx_fprime(theta, lambda t: bgnbd.negative_log_likelihood(t, *args)[0], 1e-7)
    assert bgnbd.negative_log_likelihood(theta, *args)[1] == pytest.approx(numeric, abs=1e-5)


def test_bgnbd_fit_rejects_data_without_repeat_purchases() -> None:
    with pytest.raises(ValueModelError):
        fit_bgnbd([0, 0, 0], [0, 0, 0], [10, 20, 30])


# --- Gamma-Gamma -----------------------------------------------------------------------------

# LIFETIMES: GammaGammaFitter(penalizer_coef=0).fit on the repeat customers of
# cdnow_customers_summary_with_transactions.csv, and conditional_expected_average_profit.
WEEKLY_GG = {"p": 6.248802496074264, "q": 3.744588460923312, "v": 15.447748064932831}
GG_IDS = [1, 2, 3, 18, 100]
GG_PROFIT = [24.658616189236923, 18.911479869930286, 35.171002152506624, 17.674697381968087, 28.951652314342507]


def test_gamma_gamma_fit_matches_lifetimes() -> None:
    d = read_csv("cdnow_customers_summary_with_transactions.csv")
    fitted = fit_gamma_gamma(d["x"], d["zbar"])  # x == 0 rows are ignored by the fit
    for name, want in WEEKLY_GG.items():
        assert rel_err(getattr(fitted, name), want) < 1e-3, (name, getattr(fitted, name), want)


def test_gamma_gamma_expected_value_matches_lifetimes() -> None:
    d = read_csv("cdnow_customers_summary_with_transactions.csv")
    i = np.searchsorted(d["ID"], GG_IDS)
    got = expected_average_value(GammaGammaParams(**WEEKLY_GG), d["x"][i], d["zbar"][i])
    assert got == pytest.approx(GG_PROFIT, rel=1e-10)


def test_gamma_gamma_one_time_buyer_gets_population_mean() -> None:
    params = GammaGammaParams(**WEEKLY_GG)
    assert expected_average_value(params, [0], [0])[0] == pytest.approx(params.population_mean)


def test_gamma_gamma_gradient_matches_finite_differences() -> None:
    d = read_csv("cdnow_customers_summary_with_transactions.csv")
    keep = d["x"] > 0
    args = (d["x"][keep], d["zbar"][keep] / d["zbar"][keep].mean())
    theta = np.array([0.3, -0.2, 0.1])
    numeric = approx_fprime(theta, lambda t: gammagamma.negative_log_likelihood(t, *args)[0], 1e-7)
    assert gammagamma.negative_log_likelihood(theta, *args)[1] == pytest.approx(numeric, abs=1e-5)


# --- daily summaries from the transaction log, BG/NBD, Gamma-Gamma and CLV -------------------

# LIFETIMES: summary_data_from_transaction_data(tx[date <= end], monetary_value_col="amount",
# observation_period_end=end, freq="D") of CDNOW_sample.txt, both fitters (penalizer 0), and
# gg.customer_lifetime_value(bg, ..., time=12, discount_rate=0.01, freq="D") for DAILY_IDS.
DAILY_IDS = [4, 18, 21, 50, 60]
DAILY: dict[str, dict[str, Any]] = {
    "19970930": {
        "sums": (2457.0, 112949.0, 539779.0, 33183.64376687058),
        "rows": [[2, 213, 272, 22.345], [0, 0, 269, 0], [1, 12, 272, 11.77], [0, 0, 272, 0], [0, 0, 241, 0]],
        "bg": {"r": 0.2425945434210672, "alpha": 30.89521901254163, "a": 0.7929218333478811, "b": 2.4259057287217765},
        "gg": {"p": 6.249572277635903, "q": 3.7442246747582764, "v": 15.443521018362054},
        "p_alive": [0.726620297788255, 1.0, 0.2123910243493695, 1.0, 1.0],
        "expected_90": [
            0.45248286529196374,
            0.06974264966249831,
            0.07398325804886864,
            0.0690794635504946,
            0.07660826552084511,
        ],
        "clv": [35.866580315547964, 8.3166939482699, 4.587473130637791, 8.244009825891444, 9.063621839359653],
    },
    "19971231": {
        "sums": (3188.0, 178089.0, 756623.0, 36945.95698049139),
        "rows": [
            [3, 345, 364, 23.723333333333333],
            [0, 0, 361, 0],
            [1, 12, 364, 11.77],
            [0, 0, 364, 0],
            [0, 0, 333, 0],
        ],
        "bg": {"r": 0.24837103591805987, "alpha": 33.340490391709665, "a": 0.616696077481088, "b": 2.198472000017059},
        "gg": {"p": 5.0381480597836665, "q": 3.978619786038309, "v": 21.088781857120694},
        "p_alive": [0.8530759294999398, 1.0, 0.19176781385119962, 1.0, 1.0],
        "expected_90": [
            0.5983413883539875,
            0.055033209555853765,
            0.052159140912816,
            0.05462928745976173,
            0.05911290314520551,
        ],
        "clv": [51.50150843887448, 6.851070234526197, 3.6799659978925034, 6.803786138175344, 7.3266550090689355],
    },
    "19980630": {
        "sums": (4339.0, 307464.0, 1183240.0, 40758.44137790224),
        "rows": [
            [3, 345, 545, 23.723333333333333],
            [0, 0, 542, 0],
            [1, 12, 545, 11.77],
            [0, 0, 545, 0],
            [0, 0, 514, 0],
        ],
        "bg": {"r": 0.253561043599183, "alpha": 38.13076285952151, "a": 0.6073660515644327, "b": 2.647234680320202},
        "gg": {"p": 4.683454180079831, "q": 4.189783063352495, "v": 24.390547631296418},
        "p_alive": [0.6611192848216446, 1.0, 0.1674484548027489, 1.0, 1.0],
        "expected_90": [
            0.3219899110730703,
            0.03865259553117618,
            0.03163116590007986,
            0.03845710155605096,
            0.040577869345034774,
        ],
        "clv": [29.033468721181, 4.9620068802257755, 2.4008482531682693, 4.937912995190971, 5.1988200673198],
    },
}
# LIFETIMES: the same CLV with time=6, discount_rate=0.02 at 1997-09-30.
CLV_6_MONTHS_2_PERCENT = [19.6834055072646, 4.415302023513624, 2.4871221160604278, 4.374644447065599, 4.834934575501605]


def daily_summary(histories: dict[int, History], end: str) -> tuple[np.ndarray, ...]:
    ids = sorted(histories)
    s = summarise(purchase_log([histories[c] for c in ids]), epoch_day(end))
    rows = np.searchsorted(np.asarray(ids)[s.customer], DAILY_IDS)
    table = np.column_stack([s.x, s.t_x, s.T, s.mean_repeat_value])
    return table, table[rows]


@pytest.mark.parametrize("end", sorted(DAILY))
def test_daily_summary_matches_lifetimes(cdnow_histories: dict[int, History], end: str) -> None:
    table, rows = daily_summary(cdnow_histories, end)
    assert table.shape[0] == 2357
    assert table.sum(axis=0) == pytest.approx(DAILY[end]["sums"], rel=1e-12)
    assert rows == pytest.approx(np.array(DAILY[end]["rows"], dtype=float), rel=1e-12)


@pytest.mark.parametrize("end", sorted(DAILY))
def test_daily_fits_match_lifetimes(cdnow_histories: dict[int, History], end: str) -> None:
    table, _ = daily_summary(cdnow_histories, end)
    bg = fit_bgnbd(table[:, 0], table[:, 1], table[:, 2])
    gg = fit_gamma_gamma(table[:, 0], table[:, 3])
    for fitted, want in ((bg, DAILY[end]["bg"]), (gg, DAILY[end]["gg"])):
        for name, value in want.items():
            assert rel_err(getattr(fitted, name), value) < 1e-3, (end, name, getattr(fitted, name), value)


@pytest.mark.parametrize("end", sorted(DAILY))
def test_daily_predictions_and_clv_match_lifetimes(cdnow_histories: dict[int, History], end: str) -> None:
    _, rows = daily_summary(cdnow_histories, end)
    x, t_x, T, m = rows.T
    bg, gg = BgNbdParams(**DAILY[end]["bg"]), GammaGammaParams(**DAILY[end]["gg"])
    assert p_alive(bg, x, t_x, T) == pytest.approx(DAILY[end]["p_alive"], rel=1e-8)
    assert expected_purchases(bg, 90, x, t_x, T) == pytest.approx(DAILY[end]["expected_90"], rel=1e-8)
    assert clv(bg, gg, x, t_x, T, m) == pytest.approx(DAILY[end]["clv"], rel=1e-8)


def test_clv_horizon_and_discount_match_lifetimes(cdnow_histories: dict[int, History]) -> None:
    _, rows = daily_summary(cdnow_histories, "19970930")
    x, t_x, T, m = rows.T
    bg, gg = BgNbdParams(**DAILY["19970930"]["bg"]), GammaGammaParams(**DAILY["19970930"]["gg"])
    got = clv(bg, gg, x, t_x, T, m, horizon_months=6, monthly_discount=0.02)
    assert got == pytest.approx(CLV_6_MONTHS_2_PERCENT, rel=1e-8)
    assert clv(bg, gg, x, t_x, T, m, horizon_months=0) == pytest.approx(np.zeros(5))


# --- purchase log and summary on hand-made data ---------------------------------------------


def test_summary_merges_same_day_and_ignores_later_days() -> None:
    log = purchase_log([[(10, 5.0), (10, 7.0), (13, 4.0), (20, 8.0), (40, 100.0)], [(15, 3.0)], []])
    s = summarise(log, 30)
    assert s.customer.tolist() == [0, 1]  # the customer without purchases is absent
    assert s.x.tolist() == [2.0, 0.0]
    assert s.t_x.tolist() == [10.0, 0.0]
    assert s.T.tolist() == [20.0, 15.0]
    assert s.mean_repeat_value.tolist() == [6.0, 0.0]  # (4 + 8) / 2; first day (12) excluded
    assert s.total_value.tolist() == [24.0, 3.0]
    assert s.recency.tolist() == [10.0, 15.0]


@given(st.lists(st.tuples(st.integers(0, 4), st.integers(0, 6), st.floats(0.01, 500)), max_size=60), st.booleans())
def test_purchase_log_of_sums_each_customer_day_in_row_order(rows: list[tuple[int, int, float]], presort: bool) -> None:
    """Rows in any order, or in (customer, day) order already (the readers' order, where no sort is made):
    one row per (customer, day), its amounts in the rows' order (as a stable sort leaves them) summed."""
    if presort:
        rows = sorted(rows, key=lambda r: (r[0], r[1]))  # stable: equal pairs keep their order
    runs: dict[tuple[int, int], list[float]] = {}
    for c, d, a in sorted(rows, key=lambda r: (r[0], r[1])):
        runs.setdefault((c, d), []).append(a)
    column = [np.array([r[i] for r in rows], dtype=np.int64) for i in (0, 1)]
    log = purchase_log_of(*column, np.array([r[2] for r in rows], dtype=np.float64), 5)
    got = list(zip(log.customer.tolist(), log.day.tolist(), log.amount.tolist(), strict=True))
    assert got == [(c, d, _sum_in_order(a)) for (c, d), a in runs.items()]
    assert log.n_customers == 5


def _sum_in_order(amounts: list[float]) -> float:
    """A run of same-day amounts summed as `purchase_log_of` sums them (NumPy's add.reduceat, whose order
    within a run is its own: not always left to right)."""
    return float(np.add.reduceat(np.array(amounts, dtype=np.float64), [0])[0])


histories_strategy = st.lists(
    st.lists(st.tuples(st.integers(0, 60), st.floats(0.01, 500)), min_size=1, max_size=8), min_size=1, max_size=12
)


@given(histories_strategy, st.integers(0, 70))
def test_summary_invariants(histories: list[History], end: int) -> None:
    s = summarise(purchase_log(histories), end)
    assert np.all((s.t_x >= 0) & (s.t_x <= s.T) & (s.x >= 0))
    for k, c in enumerate(s.customer):
        days = sorted({d for d, _ in histories[c] if d <= end})
        assert s.x[k] == len(days) - 1
        assert s.T[k] == end - days[0]
        assert s.total_value[k] == pytest.approx(sum(a for d, a in histories[c] if d <= end))


# --- properties of the BG/NBD predictions ----------------------------------------------------

summaries = st.tuples(st.integers(0, 40), st.floats(0, 1), st.floats(0, 400)).map(
    lambda v: (float(v[0]), v[1] * v[2] if v[0] > 0 else 0.0, v[2])
)


@given(summaries, st.floats(0, 365), st.floats(0, 365))
def test_p_alive_is_a_probability_and_expected_purchases_grow_with_time(
    row: tuple[float, float, float], t1: float, t2: float
) -> None:
    params = BgNbdParams(r=0.25, alpha=30.9, a=0.79, b=2.43)
    x, t_x, T = row
    assert 0.0 <= p_alive(params, x, t_x, T)[0] <= 1.0
    early, late = expected_purchases(params, [min(t1, t2), max(t1, t2)], x, t_x, T)
    assert 0.0 <= early <= late + 1e-12


# --- ranking metrics -------------------------------------------------------------------------


def test_roc_auc_hand_computed_with_ties() -> None:
    # Positives score 0.9, 0.8, 0.1; negatives 0.8, 0.3. Pairs won: 0.9 beats both (2),
    # 0.8 ties 0.8 (1/2) and beats 0.3 (1), 0.1 beats none: 3.5 of 6.
    assert roc_auc([1, 0, 1, 0, 1], [0.9, 0.8, 0.8, 0.3, 0.1]) == pytest.approx(3.5 / 6)
    assert roc_auc([0, 0, 1, 1], [1, 2, 3, 4]) == 1.0
    assert roc_auc([1, 1, 0, 0], [1, 2, 3, 4]) == 0.0
    assert roc_auc([1, 0, 1, 0], [5, 5, 5, 5]) == 0.5


def test_roc_auc_needs_both_classes() -> None:
    with pytest.raises(ValueError):
        roc_auc([1, 1], [0.2, 0.4])


@given(st.lists(st.tuples(st.booleans(), st.integers(0, 5)), min_size=2, max_size=40))
def test_roc_auc_equals_pairwise_count(rows: list[tuple[bool, int]]) -> None:
    pos = [s for y, s in rows if y]
    neg = [s for y, s in rows if not y]
    if not pos or not neg:
        return
    wins = sum((p > n) + 0.5 * (p == n) for p in pos for n in neg)
    assert roc_auc([y for y, _ in rows], [s for _, s in rows]) == pytest.approx(wins / (len(pos) * len(neg)))


def test_precision_at_top_hand_computed() -> None:
    labels = [1, 0, 1, 1, 0, 0, 0, 1, 0, 0]
    scores = [10, 9, 8, 7, 6, 5, 4, 3, 2, 1]
    assert precision_at_top(labels, scores, 0.2) == 0.5  # top 2: labels 1, 0
    assert precision_at_top(labels, scores, 0.4) == 0.75  # top 4: 1, 0, 1, 1
    # Top 2 of [9, 5, 5, 5]: the 9 (a hit) and one of three tied 5s, of which 1 is a hit.
    assert precision_at_top([1, 1, 0, 0], [9, 5, 5, 5], 0.5) == pytest.approx((1 + 1 / 3) / 2)


@given(st.lists(st.tuples(st.booleans(), st.integers(0, 5)), min_size=1, max_size=40), st.randoms())
def test_precision_at_top_ignores_input_order(rows: list[tuple[bool, int]], rnd: Random) -> None:
    shuffled = list(rows)
    rnd.shuffle(shuffled)
    first = precision_at_top([y for y, _ in rows], [s for _, s in rows])
    again = precision_at_top([y for y, _ in shuffled], [s for _, s in shuffled])
    assert 0.0 <= first <= 1.0
    assert first == pytest.approx(again)


# --- R/F/M thresholds ------------------------------------------------------------------------


def test_quantile_thresholds_give_quintiles_on_distinct_values() -> None:
    values = np.arange(1, 101, dtype=float)
    th = quantile_thresholds(values, values, values)
    assert th.recency_days == (20, 40, 60, 80)
    assert th.frequency_counts == (21.0, 41.0, 61.0, 81.0)
    assert th.monetary_amounts == (20.8, 40.6, 60.4, 80.2)
    r, f, m = rfm_scores(th, values, values, values)
    assert np.bincount(r)[1:].tolist() == [20, 20, 20, 20, 20]
    assert np.bincount(f)[1:].tolist() == [20, 20, 20, 20, 20]
    assert np.bincount(m)[1:].tolist() == [20, 20, 20, 20, 20]
    assert r[0] == 5 and f[0] == 1 and m[-1] == 5  # most recent: R=5; most frequent / spent: F, M = 5


def test_threshold_convention_at_the_cut_points() -> None:
    th = RfmThresholds((30, 90, 180, 365), (2, 4, 8, 16), (100, 300, 1000, 3000))
    r, f, m = rfm_scores(th, [30, 31, 365, 366], [1, 2, 15, 16], [99.99, 100, 2999, 3000])
    assert r.tolist() == [5, 4, 2, 1]  # R: "at most N days"
    assert f.tolist() == [1, 2, 4, 5]  # F: "at least"
    assert m.tolist() == [1, 2, 4, 5]  # M: "at least"


@given(st.lists(st.tuples(st.integers(0, 400), st.integers(1, 30), st.floats(0, 5000)), min_size=1, max_size=50))
def test_quantile_thresholds_are_ascending_and_adoptable(rows: list[tuple[int, int, float]]) -> None:
    r, f, m = (np.array(c, dtype=float) for c in zip(*rows, strict=True))
    th = quantile_thresholds(r, f, m)
    for cuts in th.to_dict().values():
        assert list(cuts) == sorted(cuts)
    assert RfmThresholds.from_dict(json.loads(json.dumps(th.to_dict()))) == th


# --- held-out evaluation -----------------------------------------------------------------
# The at-risk model against its baselines: tests/scoring/test_valuemodel_heldout.py.


def test_evaluate_needs_a_holdout(cdnow_histories: dict[int, History]) -> None:
    with pytest.raises(ValueModelError):
        evaluate(cdnow_histories, epoch_day("19980630"))


# --- the bundled model -----------------------------------------------------------------------


@pytest.fixture(scope="module")
def value_model(cdnow_histories: dict[int, History]) -> ValueModel:
    return fit_value_model(cdnow_histories, epoch_day("19980630"), horizon_days=90, version="test-1")


def test_value_model_round_trips_through_json(value_model: ValueModel) -> None:
    data = json.loads(json.dumps(value_model.to_dict()))
    assert ValueModel.from_dict(data) == value_model
    assert data["format"] == "tierstream.valuemodel/4" and data["version"] == "test-1"
    assert data["at_risk"]["feature_names"] == list(FEATURE_NAMES)
    assert data["at_risk"]["windows"] == 3 and data["at_risk"]["step_days"] == 30
    assert data["at_risk"]["requested_horizon_days"] == 0
    assert data["at_risk"]["l2"] in (*L2_CANDIDATES, 0.0)  # 0: BG/NBD's own P(no purchase) won the validation


def test_value_model_parts_match_the_separate_fits(
    value_model: ValueModel, cdnow_histories: dict[int, History]
) -> None:
    for name, want in DAILY["19980630"]["bg"].items():
        assert rel_err(getattr(value_model.bg, name), want) < 1e-3
    _, rows = daily_summary(cdnow_histories, "19980630")
    x, t_x, T, m = rows.T
    assert value_model.value(x, t_x, T, m) == pytest.approx(DAILY["19980630"]["clv"], rel=1e-3)
    risk = value_model.risk(x, t_x, T, m)
    assert np.all((risk >= 0) & (risk <= 1))
    th = value_model.thresholds
    assert list(th.recency_days) == sorted(th.recency_days) and th.recency_days[-1] <= 365


def test_value_model_ignores_purchases_after_as_of(cdnow_histories: dict[int, History]) -> None:
    cut = epoch_day("19980131")
    truncated = {c: [(d, a) for d, a in h if d <= cut] for c, h in cdnow_histories.items()}
    assert fit_value_model(cdnow_histories, cut) == fit_value_model(truncated, cut)


@pytest.mark.parametrize(
    "broken",
    [
        {},
        {"format": "other/1"},
        {"format": "tierstream.valuemodel/1", "version": "v"},
        {"format": "tierstream.valuemodel/2", "version": "v"},
        {"format": "tierstream.valuemodel/3"},
        {"format": "tierstream.valuemodel/4", "version": "v"},
    ],
)
def test_value_model_rejects_malformed_mappings(broken: dict[str, object]) -> None:
    with pytest.raises(ValueModelError):
        ValueModel.from_dict(broken)


def test_value_model_rejects_bad_parameters(value_model: ValueModel) -> None:
    data = value_model.to_dict()
    data["bgnbd"]["a"] = -1.0
    with pytest.raises(ValueModelError):
        ValueModel.from_dict(data)
    data = value_model.to_dict()
    data["at_risk"]["weights"] = data["at_risk"]["weights"][:-1]
    with pytest.raises(ValueModelError):
        AtRiskModel.from_dict(data["at_risk"])
    data = value_model.to_dict()
    data["at_risk"]["feature_names"] = [*data["at_risk"]["feature_names"][:-1], "shoe_size"]
    with pytest.raises(ValueModelError):
        AtRiskModel.from_dict(data["at_risk"])


# A model written by format 1 (the at-risk model on FEATURE_NAMES_V1): fitted on CDNOW
# to 1997-12-31 with horizon 90 by the code before format 2, with its risk and CLV for V1_ROWS.
MODEL_V1 = {
    "format": "tierstream.valuemodel/1", "version": "cdnow-v1", "as_of_day": 10226, "window_days": 365,
    "bgnbd": {"r": 0.24837100263835585, "alpha": 33.340482964879406, "a": 0.6166962742963216,
              "b": 2.1984727307323655},
    "gamma_gamma": {"p": 5.038147834233639, "q": 3.978619921035501, "v": 21.0887840252015},
    "at_risk": {
        "horizon_days": 90,
        "feature_names": ["log_recency", "log_frequency", "log_overdue", "log_age", "log_mean_value", "p_alive",
                          "log_expected", "is_one_time"],
        "center": [4.982934068327396, 0.44935762494897596, 0.5161108712718903, 5.441723134358172,
                   1.3539327234839584, 0.8120167598953505, -1.9868250298394494, 0.5973695375477301],
        "scale": [0.9211835433911648, 0.6371487407065797, 0.9397926734590476, 0.10077840840931751,
                  1.697259728773276, 0.27327560923377014, 1.0245785153865024, 0.49042754119006415],
        "weights": [1.8568031111800654, 0.24512052986777136, -0.2562247796936979, 0.025253112434522166,
                    0.055043707378428126, -0.15165805323454137, -0.01225468107208039, -0.28095789127428805,
                    0.12993320205618453],
    },
    "thresholds": {"recency_days": [122, 285, 309, 332], "frequency_counts": [1.0, 1.0, 2.0, 3.0],
                   "monetary_amounts": [14.99, 29.69, 51.46, 107.85]},
}
V1_ROWS = [(0, 0, 30, 0.0), (1, 12, 364, 11.77), (3, 345, 364, 23.72), (7, 120, 340, 42.5), (25, 191, 350, 37.2),
           (2, 40, 300, 150.0)]
V1_RISK = [0.6261778419456802, 0.9129292852131118, 0.6134884565080708, 0.8355646246135517, 0.9159908207593292,
           0.8360006705939381]
V1_CLV = [31.955625904359433, 3.6799657554243046, 51.49592440938678, 4.677440695175156, 0.03812838884931463,
          34.900440880125615]


def test_format_1_model_still_loads_and_scores_as_fitted() -> None:
    model = ValueModel.from_dict(json.loads(json.dumps(MODEL_V1)))
    assert model.at_risk.feature_names == FEATURE_NAMES_V1
    x, t_x, T, m = (np.array(c, dtype=float) for c in zip(*V1_ROWS, strict=True))
    assert model.risk(x, t_x, T, m) == pytest.approx(V1_RISK, rel=1e-12)
    assert model.value(x, t_x, T, m) == pytest.approx(V1_CLV, rel=1e-12)
    again = ValueModel.from_dict(json.loads(json.dumps(model.to_dict())))  # re-saved as format 3
    assert again == model and model.to_dict()["format"] == "tierstream.valuemodel/4"


# A model written by format 2 (the at-risk model on FEATURE_NAMES_V2): fitted on CDNOW
# to 1997-12-31 with horizon 90 by the code before format 3, with its risk for V1_ROWS.
MODEL_V2 = {
    "format": "tierstream.valuemodel/2", "version": "cdnow-v2", "as_of_day": 10226, "window_days": 365,
    "bgnbd": {"r": 0.2483710049311997, "alpha": 33.340483685730554, "a": 0.6166962494413759,
              "b": 2.198472648227284},
    "gamma_gamma": {"p": 5.038147854124797, "q": 3.9786199128951076, "v": 21.088783842782668},
    "at_risk": {
        "horizon_days": 90,
        "feature_names": ["log_recency", "log_frequency", "log_overdue", "log_age", "log_mean_value", "p_alive",
                          "log1p_expected", "is_one_time", "p_no_purchase", "logit_no_purchase"],
        "center": [4.857953993712068, 0.42051125800362255, 0.48800393646530366, 5.293881123473501,
                   1.2984111486165022, 0.8176766928163847, 0.19809820646300558, 0.61405741762127,
                   0.8446496010537348, 1.9845709401169993],
        "scale": [0.8998141175624548, 0.613096118641835, 0.9146278224857546, 0.17165376959813544,
                  1.6847643500708027, 0.26970907216324225, 0.24007219312890749, 0.4868171170835829,
                  0.15907326075327902, 1.061134169040339],
        "weights": [1.868426732704657, 0.12833952202657153, -0.17286046082368703, -0.004855636887203279,
                    0.035069228631776785, -0.12172027160685735, 0.04516713667049643, -0.1567806389256097,
                    0.0976741083799202, 0.16137520972235675, 0.1445495124952363],
        "l2": 0.1, "windows": 3, "step_days": 30,
    },
    "thresholds": {"recency_days": [122, 285, 309, 332], "frequency_counts": [1.0, 1.0, 2.0, 3.0],
                   "monetary_amounts": [14.99, 29.69, 51.46, 107.85]},
}
V2_RISK = [0.8088967436602558, 0.8896589518181556, 0.6316419242757644, 0.8426198985377105, 0.8929178579541985,
           0.8348597386425024]


def test_format_2_model_still_loads_and_scores_as_fitted() -> None:
    model = ValueModel.from_dict(json.loads(json.dumps(MODEL_V2)))
    assert model.at_risk.feature_names == FEATURE_NAMES_V2 and model.at_risk.requested_horizon_days == 0
    x, t_x, T, m = (np.array(c, dtype=float) for c in zip(*V1_ROWS, strict=True))
    assert model.risk(x, t_x, T, m) == pytest.approx(V2_RISK, rel=1e-12)
    assert model.value(x, t_x, T, m) == pytest.approx(V1_CLV, rel=1e-7)  # the same BG/NBD and Gamma-Gamma fit
    again = ValueModel.from_dict(json.loads(json.dumps(model.to_dict())))
    assert again == model and model.to_dict()["format"] == "tierstream.valuemodel/4"


def test_expected_purchases_stay_finite_when_a_plus_b_is_below_one() -> None:
    """A fit on a short history can give a + b < 1; then 2F1(r, b; a + b - 1; z) of a one-time buyer
    is negative and its log was NaN. The expectation is still a positive number, growing with t."""
    params = BgNbdParams(r=0.264, alpha=28.9, a=0.258, b=0.549)
    got = expected_purchases(params, [30.0, 90.0, 365.0], 0, 0, 41)
    assert np.all(np.isfinite(got)) and np.all(got > 0) and np.all(np.diff(got) > 0)
    assert np.isfinite(p_no_purchase(params, 90.0, 0, 0, 41)).all()


# --- BG/NBD probability of no purchase in a horizon -----------------------------------------


@given(summaries, st.floats(0, 365), st.floats(0, 365))
def test_p_no_purchase_is_a_probability_falling_with_the_horizon(
    row: tuple[float, float, float], t1: float, t2: float
) -> None:
    params = BgNbdParams(r=0.25, alpha=30.9, a=0.79, b=2.43)
    x, t_x, T = row
    short, long = p_no_purchase(params, [min(t1, t2), max(t1, t2)], x, t_x, T)
    dead = 1.0 - p_alive(params, x, t_x, T)[0]
    assert 1.0 >= short >= long >= dead - 1e-12  # a dead customer never buys; alive ones may
    assert p_no_purchase(params, 0.0, x, t_x, T)[0] == pytest.approx(1.0)


def test_p_no_purchase_of_a_one_time_buyer_is_the_nbd_zero_class() -> None:
    # x = 0: alive for sure, lambda ~ Gamma(r, alpha + T), P(0 in t) = ((alpha + T) / (alpha + T + t))^r.
    params = BgNbdParams(r=0.25, alpha=30.9, a=0.79, b=2.43)
    assert p_no_purchase(params, 90, 0, 0, 200)[0] == pytest.approx((230.9 / 320.9) ** 0.25, rel=1e-12)


# --- the package stays a pure functional core ------------------------------------------------

FORBIDDEN_MODULES = {
    "os",
    "sys",
    "io",
    "pathlib",
    "time",
    "datetime",
    "asyncio",
    "faust",
    "redis",
    "random",
    "socket",
    "subprocess",
    "shutil",
    "tempfile",
    "logging",
}
FORBIDDEN_CALLS = {"open", "print", "input", "exec", "eval", "__import__"}


@pytest.mark.parametrize("path", sorted(PACKAGE.glob("*.py")), ids=lambda p: p.name)
def test_valuemodel_module_is_pure(path: Path) -> None:
    tree = ast.parse(path.read_text())
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            roots = {alias.name.split(".")[0] for alias in node.names}
        elif isinstance(node, ast.ImportFrom):
            roots = {(node.module or "").split(".")[0]}
        else:
            roots = set()
        assert not roots & FORBIDDEN_MODULES, (path.name, roots)
        if isinstance(node, ast.Call) and isinstance(node.func, ast.Name):
            assert node.func.id not in FORBIDDEN_CALLS, (path.name, node.func.id)


def test_expected_value_approaches_own_mean_with_many_purchases() -> None:
    assert math.isclose(expected_average_value(GammaGammaParams(p=2, q=3, v=4), [1e9], [7.0])[0], 7.0, rel_tol=1e-6)


# --- the BG/NBD-only candidate ---------------------------------------------------------------------

def _window_where(labels_follow: int, rng: np.random.Generator, n: int = 3000) -> Any:
    """A training window whose lapse labels follow one feature column (the others are noise)."""
    features = rng.normal(size=(n, len(FEATURE_NAMES)))
    lapsed = (features[:, labels_follow] + 0.3 * rng.normal(size=n) > 0).astype(np.float64)
    repeat = np.ones(n, dtype=np.bool_)
    return _Window(features, lapsed, {"repeat": repeat, "repeat_top_value_third": repeat})


def test_the_bgnbd_only_model_passes_bgnbd_p_no_purchase_through() -> None:
    rng = np.random.default_rng(3)
    windows = [_window_where(0, rng) for _ in range(2)]
    k = FEATURE_NAMES.index("logit_no_purchase")
    model = bgnbd_only(_fit(windows, 0.1, FEATURE_NAMES), FEATURE_NAMES)
    logits = windows[0].features[:, k]
    assert model.predict(windows[0].features) == pytest.approx(1 / (1 + np.exp(-logits)), rel=1e-9)


@pytest.mark.parametrize(("latest_follows", "expected"), [("logit_no_purchase", True), ("log_recency", False)])
def test_bgnbd_is_preferred_only_when_it_ranks_the_latest_window_better(latest_follows: str, expected: bool) -> None:
    rng = np.random.default_rng(5)
    older = [_window_where(FEATURE_NAMES.index("log_recency"), rng) for _ in range(2)]
    latest = _window_where(FEATURE_NAMES.index(latest_follows), rng)
    assert prefers_bgnbd([latest, *older], FEATURE_NAMES, 0.1) is expected
    assert prefers_bgnbd([latest], FEATURE_NAMES, 0.1) is False  # nothing to validate on


def test_without_amounts_the_top_value_third_is_the_most_frequent() -> None:
    histories = [[(0, 0.0), (d, 0.0)] for d in (10, 20, 30)] + [[(0, 0.0), (5, 0.0), (9, 0.0), (12, 0.0)]]
    masks = segments(summarise(purchase_log(histories), 40))
    assert masks["repeat"].tolist() == [True] * 4
    # ceil(4 / 3) = 2: the customer with three repeat days, then the first of the ties
    assert masks["repeat_top_value_third"].tolist() == [True, False, False, True]
