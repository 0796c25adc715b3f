"""Gymnasium, PettingZoo and vector envs of the games track."""

import functools

import gymnasium as gym
import numpy as np
import pettingzoo
import pytest
from gymnasium.utils.env_checker import check_env
from pettingzoo.test import api_test, parallel_api_test, parallel_seed_test
from pettingzoo.utils.conversions import parallel_to_aec

import icarena  # noqa: F401  (registers the ids)
from icarena.envs.games import GameBatch, TabularGame
from icarena.errors import ConfigError

GYM_IDS = ["icarena/MatrixGame-v0", "icarena/MarkovGame-v0"]
PZ_IDS = ["icarena/matrix_game-v0", "icarena/markov_game-v0"]


@pytest.mark.parametrize("env_id", GYM_IDS)
@pytest.mark.parametrize("player", ["max", "min"])
def test_gym_check_env(env_id, player):
    env = gym.make(env_id, episodes=4, player=player)
    check_env(env.unwrapped)
    obs, info = env.reset(seed=0)
    assert env.observation_space.contains(obs)
    steps, done = 0, False
    while not done:
        obs, r, done, trunc, info = env.step(env.action_space.sample())
        assert 0 <= r <= 1
        steps += 1
    H = env.unwrapped.game.H
    assert steps == 4 * H
    with pytest.raises(ConfigError, match="finished"):
        env.unwrapped.step(0)


def test_gym_fixed_game_opponent_and_errors():
    R = np.array([[1.0, 0.0], [0.0, 1.0]])
    env = gym.make("icarena/MatrixGame-v0", R=R, episodes=50, opponent=[1.0, 0.0])
    env.reset(seed=1)
    total = sum(env.step(0)[1] for _ in range(50))
    assert total == 50.0  # the opponent always plays column 0
    env.reset(seed=2)
    with pytest.raises(ConfigError, match="action of player max"):
        env.unwrapped.step(7)
    with pytest.raises(ConfigError, match="unknown game env argument"):
        gym.make("icarena/MatrixGame-v0", colour="red")
    with pytest.raises(ConfigError, match="opponent must have shape"):
        gym.make("icarena/MarkovGame-v0", opponent=np.ones((2, 4, 3)) / 3)


def test_observation_contents():
    env = gym.make("icarena/MarkovGame-v0", episodes=2, observation_mode="centralized")
    obs, info = env.reset(seed=0)
    H, S, A, B = 2, 4, 5, 5
    assert obs.shape == (H + S + A + B + 4,)
    assert obs[0] == 1 and obs[H + info["s"]] == 1 and obs[H + S + A] == 1  # "none" yet
    obs, r, *_ = env.step(3)
    assert obs[1] == 1 and obs[H + S + 3] == 1
    assert obs[-2] == pytest.approx(r) and obs[-1] == pytest.approx(1 - r)


def test_make_vec_batched_stepper():
    venv = gym.make_vec("icarena/MarkovGame-v0", num_envs=6, episodes=3)
    assert type(venv).__name__ == "GameVectorEnv"
    obs, _ = venv.reset(seed=2)
    assert obs.shape == (6, 13)
    for t in range(6):
        obs, r, term, trunc, _ = venv.step(venv.action_space.sample())
        assert r.shape == (6,) and term.all() == (t == 5)
    obs, r, term, _, _ = venv.step(venv.action_space.sample())  # NEXT_STEP autoreset
    assert np.all(r == 0) and not term.any()
    a, _ = venv.reset(seed=5)
    b, _ = gym.make_vec("icarena/MarkovGame-v0", num_envs=6, episodes=3).reset(seed=5)
    np.testing.assert_array_equal(a, b)


def test_game_batch_rewards_and_errors():
    g = TabularGame.random(2, 3, 2, 2, seed=0, n_games=4)
    batch = GameBatch(g, episodes=2)
    rng = np.random.default_rng(0)
    with pytest.raises(ConfigError, match="reset"):
        batch.step(np.zeros(4, int), np.zeros(4, int), rng)
    batch.reset(rng)
    s = batch.s.copy()
    r = batch.step(np.ones(4, int), np.zeros(4, int), rng)
    np.testing.assert_array_equal(r, g.rewards[np.arange(4), 0, s, 1, 0])
    with pytest.raises(ConfigError, match="player min"):
        batch.step(np.zeros(4, int), np.full(4, 2), rng)


@pytest.mark.parametrize("env_id", PZ_IDS)
@pytest.mark.parametrize("mode", ["decentralized", "centralized"])
def test_pettingzoo_api_and_seed(env_id, mode):
    make = functools.partial(pettingzoo.make, "parallel", env_id, episodes=5,
                             observation_mode=mode)
    parallel_api_test(make(), num_cycles=50)
    parallel_seed_test(make, num_cycles=50)
    api_test(parallel_to_aec(make()), num_cycles=50)


def test_pettingzoo_errors_and_rewards():
    env = pettingzoo.make("parallel", "icarena/matrix_game-v0", episodes=2,
                          R=np.array([[0.25, 1.0], [0.0, 0.5]]))
    obs, infos = env.reset(seed=0)
    assert set(obs) == {"max", "min"} and obs["max"].dtype == np.float32
    with pytest.raises(ConfigError, match="unknown agent"):
        env.step({"max": 0, "mn": 0})
    with pytest.raises(ConfigError, match="missing action"):
        env.step({"max": 0})
    with pytest.raises(ConfigError, match="action of player min"):
        env.step({"max": 0, "min": 5})
    _, rew, term, _, _ = env.step({"max": 0, "min": 0})
    assert rew == {"max": 0.25, "min": 0.75} and not any(term.values())
    _, _, term, _, _ = env.step({"max": 1, "min": 1})
    assert all(term.values()) and env.agents == []
    with pytest.raises(ConfigError, match="finished"):
        env.step({"max": 0, "min": 0})
    with pytest.raises(ConfigError, match="unknown agent"):
        env.action_space("player_0")
    with pytest.raises(ConfigError, match="observation_mode"):
        pettingzoo.make("parallel", "icarena/markov_game-v0", observation_mode="both")
