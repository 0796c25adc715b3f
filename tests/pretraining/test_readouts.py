"""Read-outs (icarena.pretraining.readouts): the query read-out's prefix attention and causality;
the cells read-out's values, causality, decoding and action symmetry."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from icarena.errors import ConfigError
from icarena.pretraining.game_lm import icgp_model_config, model_inputs, step_tokens
from icarena.pretraining.model import ModelConfig, SequenceModel
from icarena.pretraining.readouts import prefix_attention


def test_prefix_attention_is_softmax_attention_over_the_sink_and_the_prefix():
    g = torch.Generator().manual_seed(0)
    B, L, G, K, Dh = 2, 7, 3, 2, 4
    score = torch.randn(B, L, G, K, generator=g, dtype=torch.float64) * 5
    value = torch.randn(B, L, K, Dh, generator=g, dtype=torch.float64)
    sink_logit = torch.randn(G, K, generator=g, dtype=torch.float64)
    sink_value = torch.randn(K, Dh, generator=g, dtype=torch.float64)
    mean, sink_w = prefix_attention(score, value, sink_logit, sink_value)
    bound = lambda s: 8 * torch.tanh(s / 8)  # noqa: E731
    for b in range(B):
        for t in range(L):
            for gi in range(G):
                for k in range(K):
                    logits = torch.cat([bound(sink_logit[gi, k])[None],
                                        bound(score[b, : t + 1, gi, k])])
                    p = torch.softmax(logits, 0)
                    vals = torch.cat([sink_value[k][None], value[b, : t + 1, k]])
                    torch.testing.assert_close(mean[b, t, gi, k], p @ vals)
                    torch.testing.assert_close(sink_w[b, t, gi, k], p[0])


def test_prefix_attention_survives_extreme_scores():
    score = torch.full((1, 600, 1, 1), -1e4)
    score[0, -1] = 1e4
    mean, sink_w = prefix_attention(score, torch.ones(1, 600, 1, 2), torch.zeros(1, 1),
                                    torch.zeros(1, 2))
    assert torch.isfinite(mean).all() and torch.isfinite(sink_w).all()
    assert sink_w[0, -1, 0, 0] < 1e-3 < sink_w[0, 0, 0, 0]


def _query_model(**read_out_cfg):
    return SequenceModel(ModelConfig(
        backbone="gpt", backbone_cfg=dict(d_model=16, n_layers=1, n_heads=2, max_len=20,
                                          causal=True),
        input_kind="vectors", input_dim=5, output_dim=12, read_out="query",
        read_out_cfg={"groups": 4, "heads": 2, "head_dim": 4, "hidden": 16, **read_out_cfg}))


def test_query_read_out_is_causal_and_reads_the_prefix():
    torch.manual_seed(0)
    model = _query_model()
    x = torch.randn(3, 20, 5)
    y = model(x)
    assert y.shape == (3, 20, 12)
    later = x.clone()
    later[:, 10:] = torch.randn(3, 10, 5)
    torch.testing.assert_close(model(later)[:, :10], y[:, :10])
    earlier = x.clone()
    earlier[:, 2] += 1.0
    assert (model(earlier)[:, 2:] - y[:, 2:]).abs().amax() > 1e-5


def test_query_read_out_config_errors():
    with pytest.raises(ConfigError, match="multiple of groups"):
        _query_model(groups=5)
    with pytest.raises(ConfigError, match="no option"):
        _query_model(width=3)
    with pytest.raises(ConfigError, match="read_out must be one of"):
        ModelConfig(input_kind="vectors", input_dim=3, output_dim=2, read_out="mlp").validate()
    with pytest.raises(ConfigError, match="input_kind='vectors'"):
        ModelConfig(input_kind="tokens", input_dim=3, output_dim=2, read_out="query",
                    read_out_cfg={"groups": 2}).validate()


# ----------------------------------------------------------------------- the 'cells' read-out
H, S, A, B = 2, 3, 3, 4


def _history(rng, G=2, T=24, act_max=None, act_min=None):
    return {"traj/h": np.tile(np.arange(T) % H, (G, 1)), "traj/s": rng.integers(0, S, (G, T)),
            "act/max": rng.integers(0, A, (G, T)) if act_max is None else act_max,
            "act/min": rng.integers(0, B, (G, T)) if act_min is None else act_min,
            "rew/max": rng.random((G, T)).astype(np.float32)}


def _cells_model(stream="joint", T=24, **options):
    torch.manual_seed(0)
    cfg = icgp_model_config(stream, (H, S, A, B), T, d_model=16, n_layers=1, n_heads=2,
                            read_out="cells", read_out_cfg={"width": 8, **options})
    return SequenceModel(cfg)


def _inputs(hist, stream="joint"):
    tok = step_tokens(hist, stream, H, S, A, B)
    return torch.from_numpy(model_inputs(tok, tok.shape[1]))


def test_cells_read_out_values_are_the_cells_visits_rewards_and_transitions():
    """With scores that select the visits of one state (and, for another head, the steps right
    after it), the attention means are the per-cell shares, reward means and next-state
    frequencies counted directly from the history."""
    rng = np.random.default_rng(0)
    hist = _history(rng, G=1, T=40)
    model = _cells_model()
    ro = model.read_out
    x = _inputs(hist).double()
    ro.double()
    g = 1 * S + 2                                      # the group of (h, s) = (1, 2)
    with torch.no_grad():
        ro.score.weight.zero_()
        ro.score.bias.fill_(-1e4)
        D = x.shape[-1]
        ro.score.bias[g * 2 + 0] = ro.score.bias[g * 2 + 1] = -30.0
        ro.score.weight[g * 2 + 0, 1] = ro.score.weight[g * 2 + 0, H + 2] = 20.0     # x_j at g
        ro.score.weight[g * 2 + 1, D + 1] = ro.score.weight[g * 2 + 1, D + H + 2] = 20.0
        ro.sink_logit.fill_(-1e4)
        z = torch.zeros(1, x.shape[1], 16, dtype=torch.float64)
        captured = {}
        ro._head = lambda mean, sw, z: captured.update(mean=mean, sw=sw) or torch.zeros(1)
        ro(x, z)
    mean = captured["mean"][0, -1, g]                  # (K, n, C) at the last position
    tok_h, tok_s = hist["traj/h"][0, :39], hist["traj/s"][0, :39]   # steps 0..38 are inputs
    cells = hist["act/max"][0, :39] * B + hist["act/min"][0, :39]
    visits = np.flatnonzero((tok_h == 1) & (tok_s == 2))
    share = np.bincount(cells[visits], minlength=A * B) / len(visits)
    rew = np.bincount(cells[visits], weights=hist["rew/max"][0, visits], minlength=A * B)
    np.testing.assert_allclose(mean[0, :, 0].numpy(), share, atol=1e-5)
    np.testing.assert_allclose(mean[0, :, 1].numpy(), rew / len(visits), atol=1e-5)
    after = visits[visits + 1 < 39] + 1
    trans = np.zeros((A * B, S))
    np.add.at(trans, (cells[after - 1], tok_s[after]), 1.0)
    np.testing.assert_allclose(mean[1, :, 3:].numpy(), trans / len(after), atol=1e-5)


def test_cells_read_out_is_causal_decodes_and_computes_chosen_positions():
    rng = np.random.default_rng(1)
    hist = _history(rng)
    model = _cells_model()
    x = _inputs(hist)
    with torch.no_grad():
        y = model(x)
        assert y.shape == (2, 24, H * S * A * B)
        later = x.clone()
        later[:, 12:] = _inputs(_history(np.random.default_rng(9)))[:, 12:]
        torch.testing.assert_close(model(later)[:, :12], y[:, :12])
        earlier = x.clone()
        earlier[:, 3] = later[:, 20]
        assert (model(earlier)[:, 3:] - y[:, 3:]).abs().amax() > 1e-5
        pos = torch.tensor([0, 4, 5, 23])
        torch.testing.assert_close(model(x, positions=pos), y[:, pos], atol=1e-5, rtol=1e-5)
        state, parts = None, []
        for a, b in ((0, 7), (7, 8), (8, 24)):
            out, state = model.decode(x[:, a:b], state)
            parts.append(out)
        torch.testing.assert_close(torch.cat(parts, 1), y, atol=1e-5, rtol=1e-5)


@pytest.mark.parametrize("stream", ["joint", "max"])
def test_cells_head_is_symmetric_in_the_action_labels(stream):
    """Relabelling the actions permutes the logits the same way, once the parts of the model
    that read action labels directly (the backbone's state and the scores' action columns) are
    switched off: the symmetry is the head's, by construction."""
    rng = np.random.default_rng(2)
    hist = _history(rng)
    model = _cells_model(stream)
    ro = model.read_out
    with torch.no_grad():
        D = ro.score.in_features - 16
        ro.score.weight[:, D:] = 0                     # z
        for off in (0, D // 2):                        # x_j and x_{j-1}: keep h and s only
            ro.score.weight[:, off + H + S:off + D // 2] = 0
        ro.context.weight.zero_()
        pa, pb = rng.permutation(A), rng.permutation(B)
        moved = dict(hist, **{"act/max": pa[hist["act/max"]], "act/min": pb[hist["act/min"]]})
        n_b = B if stream == "joint" else 1
        y = model(_inputs(hist, stream)).view(2, 24, H * S, A, n_b)
        y2 = model(_inputs(moved, stream)).view(2, 24, H * S, A, n_b)
    back = y2[:, :, :, pa][..., pb] if stream == "joint" else y2[:, :, :, pa]
    torch.testing.assert_close(back, y, atol=1e-5, rtol=1e-5)


def test_cells_read_out_config_errors():
    with pytest.raises(ConfigError, match="reads the reward from the action's slot"):
        icgp_model_config("joint", (H, S, A, B), 10, read_out="cells", embedding="concat")
    from icarena.pretraining.game_lm import GameModel
    with pytest.raises(ConfigError, match="--model.embedding slot"):
        GameModel(read_out="cells", embedding="concat").validate()
    with pytest.raises(ConfigError, match="follow from the game"):
        icgp_model_config("joint", (H, S, A, B), 10, read_out="cells",
                          read_out_cfg={"rows": 2})
    with pytest.raises(ConfigError, match="no option"):
        _cells_model(hidden=3)
    with pytest.raises(ConfigError, match="needs read_out_cfg"):
        SequenceModel(ModelConfig(backbone_cfg=dict(d_model=8, n_layers=1, n_heads=2,
                                                     max_len=4, causal=True),
                                  input_kind="vectors", input_dim=5, output_dim=4,
                                  read_out="cells", read_out_cfg={"groups": 1}))
