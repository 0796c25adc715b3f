"""LP Nash, exact CCE and MWU-CCE solvers."""

import numpy as np
import pytest

from icarena.agents.games import (
    alpha_weights,
    cce_lp,
    cce_violation,
    matrix_gap,
    mwu_cce,
    mwu_cce_bound,
    solve_zero_sum,
)
from icarena.errors import ConfigError


def test_solve_zero_sum_is_nash_and_batched():
    rng = np.random.default_rng(0)
    R = rng.random((6, 4, 5))
    x, y, v = solve_zero_sum(R)
    assert x.shape == (6, 4) and y.shape == (6, 5) and v.shape == (6,)
    assert np.all(matrix_gap(R, x, y) <= 1e-8)
    np.testing.assert_allclose((x[:, None, :] @ R)[:, 0].min(-1), v, atol=1e-8)
    np.testing.assert_allclose((R @ y[..., None])[..., 0].max(-1), v, atol=1e-8)
    x1, y1, v1 = solve_zero_sum(R[2])
    assert isinstance(v1, float) and v1 == pytest.approx(v[2])


def test_solve_zero_sum_matches_pure_saddle_point():
    R = np.array([[3.0, 1.0, 4.0], [2.0, 0.0, 1.0]])  # saddle at (0, 1): value 1
    x, y, v = solve_zero_sum(R)
    assert v == pytest.approx(1.0)
    np.testing.assert_allclose(x, [1, 0], atol=1e-9)
    np.testing.assert_allclose(y, [0, 1, 0], atol=1e-9)
    with pytest.raises(ConfigError):
        solve_zero_sum(np.array([1.0, 2.0]))


def test_cce_lp_is_exact_cce():
    rng = np.random.default_rng(1)
    up = rng.random((5, 4, 3)) + 0.5
    low = up - rng.random((5, 4, 3))
    pi = cce_lp(up, low)
    assert pi.shape == (5, 4, 3)
    np.testing.assert_allclose(pi.sum((-2, -1)), 1.0)
    assert np.all(cce_violation(pi, up, low) <= 1e-9)
    # a zero-sum pair: the CCE value equals the game value
    _, _, v = solve_zero_sum(up)
    pi0 = cce_lp(up, up)
    np.testing.assert_allclose((pi0 * up).sum((-2, -1)), v, atol=1e-8)


@pytest.mark.parametrize("iters", [10, 100, 400])
def test_mwu_cce_violation_within_bound(iters):
    rng = np.random.default_rng(iters)
    scale = 2.0
    up = scale * rng.random((50, 5, 5))
    low = np.clip(up - rng.random((50, 5, 5)), 0, None)
    pi = mwu_cce(up, low, iters=iters, scale=scale)
    np.testing.assert_allclose(pi.sum((-2, -1)), 1.0)
    viol = cce_violation(pi, up, low)
    assert np.all(viol <= mwu_cce_bound(5, 5, iters, scale) + 1e-12)
    # a far-from-equilibrium distribution violates much more
    bad = np.zeros((5, 5))
    bad[0, 0] = 1.0
    assert np.median(cce_violation(np.broadcast_to(bad, up.shape), up, low)) > viol.max()


def test_alpha_weights_sum_to_one():
    for H in (1, 2, 5):
        for t in (1, 2, 7, 100):
            w = alpha_weights(t, H)
            assert w.shape == (t,) and w.sum() == pytest.approx(1.0) and np.all(w >= 0)
    t = 9  # H = 1: linear weights 2i / (t (t + 1))
    np.testing.assert_allclose(alpha_weights(t, 1), 2 * np.arange(1, t + 1) / (t * (t + 1)))
