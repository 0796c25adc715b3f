"""The Nash-gap kernel: numpy = torch (CPU) = a per-game scalar loop, and validation kept."""

import numpy as np
import pytest

from icarena.envs.games import TabularGame
from icarena.errors import ConfigError
from icarena.evaluation import best_response_values, nash_gap
from icarena.evaluation.nash import gap_curve

pytest.importorskip("torch")

SHAPES = [(1, 1, 5, 5), (1, 1, 3, 7), (1, 1, 9, 2), (2, 4, 5, 5), (3, 2, 4, 6), (2, 3, 8, 3)]


def _policy(rng, shape):
    x = rng.random(shape) ** 2
    return x / x.sum(-1, keepdims=True)


def _gap_loop(R, P, rho, mu, nu):
    """Duality gap of one game by backward induction with scalar loops (independent check)."""
    H, S, A, B = R.shape
    v_max, v_min = [0.0] * S, [0.0] * S
    for h in range(H - 1, -1, -1):
        nmax, nmin = [0.0] * S, [0.0] * S
        for s in range(S):
            def q(a, b, v, h=h, s=s):
                return R[h, s, a, b] + sum(P[h, s, a, b, t] * v[t] for t in range(S))
            nmax[s] = max(sum(nu[h, s, b] * q(a, b, v_max) for b in range(B)) for a in range(A))
            nmin[s] = min(sum(mu[h, s, a] * q(a, b, v_min) for a in range(A)) for b in range(B))
        v_max, v_min = nmax, nmin
    return sum(rho[s] * (v_max[s] - v_min[s]) for s in range(S))


@pytest.mark.parametrize("dims", SHAPES)
def test_numpy_equals_torch_equals_loop(dims):
    rng = np.random.default_rng(sum(dims))
    H, S, A, B = dims
    g = TabularGame.random(*dims, seed=1, n_games=6, initial="uniform")
    mu, nu = _policy(rng, (6, H, S, A)), _policy(rng, (6, H, S, B))
    ours = nash_gap(g, mu, nu)
    torch_cpu = nash_gap(g, mu, nu, device="cpu")
    loop = [_gap_loop(g.rewards[i], g.transitions[i], g.initial[i], mu[i], nu[i])
            for i in range(6)]
    assert ours.shape == torch_cpu.shape == (6,)
    np.testing.assert_allclose(ours, loop, atol=1e-9, rtol=0)
    np.testing.assert_allclose(torch_cpu, loop, atol=1e-9, rtol=0)
    assert np.all(ours >= -1e-12)


def test_matrix_games_from_matrix_and_broadcasting():
    rng = np.random.default_rng(0)
    R = rng.random((50, 4, 6))
    g = TabularGame.from_matrix(R)
    x, y = _policy(rng, (50, 4)), _policy(rng, (50, 6))
    expect = np.einsum("nab,nb->na", R, y).max(-1) - np.einsum("na,nab->nb", x, R).min(-1)
    for device in (None, "cpu"):
        got = nash_gap(g, x[:, None, None], y[:, None, None], device=device)
        np.testing.assert_allclose(got, expect, atol=1e-12)
    # one game, a batch of policy pairs; and per-episode curves (games (G,), policies (G, K))
    one = g[3]
    got = nash_gap(one, x[:, None, None], y[:, None, None])
    np.testing.assert_allclose(got[3], expect[3], atol=1e-12)
    assert nash_gap(one, x[3, None, None], y[3, None, None]).shape == ()


def test_markov_broadcast_and_best_responses_match_torch():
    rng = np.random.default_rng(1)
    g = TabularGame.random(2, 3, 4, 2, seed=3, n_games=4)
    mu, nu = _policy(rng, (4, 5, 2, 3, 4)), _policy(rng, (4, 5, 2, 3, 2))
    curve = gap_curve(g, mu, nu)
    assert curve.shape == (4, 5)
    loop = [[_gap_loop(g.rewards[i], g.transitions[i], g.initial[i], mu[i, k], nu[i, k])
             for k in range(5)] for i in range(4)]
    np.testing.assert_allclose(curve, loop, atol=1e-9)
    a = best_response_values(g, mu[:, 0], nu[:, 0])
    b = best_response_values(g, mu[:, 0], nu[:, 0], device="cpu")
    for x, y in zip(a, b, strict=True):
        assert x.shape == (4, 3, 3)
        np.testing.assert_allclose(x, y, atol=1e-12)
        np.testing.assert_array_equal(x[:, -1], 0.0)


@pytest.mark.parametrize("device", [None, "cpu"])
def test_invalid_policies_are_still_refused(device):
    g = TabularGame.random(2, 2, 3, 3, seed=0, n_games=2)
    ok = np.full((2, 2, 2, 3), 1 / 3)
    bad_nan = ok.copy()
    bad_nan[1, 0, 1, 2] = np.nan
    bad_sum = ok * 1.01
    bad_neg = ok.copy()
    bad_neg[0, 0, 0] = [-0.1, 0.6, 0.5]
    with pytest.raises(ConfigError, match="NaN"):
        nash_gap(g, bad_nan, ok, device=device)
    with pytest.raises(ConfigError, match="sum to 1"):
        nash_gap(g, ok, bad_sum, device=device)
    with pytest.raises(ConfigError, match="negative"):
        nash_gap(g, bad_neg, ok, device=device)
    with pytest.raises(ConfigError, match="shape"):
        nash_gap(g, ok[..., :2], ok, device=device)
    with pytest.raises(ConfigError, match="NaN"):  # 8+ actions: the non-unrolled reductions
        g8 = TabularGame.random(1, 1, 9, 2, seed=0)
        p = np.full((1, 1, 9), 1 / 9)
        p[0, 0, 4] = np.nan
        nash_gap(g8, p, np.full((1, 1, 2), 0.5), device=device)


def test_unknown_device_is_a_config_error():
    g = TabularGame.random(1, 1, 2, 2, seed=0)
    with pytest.raises(ConfigError, match="device"):
        nash_gap(g, np.full((1, 1, 2), 0.5), np.full((1, 1, 2), 0.5), device="nope")
