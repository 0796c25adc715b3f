"""The `games` dataset generator: the one producer of ICGP data (icarena.pretraining.data.games)."""

import dataclasses

import numpy as np
import pytest

from icarena.agents.games import EXP3Config, VIULCBConfig, run_exp3, run_viulcb
from icarena.envs.games import TabularGame
from icarena.errors import ConfigError, DatasetError
from icarena.pretraining.data import load_dataset
from icarena.pretraining.data.games import (
    Config,
    dataset_settings,
    derived_seed,
    generate,
    generate_arrays,
    load_games,
    resolve,
    split_columns,
)
from icarena.pretraining.generate import GENERATORS, generator_module


def test_decentralized_dataset(tmp_path):
    cfg = Config(out_dir=str(tmp_path / "d"), n_games=5, episodes=40, trajectories_per_game=2,
                 val_games=3, seed=3)
    path = generate(cfg)
    ds = load_dataset(path, generator="games")
    assert ds["pi/max"].shape == (10, 40, 1, 1, 5) and ds["pi/max"].dtype == np.float32
    assert ds["act/min"].shape == (10, 40) and "pi/joint" not in ds
    assert ds["val/act/min"].shape == (3, 40) and ds["val/game/R"].shape == (3, 1, 1, 5, 5)
    np.testing.assert_array_equal(ds["traj/game"], np.tile(np.arange(5), 2))
    np.testing.assert_allclose(ds["rew/min"], 1 - ds["rew/max"], atol=1e-6)
    games = load_games(ds)
    assert games.batch_shape == (5,)
    g = ds["traj/game"][:, None]
    r = games.rewards[g, 0, 0, ds["act/max"], ds["act/min"]]
    np.testing.assert_allclose(ds["rew/max"], r, atol=1e-6)
    settings = dataset_settings(ds)
    assert settings["algorithm"] == "exp3" and settings["H"] == 1 and settings["episodes"] == 40
    assert set(split_columns(ds, "val")) == set(split_columns(ds, "train"))
    # the same config and seed give the same bytes; another seed other data
    again = load_dataset(generate(dataclasses.replace(cfg, out_dir=str(tmp_path / "d2"))))
    assert again.manifest_sha256 == ds.manifest_sha256
    other = generate_arrays(dataclasses.replace(cfg, seed=4))
    assert not np.array_equal(other["act/max"], ds["act/max"])
    with pytest.raises(Exception, match="already holds a dataset"):
        generate(cfg)


def test_the_bytes_do_not_depend_on_the_number_of_workers(tmp_path):
    """--workers only shares the parts out: the datasets (manifest included) are identical."""
    cfg = Config(setting="centralized", n_games=5, episodes=3, trajectories_per_game=2, chunks=3,
                 val_games=1, context_options={"mwu_iters": 5})
    one = load_dataset(generate(dataclasses.replace(cfg, out_dir=str(tmp_path / "w1"))))
    two = load_dataset(generate(dataclasses.replace(cfg, out_dir=str(tmp_path / "w2"),
                                                    workers=2)))
    assert (tmp_path / "w1" / "manifest.json").read_bytes() == \
        (tmp_path / "w2" / "manifest.json").read_bytes()
    assert one.manifest_sha256 == two.manifest_sha256
    for name in one.names():
        assert one[name].tobytes() == two[name].tobytes(), name


