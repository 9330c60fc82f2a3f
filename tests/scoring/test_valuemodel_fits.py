"""How the value model fits where the likelihood has no interior maximum, and the checks it reports.

- The BG/NBD's no-drop-out limit (the NBD) and its predictions, vectorised and scalar.
- The held-out likelihood that chooses among the limit and penalised fits: an
  exact distribution of the purchase days in a coming period (sums to 1, its
  zero class is P(no purchase), its mean is the expected purchases).
- Boundary detection on data drawn without drop-out, with very similar rates,
  and on a real-log-like ridge; interior fits (CDNOW) are left alone.
- lifetimes' penalised fit as `evaluate`'s baseline; the ridge fit.
- Gamma-Gamma: the spend/frequency correlation check and the penalised fit.
- Paired bootstrap metrics with resampling weights equal the plain metrics.
- Model format 4 round trip; a format-3 file still loads; too-small histories.
"""

from __future__ import annotations

import json
import math
from collections import defaultdict
from datetime import date
from pathlib import Path

import numpy as np
import pytest
from hypothesis import example, given, settings
from hypothesis import strategies as st
from scipy.integrate import quad
from scipy.optimize import approx_fprime

from scoring.valuemodel import (
    BgNbdParams,
    GammaGammaParams,
    ValueModel,
    ValueModelError,
    evaluate,
    expected_purchases,
    fit_bgnbd,
    fit_gamma_gamma,
    fit_value_model,
    p_alive,
    p_no_purchase,
    precision_at_top,
    purchase_log,
    roc_auc,
    summarise,
)
from scoring.valuemodel.bgnbd import (
    expected_if_alive_by_sum,
    fit_nbd,
    log_likelihood,
    log_p_purchase_days,
    nbd_negative_log_likelihood,
    nbinom_logsf,
)
from scoring.valuemodel.bootstrap import Ranked, paired_intervals
from scoring.valuemodel.choice import FitChoice
from scoring.valuemodel.optimize import AtBoundaryError
from scoring.valuemodel.penalised import fit_bgnbd_as_lifetimes, fit_bgnbd_ridge
from scoring.valuemodel.purchasefit import MIN_REPEAT_CUSTOMERS, NotEnoughHistoryError, fit_purchases
from scoring.valuemodel.scalar import customer_value, expected_1, p_alive_1
from scoring.valuemodel.spendfit import (
    MATERIAL_CORRELATION,
    SpendCheck,
    fit_spend,
    log_density_of_mean_spend,
    spend_check,
)

CDNOW = Path(__file__).resolve().parents[1] / "fixtures" / "cdnow" / "CDNOW_sample.txt"
History = list[tuple[int, float]]
CDNOW_BG = BgNbdParams(r=0.2425945434210672, alpha=30.89521901254163, a=0.7929218333478811, b=2.4259057287217765)
NBD = BgNbdParams.nbd(0.7, 55.0)

summaries = st.tuples(st.integers(0, 40), st.floats(0, 1), st.floats(1, 400)).map(
    lambda v: (float(v[0]), v[1] * v[2] if v[0] > 0 else 0.0, v[2])
)
parameters = st.tuples(
    st.floats(0.05, 5), st.floats(1, 200), st.floats(0.05, 5), st.floats(0.05, 10), st.booleans()
).map(lambda v: BgNbdParams(*v[:4]) if v[4] else BgNbdParams.nbd(v[0], v[1]))


def epoch_day(yyyymmdd: str) -> int:
    return (date(int(yyyymmdd[:4]), int(yyyymmdd[4:6]), int(yyyymmdd[6:8])) - date(1970, 1, 1)).days


@pytest.fixture(scope="module")
def cdnow() -> dict[int, History]:
    histories: dict[int, History] = defaultdict(list)
    for line in CDNOW.read_text().splitlines():
        customer, _, day, _, amount = line.split()
        histories[int(customer)].append((epoch_day(day), float(amount)))
    return {c: sorted(h) for c, h in histories.items()}


