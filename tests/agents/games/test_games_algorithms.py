"""Batched context algorithms: equal to per-game loops, records, certified policy, play()."""

import numpy as np
import pytest

from icarena.agents.games import (
    EXP3Config,
    VIULCBConfig,
    VLearningConfig,
    alpha_weights,
    episode_policies,
    play,
    run_exp3,
    run_viulcb,
    run_vlearning,
)
from icarena.agents.games.reference import exp3_loop, viulcb_loop, vlearning_loop
from icarena.envs.games import TabularGame
from icarena.errors import ConfigError
from icarena.evaluation.nash import gap_curve, record_gap_curves, uniform_gap


def _same(rec, ref):
    a, b, px, py = ref
    np.testing.assert_array_equal(rec["act/max"], a)
    np.testing.assert_array_equal(rec["act/min"], b)
    np.testing.assert_allclose(rec["pi/max"], px, atol=1e-12)
    np.testing.assert_allclose(rec["pi/min"], py, atol=1e-12)


@pytest.mark.parametrize("gamma", [0.0, 0.03])
def test_exp3_equals_loop(gamma):
    g = TabularGame.random(1, 1, 4, 3, seed=1, n_games=3)
    rec = run_exp3(g, 150, cfg=EXP3Config(gamma=gamma), seed=5, dtype=np.float64)
    _same(rec, exp3_loop(g, 150, gamma=gamma, seed=5))


@pytest.mark.parametrize("schedule", ["jin2021", "bai2020"])
def test_vlearning_equals_loop(schedule):
    g = TabularGame.random(3, 2, 3, 4, seed=2, n_games=3)
    rec = run_vlearning(g, 60, cfg=VLearningConfig(schedule=schedule, c=0.3), seed=4,
                        dtype=np.float64)
    _same(rec, vlearning_loop(g, 60, schedule=schedule, c=0.3, seed=4))


def test_viulcb_equals_loop():
    g = TabularGame.random(2, 2, 3, 2, seed=3, n_games=2)
    rec = run_viulcb(g, 12, cfg=VIULCBConfig(c=0.05, mwu_iters=20), seed=6, dtype=np.float64)
    _same(rec, viulcb_loop(g, 12, c=0.05, mwu_iters=20, seed=6))
    joint = rec["pi/joint"].reshape(*rec["pi/joint"].shape[:-1], 3, 2)
    np.testing.assert_allclose(joint.sum(-1), rec["pi/max"], atol=1e-12)


def test_record_shapes_and_determinism():
    g = TabularGame.random(2, 3, 4, 5, seed=0, n_games=4)
    rec = run_vlearning(g, 10, seed=1)
    assert rec["pi/max"].shape == (4, 20, 2, 3, 4) and rec["pi/min"].shape == (4, 20, 2, 3, 5)
    assert rec["cert/max"].shape == (4, 10, 2, 3, 4)
    np.testing.assert_array_equal(rec["traj/h"][0], np.tile([0, 1], 10))
    np.testing.assert_array_equal(rec["traj/s"][:, ::2], 0)  # fixed s1 = 0
    np.testing.assert_allclose(rec["pi/max"].sum(-1), 1.0, atol=1e-5)
    np.testing.assert_array_equal(rec["traj/s"][:, 1::2], rec["traj/s_next"][:, ::2])
    r = g.rewards[np.arange(4)[:, None], rec["traj/h"], rec["traj/s"], rec["act/max"],
                  rec["act/min"]]
    np.testing.assert_allclose(rec["rew/max"], r)
    rec2 = run_vlearning(g, 10, seed=1)
    for k in rec:
        np.testing.assert_array_equal(rec[k], rec2[k])
    with pytest.raises(ConfigError, match="matrix games"):
        run_exp3(g, 10)
    with pytest.raises(ConfigError, match="schedule"):
        run_vlearning(g, 10, cfg=VLearningConfig(schedule="nope"))
    with pytest.raises(ConfigError, match="batch shape"):
        run_viulcb(g[0], 3)


def test_certified_policy_is_the_alpha_mixture_for_h1():
    g = TabularGame.random(1, 1, 3, 3, seed=5, n_games=2)
    K = 40
    rec = run_vlearning(g, K, seed=2, dtype=np.float64)
    mu = rec["pi/max"][:, :, 0, 0]  # (G, K, A): iterate used in episode k
    # explicit certified output: k ~ Unif[K]; t = k - 1 earlier visits; l ~ alpha_t; play mu^l
    expect = np.full((2, 3), 1 / 3) / K
    for k in range(2, K + 1):
        t = k - 1
        expect = expect + np.einsum("i,gia->ga", alpha_weights(t, 1), mu[:, :t]) / K
    np.testing.assert_allclose(rec["cert/max"][:, -1, 0, 0], expect, atol=1e-12)


def test_play_replays_recorded_policies():
    g = TabularGame.random(2, 3, 3, 3, seed=8, n_games=3)
    rec = run_vlearning(g, 15, seed=9, dtype=np.float64)

    def replay(history):
        t = history["act/max"].shape[1]
        if t:  # the history hands back the policies proposed before step t, and no more
            assert history["pi/max"].shape[1] == history["pi/min"].shape[1] == t
            np.testing.assert_allclose(history["pi/max"], rec["pi/max"][:, :t], atol=1e-6)
        return rec["pi/max"][:, t], rec["pi/min"][:, t]

    out = play(g, replay, 15, seed=9)
    for k in ("act/max", "act/min", "traj/s", "rew/max"):
        np.testing.assert_array_equal(out[k], rec[k])
    vi = run_viulcb(g, 6, cfg=VIULCBConfig(mwu_iters=10), seed=3, dtype=np.float64)
    out = play(g, lambda h: vi["pi/joint"][:, h["act/max"].shape[1]], 6, seed=3)
    np.testing.assert_array_equal(out["act/min"], vi["act/min"])
    assert "pi/joint" in out
    with pytest.raises(ConfigError, match="policy_fn returned"):
        play(g, lambda h: (np.ones((3, 2, 3, 3)), np.ones((3, 2, 3, 2))), 2)


def test_uniform_play_curve_is_uniform_gap():
    g = TabularGame.random(2, 2, 3, 3, seed=1, n_games=2)
    u = (np.full((2, 2, 2, 3), 1 / 3), np.full((2, 2, 2, 3), 1 / 3))
    out = play(g, lambda h: u, 4, seed=0, query="episode")
    curves = record_gap_curves(g, out)
    np.testing.assert_allclose(curves["last"], np.repeat(uniform_gap(g)[:, None], 4, 1))
    mu, nu = episode_policies(out, 2)
    assert mu.shape == (2, 4, 2, 2, 3)


def test_averaged_gap_falls_below_uniform():
    g = TabularGame.random(1, 1, 5, 5, seed=42, n_games=6)
    K = 1500
    for rec in (run_exp3(g, K, seed=0), run_vlearning(g, K, seed=0)):
        avg = gap_curve(g, rec["pi/max"], rec["pi/min"], average=True).mean(0)
        assert avg[-1] < 0.8 * uniform_gap(g).mean()
        assert avg[-1] < avg[99]
    gm = TabularGame.random(2, 4, 5, 5, seed=1, n_games=4)
    vi = record_gap_curves(gm, run_viulcb(gm, 120, cfg=VIULCBConfig(mwu_iters=40), seed=0))
    assert vi["last"].mean(0)[-10:].mean() < 0.9 * uniform_gap(gm).mean()
