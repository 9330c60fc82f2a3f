"""The at-risk model against its two baselines on held-out data: CDNOW and a simulated shop.

Calibrate up to a cut, predict who makes no purchase day in the next horizon,
compare ROC AUC and precision in the top 20% with 1 - P(alive) and plain days
since the last purchase, for all repeat buyers and the top-value third of them.

CDNOW here is the full log the `lifetimes` package ships (23,570 customers,
`tests/fixtures/cdnow/CDNOW_master.txt.gz`). At the three cuts the README
reports (holdout to the end of the data) the model wins both metrics against
both baselines, for both segments; over recency the AUC gain is beyond the
noise (paired bootstrap over customers). The precision@20% gain over recency
there is small (0.001-0.019) and its bootstrap interval reaches below zero:
the top fifth by recency is already 74-94% lapsed. At 1997-09-30 the
calibration period (273 days) is too short for training windows of the full
273-day holdout, so the model trains on 136-day labels.

The 1/10 CDNOW sample is too small to tell the methods apart at the top (one
customer moves precision@20% by 0.005-0.015): there the model must win ROC
AUC against both baselines and precision@20% against 1 - P(alive) only.

The simulated shop is a second, independent dataset drawn from the BG/NBD
story with parameters chosen before looking at any result: purchase rates
Gamma(r=0.5, alpha=20 days), drop-out after each repeat purchase with
probability Beta(a=0.3, b=5), spend lognormal around a lognormal customer
mean, 3,000 customers acquired over the first 270 days of two years. There
1 - P(alive) is the generating model itself, so the at-risk model does not
always beat it: the claim is measured over generator seeds (0-9, three
cut/holdout cases each; see the test for the counts), not for one seed.
"""

from __future__ import annotations

import gzip
import math
from collections import defaultdict
from collections.abc import Mapping
from datetime import date
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from scoring.valuemodel import (
    BgNbdParams,
    Evaluation,
    ValueModelError,
    fit_at_risk,
    fit_bgnbd,
    p_alive,
    p_no_purchase,
    precision_at_top,
    purchase_log,
    roc_auc,
    summarise,
)
from scoring.valuemodel.evaluate import _segments, evaluate
from scoring.valuemodel.summary import bought_between

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures" / "cdnow"
CDNOW = FIXTURES / "CDNOW_sample.txt"
CDNOW_MASTER = FIXTURES / "CDNOW_master.txt.gz"
History = list[tuple[int, float]]
SEGMENTS = ("repeat", "repeat_top_value_third")
BASELINES = ("one_minus_p_alive", "recency_days")

SIM_START = (date(2022, 1, 1) - date(1970, 1, 1)).days
SIM_PARAMS = BgNbdParams(r=0.5, alpha=20.0, a=0.3, b=5.0)


def epoch_day(yyyymmdd: str) -> int:
    return (date(int(yyyymmdd[:4]), int(yyyymmdd[4:6]), int(yyyymmdd[6:8])) - date(1970, 1, 1)).days


def simulate(
    n: int = 3000, days: int = 730, seed: int = 7, params: BgNbdParams = SIM_PARAMS, acquire_days: int = 270
) -> dict[int, History]:
    """Customer -> sorted (epoch day, amount) purchases of a BG/NBD shop over `days` days from SIM_START.

    Each customer arrives uniformly in the first `acquire_days` days with a
    first purchase, buys at Poisson rate lambda ~ Gamma(r, rate alpha) and
    after each repeat purchase drops out with probability p ~ Beta(a, b).
    Amounts are lognormal(0, 0.5) times a customer mean ~ lognormal(3.5, 0.6).
    """
    rng = np.random.default_rng(seed)
    histories: dict[int, History] = {}
    for customer in range(n):
        rate = rng.gamma(params.r, 1.0 / params.alpha)
        drop = rng.beta(params.a, params.b)
        mean = rng.lognormal(3.5, 0.6)
        t = rng.uniform(0, acquire_days)
        purchases = [(SIM_START + int(t), round(float(mean * rng.lognormal(0.0, 0.5)), 2))]
        while True:
            t += rng.exponential(1.0 / rate)
            if t >= days:
                break
            purchases.append((SIM_START + int(t), round(float(mean * rng.lognormal(0.0, 0.5)), 2)))
            if rng.random() < drop:
                break
        histories[customer] = purchases
    return histories


