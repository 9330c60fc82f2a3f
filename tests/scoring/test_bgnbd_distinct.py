"""The BG/NBD objective evaluated on each column's distinct values (`bgnbd.Distinct`) gives the very floats
of the per-customer formula: the fits' optimiser takes the same path, so every fitted parameter is unchanged.

The reference below is the formula as it was written per customer (lifetimes' A1..A4 and their derivatives),
kept here verbatim; equality is exact (bit for bit), not approximate.
"""

from __future__ import annotations

import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st
from scipy.special import digamma, gammaln

from scoring.valuemodel.bgnbd import BgNbdData, BgNbdParams, Distinct, log_likelihood, negative_log_likelihood
from scoring.valuemodel.penalised import data_ridge_objective, ridge_objective


def _reference(log_params: np.ndarray, x: np.ndarray, t_x: np.ndarray, T: np.ndarray) -> tuple[float, np.ndarray]:
    p = np.exp(log_params)
    r, alpha, a, b = p
    repeat = x > 0
    a1 = gammaln(r + x) - gammaln(r) + r * np.log(alpha)
    a2 = gammaln(a + b) + gammaln(b + x) - gammaln(b) - gammaln(a + b + x)
    a3 = -(r + x) * np.log(alpha + T)
    a4 = np.log(a) - np.log(b + np.maximum(x, 1.0) - 1.0) - (r + x) * np.log(alpha + t_x)
    a4 = np.where(repeat, a4, -np.inf)
    tail = np.logaddexp(a3, a4)
    ll, w3, w4 = a1 + a2 + tail, np.exp(a3 - tail), np.exp(a4 - tail)
    d_r = digamma(r + x) - digamma(r) + np.log(alpha) - w3 * np.log(alpha + T) - w4 * np.log(alpha + t_x)
    d_alpha = r / alpha - (r + x) * (w3 / (alpha + T) + w4 / (alpha + t_x))
    d_a = digamma(a + b) - digamma(a + b + x) + w4 / a
    d_b = digamma(a + b) + digamma(b + x) - digamma(b) - digamma(a + b + x) - w4 / (b + np.maximum(x, 1.0) - 1.0)
    grad = np.array([d_r.sum(), d_alpha.sum(), d_a.sum(), d_b.sum()]) * p
    return float(-ll.mean()), -grad / x.size


def _summary(rng: np.random.Generator, n: int, days: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """A summary in whole days scaled by the longest T, as the fits condition it (many repeated values)."""
    T = rng.integers(0, days, n).astype(np.float64)
    t_x = np.floor(T * rng.random(n))
    x = np.where(t_x > 0, rng.integers(1, 40, n), 0).astype(np.float64)
    T[0] = days  # some T > 0
    scale = 1.0 / T.max()
    return x, t_x * scale, T * scale


@settings(max_examples=60, deadline=None)
@given(st.integers(0, 2**32 - 1), st.integers(1, 400), st.integers(1, 800),
       st.lists(st.floats(-6.0, 6.0), min_size=4, max_size=4))
def test_objective_on_distinct_values_is_the_per_customer_formula_bit_for_bit(
    seed: int, n: int, days: int, log_params: list[float],
) -> None:
    x, t_x, T = _summary(np.random.default_rng(seed), n, days)
    theta = np.array(log_params)
    value, grad = negative_log_likelihood(theta, x, t_x, T)
    ref_value, ref_grad = _reference(theta, x, t_x, T)
    assert value == ref_value or (np.isnan(value) and np.isnan(ref_value))
    np.testing.assert_array_equal(grad, ref_grad)
    ridge, ridge_grad = data_ridge_objective(theta, BgNbdData.of(x, t_x, T), 0.01)
    assert (ridge, list(ridge_grad)) == tuple_of(ridge_objective(theta, x, t_x, T, 0.01))
    params = BgNbdParams(*np.exp(theta))
    a1 = _reference_ll(params, x, t_x, T)
    np.testing.assert_array_equal(log_likelihood(params, x, t_x, T), a1)


def tuple_of(result: tuple[float, np.ndarray]) -> tuple[float, list[float]]:
    return result[0], list(result[1])


def _reference_ll(params: BgNbdParams, x: np.ndarray, t_x: np.ndarray, T: np.ndarray) -> np.ndarray:
    r, alpha, a, b = params.r, params.alpha, params.a, params.b
    a1 = gammaln(r + x) - gammaln(r) + r * np.log(alpha)
    a2 = gammaln(a + b) + gammaln(b + x) - gammaln(b) - gammaln(a + b + x)
    a3 = -(r + x) * np.log(alpha + T)
    a4 = np.log(a) - np.log(b + np.maximum(x, 1.0) - 1.0) - (r + x) * np.log(alpha + t_x)
    tail = np.logaddexp(a3, np.where(x > 0, a4, -np.inf))
    result: np.ndarray = a1 + a2 + tail
    return result


def test_distinct_gathers_back_the_array() -> None:
    values = np.array([3.0, 0.0, 3.0, 1.5, 0.0])
    d = Distinct.of(values)
    assert list(d.values) == [0.0, 1.5, 3.0]
    np.testing.assert_array_equal(d.values[d.index], values)
