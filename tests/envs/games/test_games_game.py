"""TabularGame: validation, the random prior, batching and files."""

import numpy as np
import pytest

from icarena.envs.games import TabularGame, stack
from icarena.errors import ConfigError, DatasetError


def test_random_prior_and_determinism():
    g = TabularGame.random(2, 4, 5, 5, seed=3, n_games=200)
    assert g.batch_shape == (200,) and g.dims == (2, 4, 5, 5)
    r = g.rewards
    assert r.min() >= 0 and r.max() <= 1
    assert abs(r.mean() - 0.4599) < 0.005 and abs(r.var() - 0.0797) < 0.003  # truncnorm(0, 1)
    np.testing.assert_allclose(g.transitions.sum(-1), 1.0)
    assert np.all(g.initial[:, 0] == 1.0)
    # Dirichlet(1) marginal of one coordinate over S=4 states has mean 1/4, var 3/80
    p0 = g.transitions[..., 0].ravel()
    assert abs(p0.mean() - 0.25) < 0.01 and abs(p0.var() - 3 / 80) < 0.004
    g2 = TabularGame.random(2, 4, 5, 5, seed=3, n_games=200)
    assert g2.to_bytes() == g.to_bytes()
    assert TabularGame.random(2, 4, 5, 5, seed=4).to_bytes() != g[0].to_bytes()
    det = TabularGame.random(2, 3, 2, 2, seed=0, transition="deterministic", initial="uniform")
    assert set(np.unique(det.transitions)) <= {0.0, 1.0}
    np.testing.assert_allclose(det.initial, 1 / 3)


def test_from_matrix_index_stack_reshape():
    R = np.random.default_rng(0).random((3, 4, 2))
    g = TabularGame.from_matrix(R)
    assert g.batch_shape == (3,) and g.dims == (1, 1, 4, 2) and g.is_matrix_game
    np.testing.assert_array_equal(g[1].rewards[0, 0], R[1])
    assert g[0:2].batch_shape == (2,) and len(g) == 3
    s = stack([g[2], g[0]])
    np.testing.assert_array_equal(s.rewards[0], g.rewards[2])
    assert g.reshape(3, 1).batch_shape == (3, 1)
    with pytest.raises(ConfigError, match="different"):
        stack([g[0], TabularGame.from_matrix(np.ones((2, 2)) * 0.5)])
    with pytest.raises(ConfigError, match="unbatched"):
        g[0][0]


@pytest.mark.parametrize("kwargs,msg", [
    ({"rewards": np.full((1, 1, 2, 2), 1.5)}, "rewards must lie in"),
    ({"rewards": np.full((1, 1, 2, 2), np.nan)}, "NaN"),
    ({"rewards": np.zeros((1, 2, 2))}, "rewards must have shape"),
    ({"transitions": np.full((1, 1, 2, 2, 1), 0.5)}, "transitions must sum to 1"),
    ({"transitions": np.ones((1, 1, 2, 2, 2))}, "transitions must have shape"),
    ({"initial": np.array([0.5])}, "initial must sum to 1"),
    ({"initial": np.ones((2,))}, "initial must have shape"),
])
def test_validation_errors(kwargs, msg):
    base = {"rewards": np.full((1, 1, 2, 2), 0.5), "transitions": np.ones((1, 1, 2, 2, 1)),
            "initial": np.ones(1)}
    with pytest.raises(ConfigError, match=msg):
        TabularGame(**{**base, **kwargs})
    with pytest.raises(ConfigError, match="transition must be"):
        TabularGame.random(1, 1, 2, 2, transition="nope")
    with pytest.raises(ConfigError, match="H must be"):
        TabularGame.random(0, 1, 2, 2)


def test_save_load_roundtrip(tmp_path):
    g = TabularGame.random(2, 3, 2, 4, seed=1, n_games=2)
    path = g.save(tmp_path / "g.npz")
    back = TabularGame.load(path)
    for name in ("rewards", "transitions", "initial"):
        np.testing.assert_array_equal(getattr(back, name), getattr(g, name))
    with pytest.raises(DatasetError, match="no saved game"):
        TabularGame.load(tmp_path / "missing.npz")
    (tmp_path / "bad.npz").write_bytes(b"not an npz")
    with pytest.raises(DatasetError, match="not a saved TabularGame"):
        TabularGame.load(tmp_path / "bad.npz")
    assert not g.rewards.flags.writeable
