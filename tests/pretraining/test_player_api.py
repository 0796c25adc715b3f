"""The games track's library API: train_player on the user's games, save / load, the CLI route
through the same recipe, and evaluate_game_players on any mix of players."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from cli_helpers import ok

from icarena.envs.games import TabularGame
from icarena.errors import ConfigError
from icarena.evaluation import GameCurves, evaluate_game_players, record_gap_curves, uniform_gap
from icarena.pretraining import (
    GameModel,
    InContextGamePlayer,
    fit_icgp_models,
    icgp_train_config,
    train_player,
)

TINY_MODEL = GameModel(d_model=16, n_layers=1, n_heads=2)
TINY_TRAIN = icgp_train_config().replace(steps=6, batch_size=4, warmup_steps=2, threads=1)


def _games(G=4, seed=0):
    return TabularGame.from_matrix(np.random.default_rng(seed).random((G, 3, 3)))


def _weights(player):
    return {s: {k: v.clone() for k, v in m.state_dict().items()}
            for s, m in player.models.items()}


def test_train_player_in_memory_is_seeded_and_writes_nothing(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    a = train_player(_games(), episodes=5, model=TINY_MODEL, train=TINY_TRAIN, seed=3)
    b = train_player(_games(), episodes=5, model=TINY_MODEL, train=TINY_TRAIN, seed=3)
    assert not any(tmp_path.iterdir())
    assert set(a.models) == {"max", "min"} and a.setting == "decentralized"
    for s in a.models:
        for k, v in _weights(a)[s].items():
            assert torch.equal(v, _weights(b)[s][k])
    assert set(a.result) == {"max", "min"} and len(a.result["max"].losses) == 6


def test_save_load_and_out_dir_give_identical_play(tmp_path):
    games = _games()
    player = train_player(games, episodes=5, model=TINY_MODEL, train=TINY_TRAIN,
                          out_dir=tmp_path / "run")
    for again in (InContextGamePlayer.load(tmp_path / "run"),
                  InContextGamePlayer.load(player.save(tmp_path / "saved"))):
        x, y = again.play(games, 5, seed=1), player.play(games, 5, seed=1)
        for key in ("act/max", "act/min", "pi/max", "pi/min"):
            np.testing.assert_array_equal(x[key], y[key])


def test_centralized_player_from_viulcb_on_markov_games():
    games = TabularGame.random(2, 2, 2, 2, seed=0, n_games=3)
    joint = train_player(games, algorithm="viulcb", episodes=3,
                         algorithm_options={"mwu_iters": 5}, model=TINY_MODEL, train=TINY_TRAIN)
    assert joint.setting == "centralized" and set(joint.models) == {"joint"}
    rec = joint.play(games, 3)
    assert rec["pi/joint"].shape[:2] == (3, 6)


def test_cli_pretrain_is_the_same_recipe(tmp_path):
    """`icarena pretrain icgp --data D` gives the weights of fit_icgp_models on D's records."""
    from icarena.pretraining.data.games import dataset_settings, has_split, split_columns
    from icarena.pretraining.game_lm import load_games_dataset

    data, run = tmp_path / "d", tmp_path / "r"
    ok("generate", "games", "--n-games", "2", "--episodes", "4", "--val-games", "0",
       "--out-dir", str(data))
    ok("pretrain", "icgp", "--data", str(data), "--out-dir", str(run), "--model.d-model", "16",
       "--model.n-layers", "1", "--model.n-heads", "2", "--train.steps", "6",
       "--train.batch-size", "4", "--train.warmup-steps", "2", "--train.threads", "1",
       "--seed", "5")
    ds, settings = load_games_dataset(data)
    assert settings == dataset_settings(ds) and not has_split(ds, "val")
    rec = {k: np.array(v) for k, v in split_columns(ds, "train").items()}
    models, _, _ = fit_icgp_models(rec, settings, model=TINY_MODEL, train=TINY_TRAIN, seed=5)
    cli = InContextGamePlayer.load(run)
    for s, m in models.items():
        for k, v in m.state_dict().items():
            assert torch.equal(v, cli.models[s].state_dict()[k]), (s, k)