def shop(
    n: int, days: int, seed: int, rate: tuple[float, float], drop: tuple[float, float] | None
) -> dict[int, History]:
    """Customers arriving in the first 200 days; Gamma(r, alpha) rates; Beta(a, b) drop-out, or none."""
    rng = np.random.default_rng(seed)
    histories = {}
    for c in range(n):
        lam, p = rng.gamma(rate[0], 1.0 / rate[1]), (rng.beta(*drop) if drop else 0.0)
        t = rng.uniform(0, 200)
        purchases = [(int(t), round(float(rng.lognormal(3.0, 0.5)), 2))]
        while (t := t + rng.exponential(1.0 / lam)) < days:
            purchases.append((int(t), round(float(rng.lognormal(3.0, 0.5)), 2)))
            if rng.random() < p:
                break
        histories[c] = purchases
    return histories


# --- the no-drop-out limit ----------------------------------------------------------------------


@given(summaries, st.floats(0, 365))
def test_the_nbd_limit_is_alive_and_buys_at_its_posterior_rate(row: tuple[float, float, float], t: float) -> None:
    x, t_x, T = row
    assert p_alive(NBD, x, t_x, T)[0] == 1.0 == p_alive_1(NBD, x, t_x, T)
    want = (NBD.r + x) * t / (NBD.alpha + T)
    assert expected_purchases(NBD, t, x, t_x, T)[0] == pytest.approx(want, rel=1e-12)
    assert expected_1(NBD, t, x, t_x, T, 1.0) == pytest.approx(want, rel=1e-12)
    none = ((NBD.alpha + T) / (NBD.alpha + T + t)) ** (NBD.r + x)
    assert p_no_purchase(NBD, t, x, t_x, T)[0] == pytest.approx(none, rel=1e-9, abs=1e-15)


def test_the_nbd_limit_is_the_bgnbd_as_a_goes_to_0() -> None:
    x, t_x, T = np.array([0.0, 1.0, 4.0, 12.0]), np.array([0.0, 20.0, 150.0, 170.0]), np.array([60.0, 200.0] * 2)
    for tiny in (1e-6, 1e-9):
        near = BgNbdParams(NBD.r, NBD.alpha, tiny, 3.0)
        want = expected_purchases(NBD, 90.0, x, t_x, T)
        assert expected_purchases(near, 90.0, x, t_x, T) == pytest.approx(want, rel=1e-5)
        assert log_likelihood(near, x, t_x, T) == pytest.approx(log_likelihood(NBD, x, t_x, T), abs=1e-5)


def test_the_nbd_limit_round_trips_and_older_mappings_are_bgnbd() -> None:
    data = json.loads(json.dumps(NBD.to_dict()))
    assert data["kind"] == "nbd" and BgNbdParams.from_dict(data) == NBD and not NBD.drops_out
    assert BgNbdParams.from_dict({"r": 1, "alpha": 2, "a": 3, "b": 4}) == BgNbdParams(1, 2, 3, 4)
    with pytest.raises(ValueModelError, match="unknown kind"):
        BgNbdParams.from_dict({**CDNOW_BG.to_dict(), "kind": "pareto"})
    with pytest.raises(ValueModelError):
        BgNbdParams.from_dict({"kind": "nbd", "r": 0.0, "alpha": 2})


def test_nbd_gradient_matches_finite_differences() -> None:
    x, T = np.array([0.0, 1, 3, 7, 20]), np.array([0.3, 0.5, 0.9, 1.0, 0.7])
    theta = np.array([0.2, -0.4])
    numeric = approx_fprime(theta, lambda v: nbd_negative_log_likelihood(v, x, T)[0], 1e-7)
    assert nbd_negative_log_likelihood(theta, x, T)[1] == pytest.approx(numeric, abs=1e-6)


def test_stream_and_batch_agree_for_the_nbd_limit(cdnow: dict[int, History]) -> None:
    model = fit_value_model(cdnow, epoch_day("19980630"))
    limit = ValueModel.from_dict({**model.to_dict(), "bgnbd": NBD.to_dict()})
    x, t_x, T, m = 3, 120, 300, 25.0
    one = customer_value(limit, x, t_x, T, m)
    assert one.p_alive == 1.0 and one.expected_90 == pytest.approx(expected_purchases(NBD, 90, x, t_x, T)[0])
    assert one.clv == pytest.approx(limit.value([x], [t_x], [T], [m])[0], rel=1e-9)
    assert one.at_risk_score == pytest.approx(limit.risk([x], [t_x], [T], [m])[0], rel=1e-9)


