"""BatchedGameParallelEnv equals N single PettingZoo game envs seeded seed + i."""

import numpy as np
import pettingzoo
import pytest
from gymnasium import spaces
from gymnasium.vector.utils import batch_space

import icarena  # noqa: F401  (registers the ids)
from icarena.envs.games import BatchedGameParallelEnv
from icarena.errors import ConfigError

CASES = [
    ("icarena/matrix_game-v0", {"episodes": 3}),
    ("icarena/markov_game-v0", {"episodes": 3}),
    ("icarena/markov_game-v0", {"episodes": 4, "observation_mode": "centralized",
                                "initial": "uniform", "max_cycles": 5}),
    ("icarena/matrix_game-v0", {"episodes": 3, "R": [[0.0, 1.0], [0.5, 0.25]]}),
]


def _singles(pz_id, kwargs, n):
    return [pettingzoo.make("parallel", pz_id, **kwargs) for _ in range(n)]


@pytest.mark.parametrize(("pz_id", "kwargs"), CASES)
def test_batched_equals_single_parallel_envs(pz_id, kwargs):
    n = 4
    batch_id = pz_id.replace("_game-", "_game_batch-")
    batched = pettingzoo.make("parallel", batch_id, num_games=n, **kwargs)
    assert isinstance(batched, BatchedGameParallelEnv)
    singles = _singles(pz_id, kwargs, n)
    for ag in batched.possible_agents:
        assert batched.observation_space(ag) == batch_space(singles[0].observation_space(ag), n)
        assert batched.action_space(ag) == batch_space(singles[0].action_space(ag), n)
        assert isinstance(batched.action_space(ag), spaces.MultiDiscrete)
    rng = np.random.default_rng(0)
    for episode, seed in enumerate((3, None, 8)):
        obs, infos = batched.reset(seed=seed)
        outs = [env.reset(seed=None if seed is None else seed + i)
                for i, env in enumerate(singles)]
        for ag in batched.possible_agents:
            np.testing.assert_array_equal(obs[ag], np.stack([o[ag] for o, _ in outs]))
            assert infos[ag]["s"].tolist() == [inf[ag]["s"] for _, inf in outs]
        while batched.agents:
            assert batched.agents == singles[0].agents
            acts = {ag: batched.action_space(ag).sample() for ag in batched.agents}
            acts["max"] = rng.integers(0, singles[0].action_space("max").n, size=n)
            obs, rew, term, trunc, infos = batched.step(acts)
            outs = [env.step({ag: acts[ag][i] for ag in acts}) for i, env in enumerate(singles)]
            for ag in batched.possible_agents:
                np.testing.assert_array_equal(obs[ag], np.stack([o[0][ag] for o in outs]))
                np.testing.assert_array_equal(rew[ag], [o[1][ag] for o in outs])
                np.testing.assert_array_equal(term[ag], [o[2][ag] for o in outs])
                np.testing.assert_array_equal(trunc[ag], [o[3][ag] for o in outs])
                assert infos[ag]["t"] == outs[0][4][ag]["t"]
        assert all(not env.agents for env in singles), f"episode {episode} ended early"


def test_batched_errors():
    env = BatchedGameParallelEnv(num_games=2, H=1, S=1, A=2, B=2, episodes=1)
    with pytest.raises(ConfigError, match="reset"):
        env.step({"max": np.zeros(2, int), "min": np.zeros(2, int)})
    env.reset(seed=0)
    with pytest.raises(ConfigError, match="missing"):
        env.step({"max": np.zeros(2, int)})
    with pytest.raises(ConfigError, match="2 ints"):
        env.step({"max": np.zeros(3, int), "min": np.zeros(3, int)})
    with pytest.raises(ConfigError, match="player min"):
        env.step({"max": np.zeros(2, int), "min": np.full(2, 5)})
    env.step({"max": np.zeros(2, int), "min": np.zeros(2, int)})
    assert env.agents == []
    with pytest.raises(ConfigError, match="finished"):
        env.step({"max": np.zeros(2, int), "min": np.zeros(2, int)})
    with pytest.raises(ConfigError, match="num_games"):
        BatchedGameParallelEnv(num_games=0)
