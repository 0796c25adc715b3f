import gymnasium as gym
import numpy as np
import pytest
from gymnasium.utils.env_checker import check_env

import icarena  # noqa: F401  (registers the env ids)
from icarena.envs.regression.env import RegressionEnv
from icarena.errors import ConfigError


@pytest.mark.parametrize("family", ["linear", "decision_tree", "holder", "manifold"])
def test_check_env_passes(family):
    kwargs = {"intrinsic_dim": 1} if family == "manifold" else {}
    env = gym.make("icarena/Regression-v0", family=family, d=3, k=6, family_kwargs=kwargs)
    check_env(env.unwrapped, skip_render_check=True)


def test_episode_reveals_labels_and_rewards_minus_squared_error():
    env = RegressionEnv("linear", d=4, k=5)
    obs, info = env.reset(seed=11)
    w = env.params["w"]
    assert info["t"] == 0 and obs["prev_y"][0] == 0.0
    total, ys = 0.0, []
    for t in range(5):
        x = obs["x"].astype(np.float64)
        pred = 0.3 * t
        obs, r, term, trunc, info = env.step(np.array([pred], dtype=np.float32))
        np.testing.assert_allclose(info["y"], x @ w, rtol=1e-5, atol=1e-5)  # noiseless
        assert r == pytest.approx(-((np.float32(pred) - info["y"]) ** 2))
        assert info["squared_error"] == pytest.approx(-r)
        assert obs["prev_y"][0] == pytest.approx(info["y"], rel=1e-6)
        assert term == (t == 4) and not trunc
        total += r
        ys.append(info["y"])
    with pytest.raises(ConfigError, match="terminated"):
        env.step(np.array([0.0], dtype=np.float32))
    # same seed, same episode
    env2 = RegressionEnv("linear", d=4, k=5)
    env2.reset(seed=11)
    ys2 = [env2.step(np.zeros(1, np.float32))[4]["y"] for _ in range(5)]
    assert ys == ys2


def test_bad_actions_and_kwargs():
    env = RegressionEnv("linear", d=2, k=3)
    with pytest.raises(ConfigError, match="reset"):
        env.step(np.zeros(1))
    env.reset(seed=0)
    with pytest.raises(ConfigError, match="finite"):
        env.step(np.array([np.nan]))
    with pytest.raises(ConfigError, match="one finite prediction"):
        env.step(np.zeros(2))
    with pytest.raises(ConfigError, match="unknown function family"):
        RegressionEnv("spline", d=2)
    with pytest.raises(ConfigError, match="k must be"):
        RegressionEnv("linear", d=2, k=0)
    with pytest.raises(ConfigError, match="d must be"):
        RegressionEnv("linear", d=0)


def test_ansi_render():
    env = RegressionEnv("linear", d=2, k=3, render_mode="ansi")
    env.reset(seed=0)
    env.step(np.array([1.0]))
    assert "prediction=1" in env.render()