@pytest.fixture(scope="module")
def cdnow_histories() -> dict[int, History]:
    histories: dict[int, History] = defaultdict(list)
    for line in CDNOW.read_text().splitlines():
        customer, _, day, _, amount = line.split()
        histories[int(customer)].append((epoch_day(day), float(amount)))
    return {c: sorted(h) for c, h in histories.items()}


@pytest.fixture(scope="module")
def cdnow_master() -> dict[str, History]:
    """The full CDNOW log: header `customer_id date number_of_cds dollar_value`, CRLF line ends."""
    histories: dict[str, History] = defaultdict(list)
    with gzip.open(CDNOW_MASTER, "rt") as rows:
        next(rows)
        for line in rows:
            customer, day, _, amount = line.split()
            histories[customer].append((epoch_day(day), float(amount)))
    return {c: sorted(h) for c, h in histories.items()}


@pytest.fixture(scope="module")
def shop() -> dict[int, History]:
    return simulate(seed=7)


def table(name: str, ev: Evaluation) -> str:
    lines = []
    for segment in SEGMENTS:
        for method, s in ev.scores[segment].items():
            lines.append(
                f"| {name} | {ev.horizon_days} | {segment} | {method} | {s.roc_auc:.3f} | {s.precision_at_20:.3f} "
                f"| {s.customers} | {s.positives} |"
            )
    return "\n".join(lines)


def customer_scores(histories: Mapping[Any, History], cal_end: int, horizon: int) -> tuple[dict[str, np.ndarray], ...]:
    """Per customer at the cut: the three methods' scores, the holdout label, and the segment masks."""
    log = purchase_log(list(histories.values()))
    s = summarise(log, cal_end)
    bg = fit_bgnbd(s.x, s.t_x, s.T)
    scores = {
        "model": fit_at_risk(log, cal_end, horizon).risk(bg, s.x, s.t_x, s.T, s.mean_repeat_value),
        "one_minus_p_alive": 1.0 - p_alive(bg, s.x, s.t_x, s.T),
        "recency_days": s.recency,
    }
    lapsed = ~bought_between(log, cal_end, cal_end + horizon)[s.customer]
    return scores, {"lapsed": lapsed}, _segments(s)


def paired_bootstrap(
    labels: np.ndarray, model: np.ndarray, baseline: np.ndarray, metric: str, rounds: int = 400
) -> tuple[float, float]:
    """95% interval of metric(model) - metric(baseline), resampling customers with replacement (seeded)."""
    measure = roc_auc if metric == "auc" else precision_at_top
    rng = np.random.default_rng(0)
    diffs = []
    for _ in range(rounds):
        i = rng.integers(0, labels.size, labels.size)
        diffs.append(measure(labels[i], model[i]) - measure(labels[i], baseline[i]))
    low, high = np.quantile(diffs, [0.025, 0.975])
    return float(low), float(high)


# --- CDNOW ---------------------------------------------------------------------------------------

MASTER_CUTS = [("19970930", 136), ("19971231", 181), ("19980331", 91)]  # holdout to the data end; label horizon


@pytest.fixture(scope="module")
def master_evaluations(cdnow_master: dict[str, History]) -> dict[str, Evaluation]:
    return {cut: evaluate(cdnow_master, epoch_day(cut)) for cut, _ in MASTER_CUTS}


