"""The `games` dataset generator."""

import dataclasses

import numpy as np
import pytest

from icarena.agents.games import run_viulcb
from icarena.agents.games.viulcb import VIULCBConfig
from icarena.errors import ConfigError
from icarena.pretraining.data import load_dataset
from icarena.pretraining.data.games import Config, generate, generate_arrays, load_games, resolve
from icarena.pretraining.generate import GENERATORS, generator_module


def test_decentralized_dataset(tmp_path):
    cfg = Config(out_dir=str(tmp_path / "d"), n_games=5, episodes=40, chunk_games=2, seed=3)
    path = generate(cfg)
    ds = load_dataset(path, generator="games")
    assert ds["pi/max"].shape == (5, 40, 1, 1, 5) and ds["pi/max"].dtype == np.float16
    assert ds["act/min"].shape == (5, 40) and "pi/joint" not in ds
    np.testing.assert_allclose(ds["rew/min"], 1 - ds["rew/max"], atol=1e-6)
    games = load_games(ds)
    assert games.batch_shape == (5,)
    r = games.rewards[np.arange(5)[:, None], 0, 0, ds["act/max"], ds["act/min"]]
    np.testing.assert_allclose(ds["rew/max"], r, atol=1e-6)
    assert ds.config["algorithm"] == "exp3" and ds.config["H"] == 1
    # the same config and seed give the same bytes; another seed other data
    again = load_dataset(generate(dataclasses.replace(cfg, out_dir=str(tmp_path / "d2"))))
    assert again.manifest["arrays"] == ds.manifest["arrays"]
    other = generate_arrays(dataclasses.replace(cfg, seed=4))
    assert not np.array_equal(other["act/max"], ds["act/max"])
    with pytest.raises(Exception, match="already holds a dataset"):
        generate(cfg)


def test_centralized_dataset_matches_algorithm(tmp_path):
    cfg = Config(out_dir=str(tmp_path / "c"), setting="centralized", n_games=3, episodes=6,
                 mwu_iters=20, pi_dtype="float32", seed=1)
    ds = load_dataset(generate(cfg))
    assert ds["pi/joint"].shape == (3, 12, 2, 4, 25)
    assert ds.config["algorithm"] == "viulcb"
    games = load_games(ds)
    _, algo_ss = np.random.SeedSequence(1).spawn(2)
    rec = run_viulcb(games, 6, cfg=VIULCBConfig(c=0.02, mwu_iters=20), seed=algo_ss.spawn(1)[0])
    np.testing.assert_array_equal(ds["act/max"], rec["act/max"])
    np.testing.assert_allclose(ds["pi/joint"], rec["pi/joint"])


def test_markov_decentralized_uses_vlearning_and_errors(tmp_path):
    cfg = resolve(Config(H=2, S=3, episodes=5))
    assert cfg.algorithm == "vlearning"
    with pytest.raises(ConfigError, match="exp3 needs matrix games"):
        resolve(Config(H=2, S=3, algorithm="exp3"))
    with pytest.raises(ConfigError, match="does not fit setting"):
        resolve(Config(setting="centralized", algorithm="exp3"))
    with pytest.raises(ConfigError, match="setting must be"):
        resolve(Config(setting="both"))
    assert generator_module("games").Config is Config and "games" in GENERATORS