def test_seed_protocol_is_the_former_pretrain_icgp_draws(tmp_path):
    """Recomputed independently from the documented protocol: training games on [seed, 1],
    validation games on [seed, 2]; one part = one batched run on the games tiled per trajectory,
    seeded with derived_seed(seed, 11) (what `icarena pretrain icgp` drew itself before it read
    datasets, so the recorded ICGP results stay valid); two parts = rows split in halves, part c
    from SeedSequence([s11, c]) (its former --data.workers 2)."""
    seed, N, J, K = 7, 3, 2, 12
    games = TabularGame.random(1, 1, 4, 4, seed=np.random.SeedSequence([seed, 1]), n_games=N)
    tiled = TabularGame(np.tile(games.rewards, (J, 1, 1, 1, 1)),
                        np.tile(games.transitions, (J, 1, 1, 1, 1, 1)),
                        np.tile(games.initial, (J, 1)))
    whole = run_exp3(tiled, K, cfg=EXP3Config(), seed=derived_seed(seed, 11))
    val_games = TabularGame.random(1, 1, 4, 4, seed=np.random.SeedSequence([seed, 2]), n_games=2)
    val = run_exp3(val_games, K, cfg=EXP3Config(), seed=derived_seed(seed, 12))
    cfg = Config(out_dir=str(tmp_path / "one"), seed=seed, n_games=N, trajectories_per_game=J,
                 episodes=K, A=4, B=4, val_games=2)
    ds = load_dataset(generate(cfg))
    np.testing.assert_array_equal(ds["game/R"], games.rewards)
    for k in ("act/max", "act/min", "traj/s", "rew/max", "pi/max", "pi/min"):
        assert np.asarray(ds[k]).tobytes() == whole[k].astype(ds[k].dtype).tobytes(), k
        assert np.asarray(ds["val/" + k]).tobytes() == val[k].astype(ds[k].dtype).tobytes(), k
    # two parts
    halves = Config(seed=seed, n_games=N, trajectories_per_game=J, episodes=K, A=4, B=4,
                    val_games=0, chunks=2)
    arrays = generate_arrays(halves)
    for c, (a, b) in enumerate(((0, 3), (3, 6))):
        part = TabularGame(tiled.rewards[a:b], tiled.transitions[a:b], tiled.initial[a:b])
        alone = run_exp3(part, K, cfg=EXP3Config(),
                         seed=np.random.SeedSequence([derived_seed(seed, 11), c]))
        np.testing.assert_array_equal(arrays["act/max"][a:b], alone["act/max"])
        np.testing.assert_array_equal(arrays["pi/min"][a:b], alone["pi/min"])


def test_centralized_dataset_matches_algorithm(tmp_path):
    cfg = Config(out_dir=str(tmp_path / "c"), setting="centralized", n_games=3, episodes=6,
                 context_options={"mwu_iters": 20}, val_games=0, seed=1)
    ds = load_dataset(generate(cfg))
    assert ds["pi/joint"].shape == (3, 12, 2, 4, 25) and "val/traj/h" not in ds
    assert ds.config["algorithm"] == "viulcb"
    assert "workers" not in ds.config and "preset" not in ds.config
    games = load_games(ds)
    rec = run_viulcb(games, 6, cfg=VIULCBConfig(c=0.02, mwu_iters=20), seed=derived_seed(1, 11))
    np.testing.assert_array_equal(ds["act/max"], rec["act/max"])
    np.testing.assert_array_equal(ds["pi/joint"], rec["pi/joint"])


def test_presets_and_settings():
    assert resolve(Config()).episodes == 300
    assert resolve(Config(preset="paper")).episodes == 3000
    assert resolve(Config(setting="centralized")).episodes == 150
    assert resolve(Config(setting="centralized", preset="paper")).episodes == 300
    assert resolve(Config(preset="paper", episodes=7)).episodes == 7  # explicit wins
    cfg = resolve(Config(H=2, S=3, episodes=5))
    assert cfg.algorithm == "vlearning"
    with pytest.raises(ConfigError, match="exp3 needs matrix games"):
        resolve(Config(H=2, S=3, algorithm="exp3"))
    with pytest.raises(ConfigError, match="does not fit setting"):
        resolve(Config(setting="centralized", algorithm="exp3"))
    with pytest.raises(ConfigError, match="setting must be"):
        resolve(Config(setting="both"))
    assert generator_module("games").Config is Config and "games" in GENERATORS


def test_a_dataset_of_another_generator_is_not_games_data(tmp_path):
    from icarena.pretraining.data.store import write_dataset

    other = write_dataset(tmp_path / "o", {"x": np.zeros(3)}, generator="alpine", config={},
                          seed=0)
    with pytest.raises(DatasetError, match="not 'games'"):
        dataset_settings(load_dataset(other))
