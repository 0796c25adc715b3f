"""In-context game players (icarena.pretraining.game_player): causality, information, play."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from icarena.envs.games import TabularGame
from icarena.errors import ConfigError
from icarena.pretraining.game_lm import (
    EMBEDDINGS,
    STREAMS,
    GameModel,
    GameTrainConfig,
    PretrainConfig,
    icgp_model_config,
    pretrain,
)
from icarena.pretraining.game_player import InContextGamePlayer
from icarena.pretraining.model import SequenceModel
from icarena.pretraining.readouts import READ_OUTS

# every token with every read-out that can read it (the 'cells' read-out needs a slot* token)
TOKEN_READ_OUTS = [(e, r) for e in EMBEDDINGS for r in READ_OUTS
                   if r != "cells" or e.startswith("slot")]


def _player(setting, H=2, S=2, A=3, B=4, K=6, seed=0, embedding="slot", read_out="linear"):
    """A randomly initialised player (its weights make every input matter)."""
    torch.manual_seed(seed)
    models = {s: SequenceModel(icgp_model_config(s, (H, S, A, B), K * H, d_model=16,
                                                 n_layers=2, n_heads=2, embedding=embedding,
                                                 read_out=read_out))
              for s in STREAMS[setting]}
    meta = {"setting": setting, "H": H, "S": S, "A": A, "B": B, "episodes": K,
            "streams": list(STREAMS[setting]), "embedding": embedding}
    return InContextGamePlayer(models, meta)


def _history(G, T, H, S, A, B, seed):
    """A random joint history with both players' (and a joint) policy at every step."""
    rng = np.random.default_rng(seed)
    return {"traj/h": np.tile(np.arange(T) % H, (G, 1)), "traj/s": rng.integers(0, S, (G, T)),
            "traj/s_next": rng.integers(0, S, (G, T)), "act/max": rng.integers(0, A, (G, T)),
            "act/min": rng.integers(0, B, (G, T)), "rew/max": rng.random((G, T)),
            "pi/max": rng.dirichlet(np.ones(A), (G, T, H, S)),
            "pi/min": rng.dirichlet(np.ones(B), (G, T, H, S)),
            "pi/joint": rng.dirichlet(np.ones(A * B), (G, T, H, S))}


def _cut(hist, t):
    return {k: v[:, :t] for k, v in hist.items()}


@pytest.mark.parametrize("embedding,read_out", TOKEN_READ_OUTS)
@pytest.mark.parametrize("setting", ["decentralized", "centralized"])
def test_policy_at_a_step_depends_only_on_the_history_before_it(setting, embedding, read_out):
    H, S, A, B, K = 2, 2, 3, 4, 6
    player = _player(setting, H, S, A, B, K, embedding=embedding, read_out=read_out)
    T = K * H
    hist = _history(3, T, H, S, A, B, seed=1)
    for stream in player.streams:
        full = player.stream_policies(hist, stream, all_positions=True)  # (G, T, H, S, n)
        assert full.shape[:2] == (3, T)
        for t in (0, 1, 5, T - 1):
            alone = player.stream_policies(_cut(hist, t), stream)
            np.testing.assert_allclose(full[:, t], alone, atol=1e-5)
            # rewrite everything from step t on: the policy for step t must not move
            future = _history(3, T, H, S, A, B, seed=99)
            mixed = {k: np.concatenate([hist[k][:, :t], future[k][:, t:]], 1) for k in hist}
            np.testing.assert_allclose(
                player.stream_policies(mixed, stream, all_positions=True)[:, : t + 1],
                full[:, : t + 1], atol=1e-5)
        # positive control: changing a step before t does move the policy for step t
        changed = dict(hist, **{"rew/max": hist["rew/max"].copy()})
        changed["rew/max"][:, 0] = 1.0 - changed["rew/max"][:, 0]
        moved = player.stream_policies(changed, stream, all_positions=True)
        assert np.abs(moved[:, 3] - full[:, 3]).max() > 1e-6
        assert np.allclose(moved[:, 0], full[:, 0], atol=1e-6)