@pytest.mark.parametrize(("cut", "label_horizon"), MASTER_CUTS, ids=[c for c, _ in MASTER_CUTS])
def test_cdnow_model_beats_both_baselines_on_both_metrics(
    cdnow_master: dict[str, History], master_evaluations: dict[str, Evaluation], cut: str, label_horizon: int
) -> None:
    ev = master_evaluations[cut]
    figures = table(f"CDNOW {cut}", ev)
    print("\n" + figures)
    assert ev.horizon_days == epoch_day("19980630") - epoch_day(cut) and ev.label_horizon_days == label_horizon
    assert ev.scores["repeat"]["model"].customers > 9000
    for segment in SEGMENTS:
        s = ev.scores[segment]
        for baseline in BASELINES:
            assert s["model"].roc_auc > s[baseline].roc_auc, (segment, baseline, figures)
            assert s["model"].precision_at_20 > s[baseline].precision_at_20, (segment, baseline, figures)


def test_cdnow_auc_gain_over_recency_is_beyond_the_noise(
    cdnow_master: dict[str, History], master_evaluations: dict[str, Evaluation]
) -> None:
    cut = "19971231"
    scores, labels, segments = customer_scores(cdnow_master, epoch_day(cut), master_evaluations[cut].horizon_days)
    for segment in SEGMENTS:
        mask = segments[segment]
        y = labels["lapsed"][mask]
        model_auc = roc_auc(y, scores["model"][mask])
        assert model_auc == pytest.approx(master_evaluations[cut].scores[segment]["model"].roc_auc, abs=1e-12)
        low, high = paired_bootstrap(y, scores["model"][mask], scores["recency_days"][mask], "auc", rounds=200)
        print(f"  {segment}: AUC model - recency: 95% interval [{low:+.3f}, {high:+.3f}]")
        assert low > 0, (segment, low, high)


SAMPLE_CUTS = [("19970930", 90), ("19971231", None), ("19980331", 90)]


@pytest.mark.parametrize(("cut", "horizon"), SAMPLE_CUTS, ids=[f"{c}-{h or 'end'}" for c, h in SAMPLE_CUTS])
def test_cdnow_sample_model_wins_auc_and_beats_p_alive_at_the_top(
    cdnow_histories: dict[int, History], cut: str, horizon: int | None
) -> None:
    ev = evaluate(cdnow_histories, epoch_day(cut), horizon)
    figures = table(f"CDNOW sample {cut}", ev)
    print("\n" + figures)
    for segment in SEGMENTS:
        s = ev.scores[segment]
        for baseline in BASELINES:
            assert s["model"].roc_auc > s[baseline].roc_auc, (segment, baseline, figures)
        assert s["model"].precision_at_20 > s["one_minus_p_alive"].precision_at_20, (segment, figures)


def test_short_calibration_trains_on_a_shorter_label_horizon(cdnow_histories: dict[int, History]) -> None:
    """273 days of history before 1997-09-30 and a 273-day holdout: windows of the full horizon would
    start before the first purchase; the model trains on 136-day labels (half the history) instead."""
    log = purchase_log(list(cdnow_histories.values()))
    model = fit_at_risk(log, epoch_day("19970930"), 273)
    assert (model.horizon_days, model.requested_horizon_days) == (136, 273)
    assert model.windows >= 1
    assert fit_at_risk(log, epoch_day("19970930"), 90).requested_horizon_days == 0  # not shortened
    with pytest.raises(ValueModelError):
        fit_at_risk(log, epoch_day("19970101"), 90)  # one day of history


# --- the simulated shop ------------------------------------------------------------------------

SIM_CUTS = [(450, 90), (540, 90), (540, None)]
SIM_SEEDS = range(10)


@pytest.fixture(scope="module")
def seed_cases() -> dict[tuple[int, int, int | None], Evaluation]:
    """Every (seed, cut day, holdout) case of the simulated shop over `SIM_SEEDS`: 30 evaluations."""
    cases = {}
    for seed in SIM_SEEDS:
        histories = simulate(seed=seed)
        for day, horizon in SIM_CUTS:
            cases[(seed, day, horizon)] = evaluate(histories, SIM_START + day, horizon)
    return cases