# --- the held-out likelihood --------------------------------------------------------------------


@settings(max_examples=60, deadline=None)
@given(parameters, summaries, st.floats(1, 365))
@example(BgNbdParams.nbd(0.0625, 1.0), (0.0, 0.0, 1.0), 157.0)  # a long tail: once 5e-7 of the mean left out
@example(BgNbdParams(1.0, 1.0, 1.0000000001164153, 1.0), (0.0, 0.0, 1.0), 1.0)  # a -> 1: the closed form was 5e-6 off
def test_purchase_days_in_a_period_are_a_distribution_with_the_models_zero_class_and_mean(
    params: BgNbdParams, row: tuple[float, float, float], t: float
) -> None:
    x, t_x, T = row
    mean = (params.r + x) * t / (params.alpha + T)  # of one who never drops out: the widest case
    end = math.ceil(mean + 60 * math.sqrt(mean * (1 + mean / (params.r + x))) + 100)
    stay = (params.alpha + T) / (params.alpha + T + t)
    # a small r + x has a long tail: extend the range until what it leaves out of the mean is below 1e-13
    while end * math.exp(float(nbinom_logsf(np.array([end - 1.0]), params.r + x, stay)[0])) / stay > 1e-13:
        end *= 2
    n = np.arange(0, end)
    p = np.exp(log_p_purchase_days(params, n, t, x, t_x, T))
    assert p.sum() == pytest.approx(1.0, abs=1e-8)
    assert p[0] == pytest.approx(p_no_purchase(params, t, x, t_x, T)[0], rel=1e-9, abs=1e-12)
    assert float(n @ p) == pytest.approx(expected_purchases(params, t, x, t_x, T)[0], rel=1e-7, abs=1e-10)


@settings(max_examples=40, deadline=None)
@given(parameters.filter(lambda p: p.drops_out), summaries, st.floats(1, 365))
@example(BgNbdParams(0.05078125, 1.0, 0.0625, 1.0), (0.0, 0.0, 1.0), 46.0)  # the sum once stopped 1e-6 short
def test_the_sum_form_of_expected_purchases_equals_the_closed_form(
    params: BgNbdParams, row: tuple[float, float, float], t: float
) -> None:
    x, t_x, T = row
    want = expected_purchases(params, t, x, t_x, T)[0]
    got = expected_if_alive_by_sum(params, t, x, T) * p_alive(params, x, t_x, T)[0]
    assert got == pytest.approx(want, rel=1e-6, abs=1e-12)  # the closed form loses digits as a -> 1


def test_expected_purchases_stay_finite_when_rates_are_nearly_equal() -> None:
    """r and alpha in the tens of thousands (everyone buys at about r / alpha a day): scipy's 2F1 gives
    NaN there; the sum gives about the alive customers' Poisson count, less what drop-out takes."""
    params = BgNbdParams(r=57805.56, alpha=124503.9, a=1.1055, b=1.1048)
    x, t_x, T = np.array([0.0, 1.0, 3.0]), np.array([0.0, 1.0, 2.0]), np.array([1.0, 1.0, 2.0])
    got = expected_purchases(params, 90.0, x, t_x, T)
    assert np.all(np.isfinite(got)) and np.all(got > 0)
    assert np.all(got <= (params.r + x) * 90.0 / (params.alpha + T))  # no drop-out is the upper bound
    scalar = [expected_1(params, 90.0, *row, p_alive_1(params, *row)) for row in zip(x, t_x, T, strict=True)]
    assert scalar == pytest.approx(list(got), rel=1e-12)


@pytest.mark.parametrize("a", [1.0 + 1.2e-10, 1.0 - 1.2e-10, 1.0 + 3e-7, 1.0])
def test_expected_purchases_keep_their_digits_when_a_is_near_1(a: float) -> None:
    """The closed form divides 1 - survive by a - 1, both near 0 when a is near 1 (a ridge on log a pulls a
    towards 1): there the sum is used, by the vectorised and the scalar forms alike (a = 1 + 1.2e-10 was
    4.7e-6 off)."""
    params = BgNbdParams(r=1.0, alpha=1.0, a=a, b=1.0)
    x, t_x, T = np.array([0.0, 2.0, 5.0]), np.array([0.0, 3.0, 40.0]), np.array([1.0, 30.0, 60.0])
    want = [expected_if_alive_by_sum(params, 30.0, *row[::2]) * p_alive(params, *row)[0]
            for row in zip(x, t_x, T, strict=True)]
    assert list(expected_purchases(params, 30.0, x, t_x, T)) == pytest.approx(want, rel=1e-12)
    scalar = [expected_1(params, 30.0, *row, p_alive_1(params, *row)) for row in zip(x, t_x, T, strict=True)]
    assert scalar == pytest.approx(want, rel=1e-12)


