"""The per-customer scalar path (scoring.valuemodel.scalar) agrees with the vectorised functions.

The stream scores one customer at a time with plain floats; the fit, the
evaluation and `tierstream replay` use the numpy functions. Both must give the
same figures, for every feature set a model file can carry.
"""

from __future__ import annotations

import itertools
import json
import math
from collections import defaultdict
from datetime import date
from pathlib import Path

import numpy as np
import pytest

from scoring.valuemodel import (
    FEATURE_NAMES,
    FEATURE_NAMES_V1,
    FEATURE_NAMES_V2,
    ValueModel,
    clv,
    expected_purchases,
    fit_value_model,
    p_alive,
    scalar,
)
from scoring.valuemodel.scalar import at_risk_1, customer_value, p_alive_1
from tests.scoring.test_valuemodel import MODEL_V1, MODEL_V2
from tests.scoring.test_valuemodel_heldout import SIM_START, simulate

CDNOW = Path(__file__).resolve().parents[1] / "fixtures" / "cdnow" / "CDNOW_sample.txt"
REL = 1e-9


def epoch_day(yyyymmdd: str) -> int:
    return (date(int(yyyymmdd[:4]), int(yyyymmdd[4:6]), int(yyyymmdd[6:8])) - date(1970, 1, 1)).days


@pytest.fixture(scope="module")
def cdnow_model() -> ValueModel:
    histories: dict[str, list[tuple[int, float]]] = defaultdict(list)
    for line in CDNOW.read_text().splitlines():
        customer, _, day, _, amount = line.split()
        histories[customer].append((epoch_day(day), float(amount)))
    return fit_value_model(histories, epoch_day("19980630"), horizon_days=90, version="scalar-test")


def random_customers(n: int, seed: int) -> tuple[np.ndarray, ...]:
    """Summaries over a wide range: one-time buyers, heavy buyers, long silences, zero and large spend."""
    rng = np.random.default_rng(seed)
    x = np.where(rng.random(n) < 0.3, 0, rng.integers(1, 200, n)).astype(float)
    T = rng.integers(0, 2500, n).astype(float)
    t_x = np.where(x > 0, np.floor(rng.random(n) * (T + 1)), 0.0)
    t_x = np.minimum(t_x, T)
    mean_value = np.where(x > 0, rng.lognormal(3.0, 1.5, n), 0.0)
    mean_value[rng.random(n) < 0.02] = 0.0  # repeat days that cost nothing happen (returns netted out)
    return x, t_x, T, mean_value


def assert_close(got: float, want: float, what: str, row: tuple[float, ...]) -> None:
    assert math.isclose(got, want, rel_tol=REL, abs_tol=1e-300), (what, row, got, want)


OLD_FORMATS = {"format-1": (MODEL_V1, FEATURE_NAMES_V1), "format-2": (MODEL_V2, FEATURE_NAMES_V2)}


@pytest.mark.parametrize("which", ["cdnow", "format-1", "format-2"])
def test_customer_value_equals_the_vectorised_functions(cdnow_model: ValueModel, which: str) -> None:
    if which == "cdnow":
        model, names = cdnow_model, FEATURE_NAMES
    else:
        model, names = ValueModel.from_dict(json.loads(json.dumps(OLD_FORMATS[which][0]))), OLD_FORMATS[which][1]
    assert model.at_risk.feature_names == names
    x, t_x, T, m = random_customers(1500, seed=3)
    want_alive = p_alive(model.bg, x, t_x, T)
    want_90 = expected_purchases(model.bg, 90, x, t_x, T)
    want_365 = expected_purchases(model.bg, 365, x, t_x, T)
    want_clv = clv(model.bg, model.gg, x, t_x, T, m, 12, 0.01)
    want_risk = model.risk(x, t_x, T, m)
    for i in range(x.size):
        row = (x[i], t_x[i], T[i], m[i])
        got = customer_value(model, int(x[i]), int(t_x[i]), int(T[i]), float(m[i]), 12, 0.01)
        assert_close(got.p_alive, want_alive[i], "p_alive", row)
        assert_close(got.expected_90, want_90[i], "expected_90", row)
        assert_close(got.expected_365, want_365[i], "expected_365", row)
        assert_close(got.clv, max(0.0, want_clv[i]), "clv", row)
        assert_close(got.at_risk_score, want_risk[i], "at_risk", row)
        alone = at_risk_1(model, x[i], t_x[i], T[i], m[i], p_alive_1(model.bg, x[i], t_x[i], T[i]))
        assert alone == got.at_risk_score  # with or without the shared expected-purchases value


def test_other_clv_horizons_and_at_risk_horizons_agree(cdnow_model: ValueModel) -> None:
    # A model of another shop, with an at-risk horizon (45 days) that is no whole CLV month.
    model = fit_value_model(simulate(n=1500, seed=21), SIM_START + 500, horizon_days=45)
    x, t_x, T, m = random_customers(300, seed=4)
    want_clv = clv(model.bg, model.gg, x, t_x, T, m, 5, 0.02)
    want_risk = model.risk(x, t_x, T, m)
    for i in range(x.size):
        got = customer_value(model, int(x[i]), int(t_x[i]), int(T[i]), float(m[i]), 5, 0.02)
        assert_close(got.clv, max(0.0, want_clv[i]), "clv", (x[i], t_x[i], T[i], m[i]))
        assert_close(got.at_risk_score, want_risk[i], "at_risk", (x[i], t_x[i], T[i], m[i]))


def test_customer_value_stays_cheap(cdnow_model: ValueModel, monkeypatch: pytest.MonkeyPatch) -> None:
    """The costly call is scipy's hyp2f1 (~4 us each): one per CLV month, plus 365 days, no more.

    (The at-risk horizon of 90 days and the 90-day figure reuse month 3.)
    Counting calls keeps the check deterministic; the timing is only printed.
    """
    calls = 0
    real = scalar.hyp2f1

    def counting(*args: float) -> float:
        nonlocal calls
        calls += 1
        return float(real(*args))

    monkeypatch.setattr(scalar, "hyp2f1", counting)
    customer_value(cdnow_model, 4, 200, 400, 30.0, 12, 0.01)
    assert calls == 12 + 1
    monkeypatch.setattr(scalar, "hyp2f1", real)
    import time

    started = time.perf_counter()
    for i in range(2000):
        customer_value(cdnow_model, i % 30, 100, 300 + i % 50, 25.0)
    print(f"customer_value: {(time.perf_counter() - started) / 2000 * 1e6:.1f} us per customer")


def test_model_risk_grows_with_time_since_the_last_purchase(cdnow_model: ValueModel) -> None:
    """scoring.lifecycle finds the day the at-risk flag trips by binary search, which needs this."""
    rng = np.random.default_rng(5)
    bg = cdnow_model.bg
    for _ in range(300):
        x = int(rng.integers(0, 40))
        t_x = int(rng.integers(0, 400)) if x else 0
        m = float(rng.uniform(1, 300)) if x else 0.0
        risks = [at_risk_1(cdnow_model, x, t_x, T, m, p_alive_1(bg, x, t_x, T)) for T in range(t_x, t_x + 1100, 7)]
        assert all(b >= a - 1e-12 for a, b in itertools.pairwise(risks)), (x, t_x, m)