def _wins(ev: Evaluation, metric: str, baselines: tuple[str, ...] = BASELINES) -> bool:
    return all(
        getattr(ev.scores[seg]["model"], metric) > getattr(ev.scores[seg][b], metric)
        for seg in SEGMENTS
        for b in baselines
    )


def test_simulated_shop_claim_over_generator_seeds(seed_cases: dict[tuple[int, int, int | None], Evaluation]) -> None:
    """Measured here over seeds 0-9 x 3 cases (and over seeds 0-39, 120 cases, for the README):
    - ROC AUC against days since the last purchase: won in every case (30 of 30; 120 of 120);
    - ROC AUC against both baselines, both segments: 27 of 30 (115 of 120); the losses are
      against 1 - P(alive), the generating model, for the top-value third;
    - all eight comparisons (both metrics, both baselines, both segments): 21 of 30 (86 of 120);
      precision@20 % against 1 - P(alive) is what fails.
    The bounds are the measured counts less a margin of about one case in ten for the last two, so that
    a case sitting within rounding of a tie may flip on another platform's floating point without the
    test failing, while losing the edge broadly (for example #12's 20 of 30 for all eight) does."""
    print()
    for (seed, day, horizon), ev in seed_cases.items():
        print(seed, day, horizon, _wins(ev, "roc_auc"), _wins(ev, "roc_auc") and _wins(ev, "precision_at_20"))
    n = len(seed_cases)
    over_recency = sum(_wins(ev, "roc_auc", ("recency_days",)) for ev in seed_cases.values())
    auc = sum(_wins(ev, "roc_auc") for ev in seed_cases.values())
    everything = sum(_wins(ev, "roc_auc") and _wins(ev, "precision_at_20") for ev in seed_cases.values())
    print(f"AUC over recency {over_recency}/{n}; AUC over both {auc}/{n}; all eight {everything}/{n}")
    assert n == 30
    assert over_recency == 30
    assert auc >= 25
    assert everything >= 18


def test_simulated_shop_at_the_readme_seed_wins_everything(
    seed_cases: dict[tuple[int, int, int | None], Evaluation],
) -> None:
    """Seed 7, the one the README's detailed rows show: all eight comparisons won at each case."""
    for day, horizon in SIM_CUTS:
        ev = seed_cases[(7, day, horizon)]
        assert _wins(ev, "roc_auc") and _wins(ev, "precision_at_20"), table(f"simulated day {day}", ev)


def test_simulated_shop_is_what_it_claims(shop: dict[int, History]) -> None:
    """The simulator draws from the BG/NBD: fitting recovers its parameters roughly, and the
    BG/NBD's P(no purchase in 90 days) with the true parameters matches the holdout count."""
    log = purchase_log(list(shop.values()))
    cut = SIM_START + 540
    s = summarise(log, cut)
    assert s.x.size == 3000 and 0.6 < float(np.mean(s.x > 0)) < 0.95
    fitted = fit_bgnbd(s.x, s.t_x, s.T)
    assert fitted.r == pytest.approx(SIM_PARAMS.r, rel=0.25)
    assert fitted.alpha == pytest.approx(SIM_PARAMS.alpha, rel=0.35)
    assert fitted.a / (fitted.a + fitted.b) == pytest.approx(0.3 / 5.3, rel=0.35)  # mean drop-out probability
    none = p_no_purchase(SIM_PARAMS, 90, s.x, s.t_x, s.T)
    observed = int((~bought_between(log, cut, cut + 90)[s.customer]).sum())
    sd = math.sqrt(float(np.sum(none * (1.0 - none))))
    assert abs(observed - float(none.sum())) < 4 * sd, (observed, float(none.sum()), sd)
    dead = 1.0 - p_alive(SIM_PARAMS, s.x, s.t_x, s.T)
    assert float(dead.sum()) < float(none.sum())  # alive customers also skip a 90-day window
