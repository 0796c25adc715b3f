import gymnasium as gym
import networkx as nx
import numpy as np
import pytest
from gymnasium.utils.env_checker import check_env

import icarena  # noqa: F401
from icarena.envs.planning import PathFindingEnv, random_dag
from icarena.errors import ConfigError


@pytest.mark.filterwarnings("ignore:.*alternative render modes")
def test_check_env_and_make():
    env = gym.make("icarena/PathFinding-v0", n_nodes=30, render_mode="ansi")
    check_env(env.unwrapped)
    obs, info = env.reset(seed=0)
    assert env.observation_space.contains(obs)
    assert gym.spaces.flatten_space(env.observation_space).shape == (30 * 30 + 30 + 30,)
    assert "path" in env.render()
    check_env(PathFindingEnv(n_nodes=12, p=0.3, max_nodes=16))


def test_dynamics_reward_and_penalty():
    g = nx.DiGraph([(0, 1), (1, 2), (0, 3)])
    env = PathFindingEnv(g, source=0, target=2, max_nodes=5, invalid_penalty=2.0)
    obs, info = env.reset(seed=0)
    adj = obs["adjacency"].reshape(5, 5)
    assert adj[0, 1] == 1 and adj[1, 2] == 1 and adj.sum() == 3
    assert obs["current"] == 0 and obs["target"] == 2 and info["can_reach"]
    obs, r, term, trunc, info = env.step(1)
    assert (r, term, trunc) == (0.0, False, False) and obs["current"] == 1
    obs, r, term, trunc, info = env.step(2)
    assert (r, term) == (1.0, True) and info["path"] == [0, 1, 2]
    env.reset()
    obs, r, term, trunc, info = env.step(3)  # an edge into a dead end
    assert r == 0.0 and not term and not info["can_reach"]
    obs, r, term, trunc, info = env.step(0)  # non-edge: penalty, episode ends
    assert (r, term) == (-2.0, True) and info["invalid"] and obs["current"] == 3
    env.reset()
    assert env.step(4)[1] == -2.0  # padded id: a non-edge


def test_truncation_on_cycles():
    g = nx.DiGraph([(0, 1), (1, 0), (1, 2)])
    env = PathFindingEnv(g, source=0, target=2, max_steps=3)
    env.reset(seed=0)
    env.step(1)
    env.step(0)
    *_, term, trunc, _ = env.step(1)
    assert trunc and not term


def test_random_pairs_are_reachable():
    env = PathFindingEnv(n_nodes=20, p=0.2, graph_seed=3)
    for seed in range(20):
        _, info = env.reset(seed=seed)
        assert env.R[info["source"], info["target"]]
    _, info = env.reset(options={"source": int(env.pairs[0][0]), "target": int(env.pairs[0][1])})
    assert (info["source"], info["target"]) == tuple(env.pairs[0])


def test_bad_input():
    g = random_dag(10, 0.3, seed=0)
    with pytest.raises(ConfigError, match="not a node"):
        PathFindingEnv(g, source=0, target=10)
    with pytest.raises(ConfigError, match="not reachable"):
        PathFindingEnv(g, source=9, target=0)
    with pytest.raises(ConfigError, match="0..n-1"):
        PathFindingEnv(nx.DiGraph([("a", "b")]))
    with pytest.raises(ConfigError, match="no reachable pair"):
        PathFindingEnv(random_dag(5, 0.0))
    with pytest.raises(ConfigError, match="max_nodes"):
        PathFindingEnv(g, max_nodes=5)
    env = PathFindingEnv(g)
    env.reset(seed=0)
    with pytest.raises(ConfigError, match="outside"):
        env.step(10)
    with pytest.raises(ConfigError, match="integer"):
        env.step(np.array([1.5]))
    with pytest.raises(ConfigError, match="reset options"):
        env.reset(options={"goal": 3})