def test_evaluate_game_players_matches_independent_scoring():
    from icarena.pretraining.game_lm import context_records

    games = _games(G=3, seed=1)
    A, B = 3, 3

    def uniform(history):  # a plain policy source
        G = history["traj/h"].shape[0]
        return np.full((G, 1, 1, A), 1 / A), np.full((G, 1, 1, B), 1 / B)

    curves = evaluate_game_players(games, {"EXP3": "exp3", "uniform play": uniform,
                                           "V-learning": ("vlearning", {})},
                                   episodes=8, seed=4)
    assert isinstance(curves, GameCurves) and curves.names == ["EXP3", "uniform play",
                                                               "V-learning"]
    want = record_gap_curves(games, context_records(games, "exp3", 8, 1, seed=4))
    np.testing.assert_array_equal(curves.gaps["EXP3"]["avg"], want["avg"])
    np.testing.assert_allclose(curves.gaps["uniform play"]["last"],
                               np.repeat(uniform_gap(games)[:, None], 8, axis=1), atol=1e-12)
    assert "| EXP3 |" in curves.table() and "| uniform |" in curves.table()
    assert curves.final("EXP3") == pytest.approx(float(want["avg"][:, -1].mean()))


@pytest.mark.parametrize("players, field", [
    ({"x": "chess"}, "players"), ({"x": 3}, "players"), ({}, "players")])
def test_bad_players_name_the_argument(players, field):
    with pytest.raises(ConfigError) as e:
        evaluate_game_players(_games(), players, episodes=2)
    assert field in e.value.fields


def test_bad_train_player_input_names_the_argument():
    with pytest.raises(ConfigError) as e:
        train_player(_games(), algorithm="ucb", episodes=2)
    assert "algorithm" in e.value.fields
    with pytest.raises(ConfigError, match="matrix games"):
        train_player(TabularGame.random(2, 2, 2, 2, seed=0, n_games=2), algorithm="exp3")


def test_evaluating_several_runs_does_not_depend_on_their_order(tmp_path, capsys):
    from icarena.cli import main
    from icarena.evaluation.icgp import evaluate_players
    from icarena.pretraining.data.games import run_trajectories

    a = tmp_path / "x" / "r"
    b = tmp_path / "y" / "r"  # the same name in another directory: its own row
    games = TabularGame.random(1, 1, 3, 3, seed=0, n_games=3)  # the ICGP prior
    for out, K, seed in ((a, 5, 1), (b, 4, 2)):
        settings = {"setting": "decentralized", "H": 1, "S": 1, "A": 3, "B": 3, "episodes": K,
                    "algorithm": "exp3", "n_games": 3, "trajectories_per_game": 1}
        fit_icgp_models(run_trajectories(games, "exp3", K, 1, seed), settings,
                        model=TINY_MODEL, train=TINY_TRAIN, seed=seed, out_dir=out)
    with pytest.raises(ConfigError, match="own games"):
        user = tmp_path / "user"
        train_player(games, episodes=3, model=TINY_MODEL, train=TINY_TRAIN, out_dir=user)
        evaluate_players({"u": user}, n_games=2)
    with pytest.raises(ConfigError, match="different K") as e:
        evaluate_players({"a": a, "b": b}, n_games=2)
    assert "episodes" in e.value.fields
    one = evaluate_players({"a": a, "b": b}, n_games=2, episodes=3)
    two = evaluate_players({"b": b, "a": a}, n_games=2, episodes=3)
    for label in ("a", "b"):
        np.testing.assert_array_equal(one["gaps"][label]["avg"], two["gaps"][label]["avg"])
    out = tmp_path / "ev"
    assert main(["evaluate", "icgp", "--run-dir", f"{a},{a}", "--out-dir", str(out)]) == 2
    assert "twice" in capsys.readouterr().err and not out.exists()