# --- boundary detection and the fit the model uses ---------------------------------------------


@pytest.fixture(scope="module")
def no_dropout() -> dict[int, History]:
    return shop(2500, 450, seed=11, rate=(0.7, 60.0), drop=None)


def test_data_without_drop_out_have_no_interior_bgnbd_maximum(no_dropout: dict[int, History]) -> None:
    s = summarise(purchase_log(list(no_dropout.values())), 400)
    with pytest.raises(AtBoundaryError, match="a -> 0") as info:
        fit_bgnbd(s.x, s.t_x, s.T)
    assert "gradient" not in str(info.value) and "[" not in str(info.value)  # no raw optimiser output
    nbd = fit_nbd(s.x, s.t_x, s.T)
    assert nbd.r == pytest.approx(0.7, rel=0.2) and nbd.alpha == pytest.approx(60.0, rel=0.25)


def test_the_boundary_is_a_result_chosen_on_held_out_days(no_dropout: dict[int, History]) -> None:
    log = purchase_log(list(no_dropout.values()))
    params, choice = fit_purchases(log, 400)
    assert choice.method in ("nbd_limit", "penalised") and choice.heldout_days == 90
    assert "no interior maximum" in choice.reason and "a -> 0" in choice.boundary
    scores = dict(choice.heldout)
    assert set(scores) == {"nbd_limit", "penalised 0.0001", "penalised 0.001", "penalised 0.01", "penalised 0.1"}
    best = max(scores, key=lambda k: scores[k])
    assert (choice.method == "nbd_limit") == (best == "nbd_limit") and choice.heldout[0][0] == best
    if choice.method == "penalised":
        assert f"penalised {choice.penalty:g}" == best
    else:
        s = summarise(log, 400)
        assert not params.drops_out and params == fit_nbd(s.x, s.t_x, s.T)
    assert FitChoice.from_dict(json.loads(json.dumps(choice.to_dict()))) == choice


def test_nearly_equal_purchase_rates_are_a_boundary_too() -> None:
    """Every customer buying at the same rate: r and alpha run to infinity together. A ridge fit is
    chosen and its predictions are finite."""
    histories = shop(1500, 450, seed=5, rate=(2000.0, 60000.0), drop=(2.0, 20.0))
    log = purchase_log(list(histories.values()))
    s = summarise(log, 400)
    with pytest.raises(AtBoundaryError, match="r -> infinity"):
        fit_bgnbd(s.x, s.t_x, s.T)
    params, choice = fit_purchases(log, 400)
    assert choice.method in ("penalised", "nbd_limit") and "r -> infinity" in choice.boundary
    assert np.all(np.isfinite(expected_purchases(params, 90.0, s.x, s.t_x, s.T)))


def test_an_interior_maximum_is_the_unpenalised_fit(cdnow: dict[int, History]) -> None:
    log = purchase_log(list(cdnow.values()))
    s = summarise(log, epoch_day("19971231"))
    params, choice = fit_purchases(log, epoch_day("19971231"))
    assert params == fit_bgnbd(s.x, s.t_x, s.T) and choice.method == "mle" and choice.heldout == ()
    assert fit_bgnbd_as_lifetimes(s.x, s.t_x, s.T) == (params, 0.0)


def test_a_stronger_ridge_pulls_the_log_parameters_in(no_dropout: dict[int, History]) -> None:
    s = summarise(purchase_log(list(no_dropout.values())), 400)
    scale = float(s.T.max())
    norms = []
    for strength in (1e-3, 1e-2, 1e-1, 1.0):
        p = fit_bgnbd_ridge(s.x, s.t_x, s.T, strength)
        norms.append(float(np.linalg.norm(np.log([p.r, p.alpha / scale, p.a, p.b]))))
    assert norms == sorted(norms, reverse=True)


