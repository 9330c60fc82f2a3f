"""The value model computes without importing scipy.stats (~1 s of every `fit`, `evaluate` and model load), and
`scoring.valuemodel`'s modules load one by one: the negative binomial and the ranks it used from scipy.stats
are its own now, and must give scipy.stats' numbers."""

from __future__ import annotations

import subprocess
import sys

import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st
from scipy.stats import nbinom, rankdata

from scoring.valuemodel.bgnbd import nbinom_logpmf, nbinom_logsf
from scoring.valuemodel.metrics import average_ranks


def _draws(seed: int, size: int = 20_000) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    k = rng.integers(-1, 120, size).astype(float)
    n = np.concatenate([rng.gamma(1.0, 5.0, size - 20) + 1e-4, [1e-6, 1e-3, 0.5, 1.0, 1e3] * 4])
    p = np.concatenate([rng.uniform(0.0, 1.0, size - 10), [1.0, 1e-12, 0.5, 1 - 1e-12, 0.999] * 2])
    return k, n, p


def test_the_negative_binomial_is_scipy_stats_own() -> None:
    for seed in range(3):
        k, n, p = _draws(seed)
        # the same formula and incomplete beta (to ~1e-14 here)
        ours, theirs = nbinom_logsf(k, n, p), nbinom.logsf(k, n, p)
        normal = theirs > np.log(np.finfo(float).tiny)  # below, scipy.stats rounds to 0 what we keep subnormal
        assert normal.mean() > 0.95 and np.all(ours[~normal] < -700)
        np.testing.assert_allclose(ours[normal], theirs[normal], rtol=1e-12, atol=1e-13)  # sf ~ 1: an ulp
        counts = np.maximum(k, 0.0)
        np.testing.assert_allclose(nbinom_logpmf(counts, n, p), nbinom.logpmf(counts, n, p), rtol=1e-12, atol=0)
    assert nbinom_logsf(-1.0, 2.0, 0.3) == 0.0 and nbinom_logpmf(-1.0, 2.0, 0.3) == -np.inf  # outside the support
    assert nbinom_logsf(4.0, 2.0, 1.0) == -np.inf == nbinom.logsf(4.0, 2.0, 1.0)  # p = 1: never a failure


@settings(max_examples=200, deadline=None)
@given(st.lists(st.one_of(st.integers(-5, 5).map(float), st.floats(-1e6, 1e6)), min_size=1, max_size=60))
def test_average_ranks_are_rankdata(values: list[float]) -> None:
    array = np.asarray(values, dtype=np.float64)
    assert np.array_equal(average_ranks(array), rankdata(array))


def test_the_model_loads_without_scipy_stats_and_the_summaries_without_scipy() -> None:
    code = (
        "import sys, scoring.valuemodel.summary\n"
        "assert 'scipy' not in sys.modules, 'the summaries import SciPy'\n"
        "from scoring.valuemodel import fit_value_model, ValueModel, evaluate, roc_auc\n"
        "import streams.modelfile\n"
        "assert not [m for m in sys.modules if m.startswith('scipy.stats')], 'scipy.stats imported'\n"
    )
    subprocess.run([sys.executable, "-c", code], check=True)


def test_names_shared_with_their_modules_are_the_functions_whatever_was_imported_first() -> None:
    code = (
        "import scoring.valuemodel.clv, scoring.valuemodel.evaluate, scoring.valuemodel.model\n"
        "from scoring.valuemodel import clv, evaluate, p_alive\n"
        "assert callable(clv) and callable(evaluate) and callable(p_alive), (clv, evaluate)\n"
        "import importlib, scoring.valuemodel as package\n"
        "assert sorted(package.__all__) == sorted(package._HOME), 'a name without its module, or not exported'\n"
        "for name, home in package._HOME.items():\n"
        "    assert getattr(package, name) is getattr(importlib.import_module(home), name), name\n"
    )
    subprocess.run([sys.executable, "-c", code], check=True)
