"""nash_gap and friends against independent computations (brute force over pure policies)."""

import itertools

import numpy as np
import pytest

from icarena.agents.games import solve_zero_sum
from icarena.envs.games import TabularGame
from icarena.errors import ConfigError
from icarena.evaluation import best_response_values, nash_gap, nash_value
from icarena.evaluation.nash import (
    gap_curve,
    joint_marginals,
    nash_policies,
    policy_values,
    running_average,
    uniform_gap,
)


def _random_policy(rng, shape):
    x = rng.random(shape) ** 3
    return x / x.sum(-1, keepdims=True)


def _value_loops(game, mu, nu):
    """V^{mu,nu}(rho) by explicit recursion over (h, s, a, b, s')."""
    H, S, A, B = game.dims
    R, P = game.rewards, game.transitions

    def v(h, s):
        if h == H:
            return 0.0
        tot = 0.0
        for a in range(A):
            for b in range(B):
                w = mu[h, s, a] * nu[h, s, b]
                if w == 0:
                    continue
                cont = sum(P[h, s, a, b, s2] * v(h + 1, s2) for s2 in range(S))
                tot += w * (R[h, s, a, b] + cont)
        return tot

    return sum(game.initial[s] * v(0, s) for s in range(S))


def _brute_force_gap(game, mu, nu):
    """max over pure Markov max-policies minus min over pure Markov min-policies."""
    H, S, A, B = game.dims
    best_max = -np.inf
    for choice in itertools.product(range(A), repeat=H * S):
        pure = np.zeros((H, S, A))
        pure[np.repeat(np.arange(H), S), np.tile(np.arange(S), H), choice] = 1.0
        best_max = max(best_max, _value_loops(game, pure, nu))
    best_min = np.inf
    for choice in itertools.product(range(B), repeat=H * S):
        pure = np.zeros((H, S, B))
        pure[np.repeat(np.arange(H), S), np.tile(np.arange(S), H), choice] = 1.0
        best_min = min(best_min, _value_loops(game, mu, pure))
    return best_max - best_min


@pytest.mark.parametrize("dims,transition,initial", [
    ((2, 2, 2, 3), "dirichlet", "uniform"),
    ((3, 2, 2, 2), "deterministic", "fixed"),
    ((1, 1, 4, 3), "dirichlet", "fixed"),
])
def test_nash_gap_matches_brute_force(dims, transition, initial):
    rng = np.random.default_rng(0)
    for seed in range(3):
        game = TabularGame.random(*dims, seed=seed, transition=transition, initial=initial)
        H, S, A, B = dims
        mu, nu = _random_policy(rng, (H, S, A)), _random_policy(rng, (H, S, B))
        assert abs(float(nash_gap(game, mu, nu)) - _brute_force_gap(game, mu, nu)) < 1e-9
        v = policy_values(game, mu, nu)
        assert abs(float(game.initial @ v[0]) - _value_loops(game, mu, nu)) < 1e-9


def test_batched_gap_equals_per_game_and_broadcasts():
    rng = np.random.default_rng(1)
    games = TabularGame.random(2, 3, 3, 2, seed=4, n_games=5)
    mu, nu = _random_policy(rng, (4, 5, 2, 3, 3)), _random_policy(rng, (4, 5, 2, 3, 2))
    gaps = nash_gap(games, mu, nu)  # games (5,) broadcast against policies (4, 5)
    assert gaps.shape == (4, 5)
    for i in range(4):
        for g in range(5):
            assert gaps[i, g] == pytest.approx(float(nash_gap(games[g], mu[i, g], nu[i, g])),
                                               abs=1e-12)
    assert np.all(gaps >= 0)
    vmax, vmin = best_response_values(games, mu, nu)
    assert vmax.shape == (4, 5, 3, 3) and np.all(vmax[..., -1, :] == 0)