def test_lifetimes_baseline_is_penalised_only_when_it_must_be(no_dropout: dict[int, History]) -> None:
    s = summarise(purchase_log(list(no_dropout.values())), 400)
    params, penalizer = fit_bgnbd_as_lifetimes(s.x, s.t_x, s.T)
    assert penalizer in (0.001, 0.01, 0.1, 1.0, 10.0) and params.drops_out
    assert np.all(np.isfinite(p_alive(params, s.x, s.t_x, s.T)))


# --- Gamma-Gamma ------------------------------------------------------------------------------


def test_spend_check_reports_pearson_r_and_flags_it_when_material() -> None:
    rng = np.random.default_rng(2)
    x = rng.integers(1, 20, 500).astype(float)
    independent = spend_check(x, rng.lognormal(3, 0.5, 500))
    assert abs(independent.correlation) < MATERIAL_CORRELATION and not independent.material
    assert independent.warning() == "" and independent.customers == 500
    rising = spend_check(x, 5.0 * x + rng.normal(0, 5, 500) + 30.0)
    assert rising.correlation == pytest.approx(float(np.corrcoef(x, 5.0 * x + 0)[0, 1]), abs=0.1)
    assert rising.material and "Pearson r = +0.9" in rising.warning()
    one_time = spend_check([0, 0, 3], [0, 0, 20])  # fewer than 3 repeat buyers: undefined, reported as 0
    assert one_time == SpendCheck(0.0, 1)
    assert SpendCheck.from_dict(json.loads(json.dumps(rising.to_dict()))) == rising


def test_spend_model_is_the_unpenalised_fit_on_cdnow(cdnow: dict[int, History]) -> None:
    log = purchase_log(list(cdnow.values()))
    s = summarise(log, epoch_day("19980630"))
    params, choice = fit_spend(log, epoch_day("19980630"))
    assert params == fit_gamma_gamma(s.x, s.mean_repeat_value) and choice.method == "mle"


def test_spend_on_a_boundary_is_fitted_with_a_ridge() -> None:
    """Each customer spends the same amount every time (amounts differ between customers): the
    Gamma-Gamma likelihood runs off to q, v -> infinity. A ridge chosen on held-out days fits it."""
    rng = np.random.default_rng(4)
    histories = {}
    for c in range(800):
        amount = float(rng.gamma(4.0, 5.0))
        histories[c] = [(d, amount) for d in sorted(set(rng.integers(0, 300, 6).tolist()))]
    log = purchase_log(list(histories.values()))
    s = summarise(log, 300)
    with pytest.raises(AtBoundaryError, match="infinity"):
        fit_gamma_gamma(s.x, s.mean_repeat_value)
    params, choice = fit_spend(log, 300)
    assert choice.method == "penalised" and "infinity" in choice.boundary and choice.heldout_days == 90
    assert params.q > 1 and params.population_mean == pytest.approx(20.0, rel=0.15)
    assert f"penalised {choice.penalty:g}" == choice.heldout[0][0]


@pytest.mark.parametrize(("n", "x", "m"), [(1.0, 0.0, 0.0), (3.0, 2.0, 40.0), (10.0, 25.0, 12.0)])
def test_the_held_out_spend_density_integrates_to_one(n: float, x: float, m: float) -> None:
    params = GammaGammaParams(p=6.25, q=3.74, v=15.44)
    total, _ = quad(lambda z: math.exp(log_density_of_mean_spend(params, np.array([n]), np.array([z]),
                                                                  np.array([x]), np.array([m]))[0]), 0, np.inf)
    assert total == pytest.approx(1.0, abs=1e-6)


# --- bootstrap with resampling weights ----------------------------------------------------------

rows = st.lists(st.tuples(st.booleans(), st.integers(0, 6), st.integers(0, 3)), min_size=2, max_size=40)


