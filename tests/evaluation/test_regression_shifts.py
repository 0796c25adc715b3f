"""Garg et al. 2022 prompt shifts: least squares' error moves the way each shift must move it."""

from __future__ import annotations

import functools

import numpy as np
import pytest

from icarena.agents.regression import least_squares, ridge
from icarena.errors import ConfigError
from icarena.evaluation.regression_shifts import (
    SHIFTS,
    baseline_predictions,
    model_predictions,
    shift_errors,
    shifted_prompts,
)

D, K, P = 8, 20, 2000


def ls_curve(shift: str, seed: int, n: int = P, **kw) -> np.ndarray:
    p = shifted_prompts(shift, np.random.default_rng(seed), n, K, D, **kw)
    return shift_errors(p, baseline_predictions(p, least_squares), D).mean(0)


@functools.cache
def clean_curve(seed: int) -> np.ndarray:
    """The unshifted task (x ~ N(0, I), y = w^T x), drawn independently of the shift module."""
    rng = np.random.default_rng([seed, 99])
    w = rng.standard_normal((P, D))
    x = rng.standard_normal((P, K, D))
    y = np.einsum("pkd,pd->pk", x, w)
    pred = np.zeros_like(y)
    for i in range(1, K):  # minimum-norm solution from the normal equations of the smaller side
        X, Y = x[:, :i], y[:, :i]
        if i <= D:
            alpha = np.linalg.solve(X @ X.transpose(0, 2, 1), Y[..., None])[..., 0]
            sol = np.einsum("pid,pi->pd", X, alpha)
        else:
            xty = np.einsum("pid,pi->pd", X, Y)[..., None]
            sol = np.linalg.solve(X.transpose(0, 2, 1) @ X, xty)[..., 0]
        pred[:, i] = np.einsum("pd,pd->p", x[:, i], sol)
    return ((pred - y) ** 2 / D).mean(0)


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_noisy_labels_raise_least_squares_error_to_the_closed_form(seed):
    sigma = 1.0
    noisy, clean = ls_curve("noisy", seed, noise_std=sigma), clean_curve(seed)
    assert np.all(noisy[1:] > clean[1:])
    # OLS with noise sigma^2, k > d + 1: E(y_q - y_hat)^2 = sigma^2 (1 + d / (k - d - 1))
    ks = np.arange(D + 4, K)
    expected = sigma**2 * (1 + D / (ks - D - 1)) / D
    np.testing.assert_allclose(noisy[ks], expected, rtol=0.15)


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_orthogonal_queries_give_the_prior_error_for_k_below_d(seed):
    p = shifted_prompts("orthogonal_query", np.random.default_rng(seed), P, K, D)
    ls = baseline_predictions(p, least_squares)
    # least squares' estimate lies in the span of the context: the prediction is the prior mean 0
    np.testing.assert_allclose(ls[:, 1:D], 0.0, atol=1e-8)
    err = shift_errors(p, ls, D)
    prior = shift_errors(p, np.zeros_like(ls), D)
    np.testing.assert_allclose(err[:, :D], prior[:, :D], atol=1e-12)
    assert abs(err[:, :D].mean() - 1.0) < 0.05            # E (w^T q)^2 / d = E|q|^2 / d = 1
    q, x = p.x_query[:, 3], p.x_ctx[:, :3]
    np.testing.assert_allclose(np.einsum("pd,pid->pi", q, x), 0.0, atol=1e-9)
    assert err[:, D + 1:].mean() < 1e-12                    # span = R^d: exact again


@pytest.mark.parametrize("seed", [0, 1, 2])
@pytest.mark.parametrize("shift", ["scale_x", "scale_y"])
def test_scaling_multiplies_the_error_by_scale_squared(shift, seed):
    base = ls_curve(shift, seed, n=200, scale=1.0)
    for c in (0.5, 3.0):
        np.testing.assert_allclose(ls_curve(shift, seed, n=200, scale=c)[:D], c**2 * base[:D],
                                   rtol=1e-6)


@pytest.mark.parametrize("seed", [0, 1, 2])
@pytest.mark.parametrize("shift", ["skewed", "half_subspace"])
def test_skewed_covariance_lowers_the_error_below_isotropic(shift, seed):
    curve, clean = ls_curve(shift, seed), clean_curve(seed)
    assert abs(curve[0] - 1.0) < 0.1                        # tr Sigma = d: the prior error is 1
    assert np.all(curve[2:D] < clean[2:D] - 0.02)
    if shift == "half_subspace":                            # rank d/2: exact from i = d/2
        assert curve[D // 2:].max() < 1e-12


@pytest.mark.parametrize("seed", [0, 1, 2])
@pytest.mark.parametrize("shift", ["half_space", "random_quadrants"])
def test_context_in_one_half_space_leaves_least_squares_unchanged(shift, seed):
    p = shifted_prompts(shift, np.random.default_rng(seed), P, K, D)
    assert p.split
    if shift == "random_quadrants":
        assert np.all(np.abs(np.sign(p.x_ctx).sum(1)) == K)   # one orthant per prompt
    err = shift_errors(p, baseline_predictions(p, least_squares), D)
    curve, se = err.mean(0), err.std(0) / np.sqrt(P)
    # E (w^T P_perp q)^2 = tr P_perp = d - i for any context, since q and w are independent of it
    assert np.all(np.abs(curve[:D] - (D - np.arange(D)) / D) < 4 * se[:D])
    assert curve[D:].max() < 1e-12


def test_ridge_and_a_causal_model_see_the_same_shifted_prompts():
    rng = np.random.default_rng(0)
    p = shifted_prompts("half_space", rng, 50, 6, 3)
    r = baseline_predictions(p, ridge, lam=0.1)
    # a "model" that is ridge on its own prefix must equal the baseline under the shift
    def predict(x, y):
        out = np.zeros(y.shape)
        for i in range(1, x.shape[1]):
            out[:, i] = ridge(x[:, :i], y[:, :i], x[:, i:i + 1], lam=0.1)[:, 0]
        return out
    np.testing.assert_allclose(model_predictions(p, predict), r, atol=1e-12)


def test_same_seed_same_bytes_and_bad_names():
    for s in SHIFTS:
        a = shifted_prompts(s, np.random.default_rng(5), 4, 5, 3)
        b = shifted_prompts(s, np.random.default_rng(5), 4, 5, 3)
        assert a.x_query.tobytes() == b.x_query.tobytes() and a.y_ctx.tobytes() == b.y_ctx.tobytes()
    with pytest.raises(ConfigError, match="unknown shift"):
        shifted_prompts("tilted", np.random.default_rng(0), 2, 2, 2)
    with pytest.raises(ConfigError, match="scale"):
        shifted_prompts("scale_x", np.random.default_rng(0), 2, 2, 2, scale=0.0)
