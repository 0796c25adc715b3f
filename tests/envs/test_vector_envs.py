"""Native vector envs of every id equal Gymnasium's SyncVectorEnv of the single envs."""

from __future__ import annotations

from typing import Any

import gymnasium as gym
import numpy as np
import pytest

import icarena  # noqa: F401  (registers the ids)
from icarena.errors import ConfigError

ALL_IDS = ["icarena/MatrixGame-v0", "icarena/MarkovGame-v0", "icarena/PathFinding-v0",
           "icarena/Blocksworld-v0", "icarena/Regression-v0"]

# (id, kwargs, num_envs, steps): small settings so that every sub-env autoresets >= 3 times
CASES: list[tuple[str, dict[str, Any], int, int]] = [
    ("icarena/MatrixGame-v0", {"episodes": 3}, 3, 20),
    ("icarena/MatrixGame-v0", {"episodes": 2, "player": "min", "R": [[0.0, 1.0], [0.5, 0.25]],
                               "opponent": [0.3, 0.7]}, 3, 12),
    ("icarena/MarkovGame-v0", {"episodes": 2}, 3, 20),
    ("icarena/MarkovGame-v0", {"episodes": 2, "player": "min", "observation_mode": "centralized",
                               "initial": "uniform", "transition": "deterministic"}, 4, 20),
    ("icarena/PathFinding-v0", {}, 4, 12),
    ("icarena/PathFinding-v0", {"n_nodes": 12, "p": 0.5, "max_steps": 3}, 4, 30),
    ("icarena/PathFinding-v0", {"n_nodes": 12, "p": 0.5, "source": 0, "target": 11,
                                "max_nodes": 15}, 3, 30),
    ("icarena/Blocksworld-v0", {"max_steps": 5}, 4, 30),
    ("icarena/Blocksworld-v0", {"n_blocks": 3, "ops": "4ops", "max_steps": 4}, 3, 30),
    ("icarena/Blocksworld-v0", {"n_blocks": 3, "initial": [[0, 1, 2]], "max_steps": 4}, 3, 30),
    ("icarena/Blocksworld-v0", {"n_blocks": 1, "max_steps": 2}, 2, 12),
    ("icarena/Regression-v0", {}, 4, 40),
] + [
    ("icarena/Regression-v0", {"family": fam, "k": 4, "family_kwargs": {
        "noise_std": 0.3, **({"intrinsic_dim": 2} if fam == "manifold" else {})}}, 4, 20)
    for fam in ("linear", "sparse_linear", "relu_2nn", "decision_tree", "holder", "manifold")
]


def _flat(obs: Any) -> dict[str, np.ndarray]:
    return {k: np.asarray(v) for k, v in obs.items()} if isinstance(obs, dict) else {"": obs}


def _assert_same_obs(a: Any, b: Any, where: str) -> None:
    fa, fb = _flat(a), _flat(b)
    assert fa.keys() == fb.keys()
    for key in fa:
        assert fa[key].dtype == fb[key].dtype, f"{where}: dtype of {key!r}"
        np.testing.assert_array_equal(fa[key], fb[key], err_msg=f"{where}: observation {key!r}")


def _run_both(native: gym.vector.VectorEnv, sync: gym.vector.VectorEnv, steps: int,
              seed: int | None) -> np.ndarray:
    """Step both with the same actions; returns the number of autoresets of each sub-env."""
    obs_n, _ = native.reset(seed=seed)
    obs_s, _ = sync.reset(seed=seed)
    _assert_same_obs(obs_n, obs_s, "reset")
    resets = np.zeros(native.num_envs, dtype=int)
    ended = np.zeros(native.num_envs, dtype=bool)
    for t in range(steps):
        action = native.action_space.sample()
        obs_n, r_n, term_n, trunc_n, _ = native.step(action)
        obs_s, r_s, term_s, trunc_s, _ = sync.step(action)
        _assert_same_obs(obs_n, obs_s, f"step {t}")
        assert r_n.dtype == np.float64
        np.testing.assert_array_equal(r_n, r_s, err_msg=f"step {t}: rewards")
        np.testing.assert_array_equal(term_n, term_s, err_msg=f"step {t}: terminations")
        np.testing.assert_array_equal(trunc_n, trunc_s, err_msg=f"step {t}: truncations")
        resets += ended
        ended = term_n | trunc_n
    return resets


@pytest.mark.parametrize(("env_id", "kwargs", "n", "steps"), CASES,
                         ids=[f"{c[0].split('/')[1]}-{i}" for i, c in enumerate(CASES)])
def test_native_vector_env_equals_sync_vector_env(env_id, kwargs, n, steps):
    native = gym.make_vec(env_id, num_envs=n, vectorization_mode="vector_entry_point", **kwargs)
    sync = gym.make_vec(env_id, num_envs=n, vectorization_mode="sync", **kwargs)
    assert type(native) is not gym.vector.SyncVectorEnv
    assert native.metadata["autoreset_mode"] == sync.metadata["autoreset_mode"] == \
        gym.vector.AutoresetMode.NEXT_STEP
    assert native.single_observation_space == sync.single_observation_space
    assert native.single_action_space == sync.single_action_space
    assert native.observation_space == sync.observation_space
    assert native.action_space == sync.action_space
    native.action_space.seed(1)
    resets = _run_both(native, sync, steps, seed=11)
    assert resets.min() >= 3, f"only {resets} autoresets; lengthen the run"
    # reset(seed=None) keeps every sub-env's generator running, as in SyncVectorEnv
    _run_both(native, sync, 6, seed=None)
    # a list of seeds, one per sub-env; None keeps that sub-env's generator running
    _run_both(native, sync, 6, seed=[5 * i + 1 for i in range(n)])
    _run_both(native, sync, 6, seed=[None] + [7 * i for i in range(1, n)])


@pytest.mark.parametrize("env_id", ALL_IDS)
def test_every_id_has_a_native_vector_env(env_id):
    venv = gym.make_vec(env_id, num_envs=2, vectorization_mode="vector_entry_point")
    assert venv.metadata["autoreset_mode"] == gym.vector.AutoresetMode.NEXT_STEP
    obs, _ = venv.reset(seed=0)
    assert venv.observation_space.contains(obs)
    obs, r, term, trunc, _ = venv.step(venv.action_space.sample())
    assert venv.observation_space.contains(obs) and r.shape == term.shape == trunc.shape == (2,)
    venv.close()


@pytest.mark.parametrize("env_id", ["icarena/PathFinding-v0", "icarena/Blocksworld-v0",
                                    "icarena/Regression-v0"])
def test_vector_env_errors(env_id):
    venv = gym.make_vec(env_id, num_envs=2, vectorization_mode="vector_entry_point")
    with pytest.raises(ConfigError, match="reset"):
        venv.step(venv.action_space.sample())
    venv.reset(seed=0)
    with pytest.raises(ConfigError):
        venv.step(np.full((3, 1), np.nan) if env_id.endswith("Regression-v0")
                  else np.full(2, 10**6))
    with pytest.raises(ConfigError, match="num_envs"):
        gym.make_vec(env_id, num_envs=0, vectorization_mode="vector_entry_point")


@pytest.mark.parametrize("env_id", ALL_IDS)
def test_reset_mask_is_refused(env_id):
    venv = gym.make_vec(env_id, num_envs=2, vectorization_mode="vector_entry_point")
    with pytest.raises(ConfigError):
        venv.reset(seed=0, options={"reset_mask": np.array([True, False])})