@given(rows)
def test_weighted_metrics_equal_the_metrics_of_the_resample(data: list[tuple[bool, int, int]]) -> None:
    labels = np.array([r[0] for r in data])
    scores = np.array([float(r[1]) for r in data])
    weights = np.array([float(r[2]) for r in data])
    ranked = Ranked.of(labels, scores)
    if labels.all() or not labels.any():
        return
    ones = np.ones(labels.size)
    assert ranked.roc_auc(ones) == pytest.approx(roc_auc(labels, scores))
    assert ranked.precision_at_top(ones) == pytest.approx(precision_at_top(labels, scores))
    picked = np.repeat(np.arange(labels.size), weights.astype(int))
    if picked.size == 0 or labels[picked].all() or not labels[picked].any():
        return
    assert ranked.roc_auc(weights) == pytest.approx(roc_auc(labels[picked], scores[picked]))
    assert ranked.precision_at_top(weights) == pytest.approx(precision_at_top(labels[picked], scores[picked]))


def test_paired_intervals_bracket_a_clear_gain_and_a_tie() -> None:
    rng = np.random.default_rng(8)
    labels = rng.random(3000) < 0.4
    good = labels + rng.normal(0, 0.8, 3000)
    intervals = paired_intervals(labels, {"m": good, "same": good.copy(), "noise": rng.random(3000)}, "m", 300)
    assert intervals["same"]["roc_auc"] == (0.0, 0.0)
    low, high = intervals["noise"]["roc_auc"]
    assert 0 < low < roc_auc(labels, good) - 0.5 < high


# --- model files and small histories ----------------------------------------------------------


def test_format_4_records_how_each_part_was_fitted(cdnow: dict[int, History]) -> None:
    model = fit_value_model(cdnow, epoch_day("19980630"))
    data = json.loads(json.dumps(model.to_dict()))
    assert data["format"] == "tierstream.valuemodel/4" and data["bgnbd"]["kind"] == "bgnbd"
    assert data["fits"]["bgnbd"]["method"] == "mle" and data["fits"]["gamma_gamma"]["method"] == "mle"
    assert -1 <= data["spend_check"]["pearson_r"] <= 1 and data["spend_check"]["customers"] > 100
    assert ValueModel.from_dict(data) == model
    older = {k: v for k, v in data.items() if k not in ("fits", "spend_check")}
    older["format"] = "tierstream.valuemodel/3"
    older["bgnbd"] = {k: v for k, v in data["bgnbd"].items() if k != "kind"}
    read = ValueModel.from_dict(older)  # format 3 had none of the records: read as unknown
    assert read.bg == model.bg and read.bg_fit is None and read.gg_fit is None and read.spend_check is None
    assert "fits" not in read.to_dict()
    bad = {**data, "fits": {"bgnbd": {"method": "guess", "reason": "?"}}}
    with pytest.raises(ValueModelError, match="unknown method"):
        ValueModel.from_dict(bad)


def test_too_small_a_history_says_how_much_is_needed() -> None:
    three = {"a": [(0, 10.0), (31, 12.0)], "b": [(4, 5.0)], "c": [(6, 7.0), (66, 9.0), (97, 9.0)]}
    for run in (lambda: fit_value_model(three, 120), lambda: evaluate(three, 60)):
        with pytest.raises(NotEnoughHistoryError) as info:
            run()
        message = str(info.value)
        assert f"at least {MIN_REPEAT_CUSTOMERS} customers with a repeat purchase" in message
        assert "this history has" in message and "(of 3 customers)" in message
        assert "gradient" not in message and "[" not in message


def test_a_segment_with_nothing_to_rank_is_left_out(cdnow: dict[int, History]) -> None:
    """Every repeat buyer buys on the day after the cut: their segments have nothing to rank and are
    left out (not a crash); all customers, one-time buyers among them, are still scored. When every
    customer buys, nothing is left to rank: a clear error."""
    cut, day_after = epoch_day("19971231"), epoch_day("19980101")
    repeat = {c for c, h in cdnow.items() if len({d for d, _ in h if d <= cut}) > 1}
    back = {c: [*h, (day_after, 1.0)] if c in repeat else h for c, h in cdnow.items()}
    ev = evaluate(back, cut, horizon_days=1)
    assert set(ev.scores) == {"all"}
    assert 0 < ev.scores["all"]["model"].positives < ev.scores["all"]["model"].customers
    everyone_back = {c: [*h, (day_after, 1.0)] for c, h in cdnow.items()}
    with pytest.raises(ValueModelError, match="nothing to rank"):
        evaluate(everyone_back, cut, horizon_days=1)