def test_matrix_formula_and_rps():
    rps = (np.array([[0, -1, 1], [1, 0, -1], [-1, 1, 0]]) + 1) / 2  # ±1 payoffs rescaled to [0,1]
    game = TabularGame.from_matrix(rps)
    u = np.full((1, 1, 3), 1 / 3)
    assert float(nash_gap(game, u, u)) == pytest.approx(0.0, abs=1e-12)
    half = np.array([0.5, 0.5, 0.0]).reshape(1, 1, 3)
    # OpenSpiel NashConv of (.5,.5,0) in ±1 RPS is 1.0; payoffs here are halved
    assert float(nash_gap(game, half, half)) * 2 == pytest.approx(1.0)
    x, y, value = solve_zero_sum(rps * 2 - 1)
    assert value == pytest.approx(0.0, abs=1e-9)
    np.testing.assert_allclose(x, 1 / 3, atol=1e-8)
    np.testing.assert_allclose(y, 1 / 3, atol=1e-8)
    rng = np.random.default_rng(2)
    R = rng.random((4, 6))
    x, y = _random_policy(rng, 4), _random_policy(rng, 6)
    expect = (R @ y).max() - (x @ R).min()
    got = nash_gap(TabularGame.from_matrix(R), x[None, None], y[None, None])
    assert float(got) == pytest.approx(expect, abs=1e-12)


def test_nash_pair_has_zero_gap_and_value_matches_lp():
    games = TabularGame.random(2, 3, 3, 4, seed=7, n_games=3)
    mu, nu, v = nash_policies(games)
    assert np.all(np.abs(nash_gap(games, mu, nu)) <= 1e-8)
    np.testing.assert_allclose(nash_value(games), np.einsum("gs,gs->g", games.initial, v[:, 0]))
    mg = TabularGame.random(1, 1, 5, 5, seed=3, n_games=4)
    _, _, val = solve_zero_sum(mg.rewards[:, 0, 0])
    np.testing.assert_allclose(nash_value(mg), val, atol=1e-9)
    # the min player's LP gives the same value
    _, _, val_min = solve_zero_sum(-np.swapaxes(mg.rewards[:, 0, 0], -1, -2))
    np.testing.assert_allclose(val, -val_min, atol=1e-9)
    # any other pair has a larger gap, and the value lies between the two best responses
    rng = np.random.default_rng(3)
    mu2 = _random_policy(rng, mu.shape)
    vmax, vmin = best_response_values(games, mu2, nu)
    assert np.all(nash_gap(games, mu2, nu) > 1e-6)
    assert np.all(vmin[:, 0] <= v[:, 0] + 1e-9) and np.all(v[:, 0] <= vmax[:, 0] + 1e-9)


def test_gap_curve_average_and_mixture_bound():
    rng = np.random.default_rng(4)
    games = TabularGame.random(1, 1, 4, 4, seed=1, n_games=3)
    mu, nu = _random_policy(rng, (3, 6, 1, 1, 4)), _random_policy(rng, (3, 6, 1, 1, 4))
    last, avg = gap_curve(games, mu, nu), gap_curve(games, mu, nu, average=True)
    assert last.shape == avg.shape == (3, 6)
    np.testing.assert_allclose(last[:, 0], avg[:, 0])
    for g in range(3):
        exact = float(nash_gap(games[g], mu[g].mean(0), nu[g].mean(0)))
        assert avg[g, -1] == pytest.approx(exact)
        assert last[g].mean() >= exact - 1e-12  # avg_k gap(mu_k, nu_k) upper-bounds the mixture
    np.testing.assert_allclose(running_average(np.arange(1.0, 5.0)[None], axis=1),
                               [[1.0, 1.5, 2.0, 2.5]])


def test_uniform_gap_and_marginals():
    games = TabularGame.random(1, 1, 5, 5, seed=11, n_games=400)
    assert 0.26 < float(uniform_gap(games).mean()) < 0.32  # about 0.29 on this prior
    joint = np.random.default_rng(0).random((2, 3, 4))
    joint /= joint.sum((-2, -1), keepdims=True)
    x, y = joint_marginals(joint.reshape(2, 12), 3, 4)
    np.testing.assert_allclose(x, joint.sum(-1))
    np.testing.assert_allclose(y, joint.sum(-2))


def test_bad_policies_raise():
    game = TabularGame.random(2, 2, 3, 3, seed=0)
    good = np.full((2, 2, 3), 1 / 3)
    with pytest.raises(ConfigError, match="max_policy must have shape"):
        nash_gap(game, np.full((2, 2, 4), 0.25), good)
    with pytest.raises(ConfigError, match="sum to 1"):
        nash_gap(game, good, np.full((2, 2, 3), 0.5))