@pytest.mark.parametrize("embedding,read_out", TOKEN_READ_OUTS)
def test_decentralized_players_never_see_the_opponents_actions(embedding, read_out):
    H, S, A, B, K = 2, 2, 3, 4, 6
    player = _player("decentralized", H, S, A, B, K, embedding=embedding, read_out=read_out)
    hist = _history(3, K * H - 1, H, S, A, B, seed=2)
    # the opponent's actions and its policies (and the joint one) change; own columns do not
    swap_min = dict(hist, **{"act/min": (hist["act/min"] + 1) % B,
                             "pi/min": hist["pi/min"][..., ::-1], "pi/joint": None})
    swap_max = dict(hist, **{"act/max": (hist["act/max"] + 1) % A,
                             "pi/max": hist["pi/max"][..., ::-1], "pi/joint": None})
    np.testing.assert_array_equal(player.stream_policies(hist, "max"),
                                  player.stream_policies(swap_min, "max"))
    np.testing.assert_array_equal(player.stream_policies(hist, "min"),
                                  player.stream_policies(swap_max, "min"))
    # positive controls: own actions matter, and the centralized model sees both
    assert not np.allclose(player.stream_policies(hist, "max"),
                           player.stream_policies(swap_max, "max"))
    joint = _player("centralized", H, S, A, B, K, embedding=embedding, read_out=read_out)
    assert not np.allclose(joint.stream_policies(hist, "joint"),
                           joint.stream_policies(dict(swap_min, **{"pi/joint": hist["pi/joint"]}),
                                                 "joint"))


@pytest.mark.parametrize("embedding", ["slot", "slot_prob"])
@pytest.mark.parametrize("setting", ["decentralized", "centralized"])
def test_play_uses_the_read_out_given_the_history_so_far(setting, embedding):
    H, S, A, B, K = 2, 2, 3, 4, 6
    player = _player(setting, H, S, A, B, K, embedding=embedding)
    games = TabularGame.random(H, S, A, B, seed=3, n_games=4)
    rec = player.play(games, K, seed=7, query="step")
    assert rec["act/max"].shape == (4, K * H)
    assert ("pi/joint" in rec) == (setting == "centralized")
    for t in (0, 3, K * H - 1):
        pol = player.policies(_cut(rec, t))
        if setting == "centralized":
            np.testing.assert_allclose(rec["pi/joint"][:, t], pol, atol=1e-5)
        else:
            np.testing.assert_allclose(rec["pi/max"][:, t], pol[0], atol=1e-5)
            np.testing.assert_allclose(rec["pi/min"][:, t], pol[1], atol=1e-5)
    # batched over games: game 2 alone, with its own record, gets the same policies
    ep = player.play(games, K, seed=7)
    np.testing.assert_allclose(ep["pi/max"][:, 2], ep["pi/max"][:, 3])  # fixed within episode
    assert player.play(games, 2, seed=7)["act/max"].shape == (4, 4)


def test_play_errors_name_the_problem():
    player = _player("decentralized", 2, 2, 3, 4, 6)
    with pytest.raises(ConfigError, match="pretraining dims"):
        player.play(TabularGame.random(2, 2, 3, 3, seed=0, n_games=2), 2)
    with pytest.raises(ConfigError, match="episodes <= 6"):
        player.play(TabularGame.random(2, 2, 3, 4, seed=0, n_games=2), 7)
    with pytest.raises(ConfigError, match="too long"):
        player.stream_policies(_history(1, 12, 2, 2, 3, 4, 0), "max")
    with pytest.raises(ConfigError, match="unknown stream"):
        player.stream_policies(_history(1, 2, 2, 2, 3, 4, 0), "joint")
    with pytest.raises(ConfigError, match="width"):
        InContextGamePlayer(player.models, {**player.meta, "embedding": "concat"})


def test_load_from_a_pretrained_run_dir(tmp_path):
    from icarena.pretraining.data.games import Config, generate

    data = generate(Config(out_dir=str(tmp_path / "data"), H=1, S=1, A=3, B=3, episodes=5,
                           n_games=2, val_games=0))
    cfg = PretrainConfig(out_dir=str(tmp_path / "run"), data=str(data),
                         model=GameModel(d_model=8, n_layers=1, n_heads=2),
                         train=GameTrainConfig(steps=2, batch_size=2, warmup_steps=1,
                                               ckpt_every=2, progress=False))
    pretrain(cfg)
    player = InContextGamePlayer.load(tmp_path / "run")
    assert player.streams == ("max", "min") and player.max_steps == 5
    rec = player.play(TabularGame.random(1, 1, 3, 3, seed=1, n_games=3), seed=0)
    assert rec["pi/max"].shape == (3, 5, 1, 1, 3)
    np.testing.assert_allclose(rec["pi/max"].sum(-1), 1.0, atol=1e-5)
