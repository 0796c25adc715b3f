"""Incremental decoding (SequenceModel.decode, backbone decode): equal to full recomputation."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from icarena.envs.games import TabularGame
from icarena.envs.planning.tokens import PAD
from icarena.pretraining import backbones
from icarena.pretraining.backbones.linear import LinearAttention
from icarena.pretraining.game_lm import STREAMS, icgp_model_config
from icarena.pretraining.game_player import InContextGamePlayer
from icarena.pretraining.model import ModelConfig, SequenceModel
from icarena.pretraining.path_lm import alpine_model_config, sample_completions
from icarena.pretraining.readouts import READ_OUTS

INCREMENTAL = [n for n in backbones.available() if backbones.incremental(n)]
TOLERANCE = {torch.float32: 1e-5, torch.float64: 1e-10}
# each read-out on 5-wide input vectors and 12 outputs (cells: 3 states x a 2 x 2 action grid,
# its token slots laid over the random features)
READ_OUT_CFG = {"linear": {}, "query": {"groups": 3},
                "cells": {"groups": 3, "states": 3, "rows": 2, "action_a": 0, "action_b": 2,
                          "reward_slot": 1, "state_at": 2}}


def _vector_model(backbone: str, read_out: str, dtype: torch.dtype, T: int) -> SequenceModel:
    torch.manual_seed(0)
    cfg = ModelConfig(backbone=backbone, input_kind="vectors", input_dim=5, output_dim=12,
                      backbone_cfg=dict(d_model=16, n_layers=2, n_heads=2, max_len=T,
                                        causal=True),
                      read_out=read_out, read_out_cfg=READ_OUT_CFG[read_out])
    return SequenceModel(cfg).to(dtype).eval()


def _inputs(shape: tuple[int, ...], dtype: torch.dtype, read_out: str) -> torch.Tensor:
    """Random input vectors; non-negative for the cells read-out, whose slots hold one-hots
    and rewards in [0, 1] (its counts are logs of them)."""
    x = torch.randn(*shape, dtype=dtype, generator=torch.Generator().manual_seed(1))
    return x.abs() if read_out == "cells" else x


def _decode_in_pieces(model: SequenceModel, x: torch.Tensor, pieces: list[int]) -> torch.Tensor:
    outs, state, pos = [], None, 0
    for n in pieces:
        out, state = model.decode(x[:, pos:pos + n], state)
        outs.append(out)
        pos += n
    assert state.pos == pos == x.shape[1]
    return torch.cat(outs, dim=1)


def test_gpt_and_linear_decode_incrementally():
    assert {"gpt", "linear"} <= set(INCREMENTAL)
    assert "sepnorm" not in INCREMENTAL  # its special-position norms have no decoding state


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
@pytest.mark.parametrize("read_out", READ_OUTS)
@pytest.mark.parametrize("backbone", INCREMENTAL)
def test_decode_equals_full_recomputation_at_every_position(backbone, read_out, dtype):
    T = 150  # > the linear backbone's chunk of 64 positions
    model = _vector_model(backbone, read_out, dtype, T)
    assert model.incremental
    x = _inputs((3, T, 5), dtype, read_out)
    with torch.no_grad():
        full = model(x)
        # a prompt, a few positions after a cache, single tokens, a piece across the linear
        # backbone's fold of its key/value cache (at head_dim = 8 positions), long pieces
        pieces = [2, 3, 1, 1, 4] + [1] * 55 + [3, 70] + [1] * 11
        inc = _decode_in_pieces(model, x, pieces)
    torch.testing.assert_close(inc, full, atol=TOLERANCE[dtype], rtol=0)


@pytest.mark.parametrize("read_out", READ_OUTS)
@pytest.mark.parametrize("backbone", sorted(set(backbones.available()) - set(INCREMENTAL)))
def test_backbones_without_a_state_decode_by_recomputation(backbone, read_out):
    T = 12
    try:
        model = _vector_model(backbone, read_out, torch.float64, T)
    except Exception as e:  # a backbone that cannot be causal refuses at build time
        pytest.skip(f"{backbone}: {e}")
    assert not model.incremental
    x = _inputs((2, T, 5), torch.float64, read_out)
    with torch.no_grad():
        torch.testing.assert_close(_decode_in_pieces(model, x, [3, 1, 1, 7]), model(x),
                                   atol=1e-10, rtol=0)


def test_linear_chunks_equal_one_quadratic_form():
    torch.manual_seed(0)
    attn = LinearAttention(8, 2, normalize="count").double()
    x = torch.randn(2, 200, 8, dtype=torch.float64)
    key_mask = torch.rand(2, 200) > 0.2
    chunked = attn(x, causal=True, key_mask=key_mask)
    attn.chunk = 1000
    torch.testing.assert_close(chunked, attn(x, causal=True, key_mask=key_mask), atol=1e-12,
                               rtol=0)


def _token_model(backbone: str, dtype: torch.dtype) -> SequenceModel:
    torch.manual_seed(0)
    return SequenceModel(alpine_model_config(12, 24, d_model=16, n_layers=2, n_heads=2,
                                             backbone=backbone)).to(dtype)


@pytest.mark.parametrize("greedy", [False, True])
@pytest.mark.parametrize("backbone", INCREMENTAL)
def test_sampling_gives_identical_completions_in_float64(backbone, greedy):
    model = _token_model(backbone, torch.float64)
    prompts = np.random.default_rng(0).integers(2, 12, size=(50, 2))
    kw = dict(greedy=greedy, seed=3, batch_size=32)
    inc = sample_completions(model, prompts, 20, **kw)
    full = sample_completions(model, prompts, 20, incremental=False, **kw)
    np.testing.assert_array_equal(inc, full)
    assert (inc[:, 2:] != PAD).any()


def _player(read_out: str, dtype: torch.dtype, incremental: bool, backbone: str = "gpt",
            K: int = 8):
    H, S, A, B = 2, 2, 3, 3
    torch.manual_seed(0)
    models = {s: SequenceModel(icgp_model_config(s, (H, S, A, B), K * H, d_model=16, n_layers=2,
                                                 n_heads=2, read_out=read_out,
                                                 backbone=backbone)).to(dtype)
              for s in STREAMS["decentralized"]}
    meta = {"setting": "decentralized", "H": H, "S": S, "A": A, "B": B, "episodes": K,
            "streams": list(STREAMS["decentralized"]), "embedding": "slot"}
    return InContextGamePlayer(models, meta, incremental=incremental)


@pytest.mark.parametrize("query", ["step", "episode"])
@pytest.mark.parametrize("read_out", READ_OUTS)
@pytest.mark.parametrize("backbone", INCREMENTAL)
def test_game_player_decodes_incrementally_with_the_same_play(backbone, read_out, query):
    games = TabularGame.random(2, 2, 3, 3, seed=3, n_games=4)
    inc_player = _player(read_out, torch.float64, True, backbone)
    inc = inc_player.play(games, seed=5, query=query)
    full = _player(read_out, torch.float64, False, backbone).play(games, seed=5, query=query)
    assert set(inc) == set(full)
    for k in inc:
        np.testing.assert_allclose(inc[k], full[k], atol=1e-10, rtol=0, err_msg=k)
    # the last query saw K·H − 1 steps ("step") or K·H − H ("episode"): positions 0 .. t
    assert inc_player._decoded["max"][1].pos == (16 if query == "step" else 15)
    # a second play (a history that does not extend the decoded one) starts afresh
    again = inc_player.play(games, seed=5, query=query)
    np.testing.assert_array_equal(again["act/max"], inc["act/max"])


def test_icarena_list_says_which_backbones_decode_incrementally():
    from icarena.cli import list_everything

    lines = {line.split()[0]: line for line in list_everything().splitlines()
             if line.startswith("  ") and line.split()}
    assert "incremental decoding: yes" in lines["gpt"]
    assert "incremental decoding: yes" in lines["linear"]
    assert "incremental decoding: no" in lines["sepnorm"]
